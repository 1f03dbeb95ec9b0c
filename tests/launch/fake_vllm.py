"""A stand-in for `vllm serve`, started as a `launch: auto` backend's launch command:
`python fake_vllm.py {port} STATE_DIR`.

It writes its pid to STATE_DIR/server.pid, then serves the mock vLLM server on the port until
it is killed (SIGTERM ends it at once, as vLLM's default). Each model request is noted as a
file STATE_DIR/asked-N; a request whose last user message contains "wait" gets no answer
(the reply is held back for ten minutes: a model call in flight), any other gets "ok".
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import threading
from pathlib import Path

from agent_runtime.testing import MockVLLM, RecordedRequest, Reply


def main() -> None:
    port, state = int(sys.argv[1]), Path(sys.argv[2])
    state.mkdir(parents=True, exist_ok=True)
    (state / "server.pid").write_text(str(os.getpid()))
    counter = itertools.count(1)

    async def answer(request: RecordedRequest) -> Reply:
        texts = request.user_texts
        (state / f"asked-{next(counter)}").write_text(texts[-1] if texts else "")
        if texts and "wait" in texts[-1]:
            await asyncio.sleep(600)
        return Reply(final="ok")

    with MockVLLM(default=answer, port=port):
        print(f"fake vLLM serving on port {port}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    main()
