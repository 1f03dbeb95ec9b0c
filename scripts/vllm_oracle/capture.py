"""Record what vLLM itself answers to the corpus, as JSON fixtures for the project's tests.

Run inside the oracle venv that setup.sh builds:

    $VENV/bin/python scripts/vllm_oracle/capture.py VERSION [--vocab DIR] [--out DIR]

It builds vLLM VERSION's real OpenAI-compatible application over a scripted fake engine
(server.py), sends every case of corpus.py through it with an in-process HTTP client, and
writes `tests/fixtures/vllm/VERSION/{render,responses,errors,endpoints}.json`. Answers are
normalised with normalise.py (generated ids, times, fingerprint); the files are written with
sorted keys, so a second run gives byte-identical files.

`--check` only verifies that vLLM imports and answers one request (setup.sh runs it).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import sysconfig
import warnings
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

import corpus  # noqa: E402
import normalise  # noqa: E402
import shim  # noqa: E402

START_DATE = "2026-01-01"
SERVER_FLAGS = (
    "--served-model-name openai/gpt-oss-20b gpt-oss --max-model-len 131072 "
    "--tool-call-parser openai --enable-auto-tool-choice --reasoning-parser openai_gptoss"
)
STOP_REASONS = {"<|call|>": 200012}
"""`stop_reason` for a generation ending in these tokens; `<|return|>` is gpt-oss's EOS token,
for which vLLM reports `stop_reason: null` (its stop check tests EOS before stop_token_ids)."""
SAMPLING_FIELDS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "stop",
    "stop_token_ids",
    "include_stop_str_in_output",
    "skip_special_tokens",
    "structured_outputs",
)
"""SamplingParams fields recorded for render cases."""
PACKAGES = ("vllm", "openai", "pydantic", "fastapi", "starlette")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("version", choices=sorted(shim.STUBS), help="the installed vLLM version")
    parser.add_argument(
        "--vocab",
        default=os.environ.get("TIKTOKEN_ENCODINGS_BASE") or _default_vocab(),
        help="folder with o200k_base.tiktoken (needed by vLLM 0.22.1's openai-harmony 0.0.8); "
        "default: $TIKTOKEN_ENCODINGS_BASE, else ../shared/vocab beside the repository",
    )
    parser.add_argument("--out", type=Path, help="default: tests/fixtures/vllm/VERSION")
    parser.add_argument("--check", action="store_true", help="only check that vLLM answers")
    args = parser.parse_args(argv)

    _reexec_with_fixed_hash_seed()
    _set_environment(args.vocab)
    shim.install(args.version)
    installed = metadata.version("vllm")
    if installed != args.version:
        raise SystemExit(f"Error: this environment has vLLM {installed}, not {args.version}.")

    import server  # after the shims: it imports vLLM

    # vLLM logs the errors and recoveries that the fixtures record anyway.
    logging.disable(logging.CRITICAL)

    app, engine = server.build_app(args.version)
    capture = Capture(args.version, server, app, engine)
    if args.check:
        answer = capture.post("/v1/responses", {"model": server.MODEL, "input": "Hi"})
        if answer["status"] != 200:
            raise SystemExit(f"Error: vLLM answered {answer}")
        print(f"vLLM {args.version} answers.")
        return 0

    out = args.out or REPO / "tests" / "fixtures" / "vllm" / args.version
    out.mkdir(parents=True, exist_ok=True)
    for kind, cases in corpus.CORPUS.items():
        document = {
            "kind": kind,
            "vllm": args.version,
            "captured_with": capture.settings(),
            "cases": [capture.run(kind, case) for case in cases],
        }
        text = dumps(_strip_paths(document)) + "\n"
        (out / f"{kind}.json").write_text(text, encoding="utf-8")
        print(f"{out / f'{kind}.json'}: {len(cases)} cases, {len(text.encode())} bytes")
    return 0


def _default_vocab() -> str | None:
    vocab = REPO.parent / "shared" / "vocab"
    return str(vocab) if (vocab / "o200k_base.tiktoken").exists() else None


def _reexec_with_fixed_hash_seed() -> None:
    # Sets are iterated while vLLM builds structural tags; fix their order.
    if os.environ.get("PYTHONHASHSEED") != "0":
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        os.execve(sys.executable, [sys.executable, *sys.argv], env)


def _set_environment(vocab: str | None) -> None:
    # Only the settings named here: a VLLM_* variable left in the caller's shell (an API key,
    # the system-instructions switch, the store) would change the answers.
    for name in [n for n in os.environ if n.startswith("VLLM_")]:
        del os.environ[name]
    os.environ["VLLM_SYSTEM_START_DATE"] = START_DATE
    os.environ["VLLM_LOGGING_LEVEL"] = "ERROR"
    if vocab:
        os.environ["TIKTOKEN_ENCODINGS_BASE"] = vocab
    warnings.filterwarnings("ignore")


class Capture:
    """Sends cases through one vLLM application and records the answers."""

    def __init__(self, version: str, server: Any, app: Any, engine: Any) -> None:
        from fastapi.testclient import TestClient

        self.version = version
        self.server = server
        self.engine = engine
        self.client = TestClient(app, raise_server_exceptions=False)
        self._keyed: dict[str, Any] = {}

    def settings(self) -> dict[str, Any]:
        return {
            "server_flags": SERVER_FLAGS,
            "environment": {"VLLM_SYSTEM_START_DATE": START_DATE},
            "engine": "fake: scripted token ids, one token per engine step when streaming",
            "packages": {name: metadata.version(name) for name in PACKAGES}
            | {"openai_harmony": _harmony_version()},
        }

    def run(self, kind: str, case: dict[str, Any]) -> dict[str, Any]:
        runners: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "render": self.render,
            "responses": self.respond,
            "errors": self.request,
            "endpoints": self.request,
        }
        only = case.get("only")
        if only is not None and self.version not in only:
            return {"id": case["id"], "skipped": case["why"]}
        return runners[kind](case)

    # ------------------------------------------------------------------ kinds

    def render(self, case: dict[str, Any]) -> dict[str, Any]:
        record = _head(case, "note")
        record["request"] = case["body"]
        answer = self.post(_path(case["api"]), case["body"])
        if answer["status"] != 200:
            record["answer"] = answer
            return record
        prompt_ids, sampling = self.engine.requests[-1]
        record["prompt_token_ids"] = prompt_ids
        record["prompt_text"] = self.server.decode(prompt_ids)
        record["sampling_params"] = _sampling(sampling)
        record["answer"] = {"status": answer["status"]}
        return record

    def respond(self, case: dict[str, Any]) -> dict[str, Any]:
        record = _head(case, "note", "cut_after")
        generated = case["generated"]
        ids = self.server.encode(generated)
        cut_after = case.get("cut_after")
        if cut_after is None:
            finish_reason = "stop"
            stop_reason = next((v for k, v in STOP_REASONS.items() if generated.endswith(k)), None)
        else:
            keep = self.server.encode(cut_after)
            if ids[: len(keep)] != keep:
                raise SystemExit(f"Error: {case['id']}: cut_after is not a token prefix.")
            ids = ids[: len(keep)]
            finish_reason, stop_reason = "length", None
        record["generated"] = {
            "text": self.server.decode(ids),
            "token_ids": ids,
            "finish_reason": finish_reason,
            "stop_reason": stop_reason,
        }
        path = _path(case["api"])
        generation = self.server.Generation(ids, finish_reason, stop_reason)
        record["request"] = case["body"]
        record["non_streaming"] = self.post(path, case["body"], generation)
        stream_body = {**case["body"], "stream": True, **case.get("stream_extra", {})}
        record["streaming_request"] = stream_body
        record["streaming"] = self.post(path, stream_body, generation)
        return record

    def request(self, case: dict[str, Any]) -> dict[str, Any]:
        record = _head(case)
        record["request"] = {k: v for k, v in case.items() if k not in ("id", "only", "why")}
        client = self.client if "api_key" not in case else self._client_with_key(case["api_key"])
        ok = self.server.Generation(self.server.encode(corpus.FINAL_FIRST), "stop", None)
        self.engine.script[:] = [ok]
        if case["method"] == "GET":
            response = client.get(case["path"])
        elif "content" in case:
            response = client.post(
                case["path"],
                content=case["content"].encode(),
                headers={"content-type": case["content_type"]},
            )
        else:
            response = client.post(case["path"], json=case["body"])
        record["answer"] = _answer(response)
        return record

    # ------------------------------------------------------------------ HTTP

    def post(
        self, path: str, body: dict[str, Any], generation: Any | None = None
    ) -> dict[str, Any]:
        """POST `body`; the engine answers `generation` (default: `final: ok`)."""
        if generation is None:
            ok = self.server.encode(corpus.FINAL_FIRST)
            generation = self.server.Generation(ok, "stop", None)
        self.engine.script[:] = [generation]
        return _answer(self.client.post(path, json=body))

    def _client_with_key(self, key: str) -> Any:
        if key not in self._keyed:
            from fastapi.testclient import TestClient

            app, engine = self.server.build_app(self.version, api_key=key)
            engine.script.append(
                self.server.Generation(self.server.encode(corpus.FINAL_FIRST), "stop", None)
            )
            self._keyed[key] = TestClient(app, raise_server_exceptions=False)
        return self._keyed[key]


def _head(case: dict[str, Any], *optional: str) -> dict[str, Any]:
    record = {"id": case["id"]}
    if "api" in case:
        record["api"] = case["api"]
    record |= {key: case[key] for key in optional if key in case}
    return record


def _path(api: str) -> str:
    return {"responses": "/v1/responses", "chat": "/v1/chat/completions"}[api]


def _answer(response: Any) -> dict[str, Any]:
    """Status, content type and the normalised body (JSON) or events (server-sent events)."""
    content_type = response.headers.get("content-type", "")
    answer: dict[str, Any] = {"status": response.status_code, "content_type": content_type}
    text = response.text
    if content_type.startswith("text/event-stream"):
        answer["events"] = normalise.normalise(_events(text))
    else:
        try:
            answer["body"] = normalise.normalise(json.loads(text))
        except ValueError:
            answer["text"] = text
    return answer


def _events(text: str) -> list[dict[str, Any]]:
    """Server-sent events as `{"event": name, "data": JSON or "[DONE]"}` (`event` if sent)."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event: dict[str, Any] = {}
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "data":
                event["data"] = value if value == "[DONE]" else json.loads(value)
            elif field == "event":
                event["event"] = value
            else:
                raise SystemExit(f"Error: unexpected server-sent event line {line!r}")
        events.append(event)
    return events


def _sampling(params: Any) -> dict[str, Any]:
    recorded: dict[str, Any] = {}
    for name in SAMPLING_FIELDS:
        value = getattr(params, name, None)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = {k: v for k, v in dataclasses.asdict(value).items() if v not in (None, False)}
            if isinstance(value.get("structural_tag"), str):
                value["structural_tag"] = json.loads(value["structural_tag"])
        elif name == "stop_token_ids" and value is not None:
            # A set: vLLM 0.22.1 copies it from openai-harmony, whose order varies per process.
            value = sorted(value)
        recorded[name] = value
    return recorded


def _harmony_version() -> str:
    for name in ("oss-harmony", "openai-harmony"):
        try:
            return f"{name} {metadata.version(name)}"
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def _strip_paths(value: Any) -> Any:
    """Replace the venv's site-packages folder (it shows in some error texts) by a name."""
    site = sysconfig.get_paths()["purelib"]
    text = json.dumps(value, ensure_ascii=False)
    return json.loads(text.replace(json.dumps(site)[1:-1], "<site-packages>"))


def dumps(value: Any, indent: int = 0, *, keep_order: bool = False) -> str:
    """JSON with sorted keys (but the requests' keys in the order they were sent: the order of a
    tool's properties shows in the prompt), two-space indents, and lists of numbers on one line."""
    pad = "  " * (indent + 1)
    if isinstance(value, dict) and value:
        keys = list(value) if keep_order else sorted(value)
        items = [
            f"{pad}{json.dumps(k, ensure_ascii=False)}: "
            f"{dumps(value[k], indent + 1, keep_order=keep_order or k == 'request')}"
            for k in keys
        ]
        return "{\n" + ",\n".join(items) + "\n" + "  " * indent + "}"
    if isinstance(value, list) and value:
        if all(isinstance(v, int | float) and not isinstance(v, bool) for v in value):
            return "[" + ", ".join(json.dumps(v) for v in value) + "]"
        items = [pad + dumps(v, indent + 1, keep_order=keep_order) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + "  " * indent + "]"
    return json.dumps(value, ensure_ascii=False)


if __name__ == "__main__":
    sys.exit(main())
