"""Start-up time of the `agent-runtime` command line.

    uv run python scripts/bench_startup.py [--runs 15] [--markdown]

Measures the wall time of `agent-runtime --help`, `list`, `validate` and `schema` (which must not
import the Agents SDK or the OpenAI client), of `python -c "import agents"`, and the time from
starting `agent-runtime run` until its first request reaches a model server listening here
(a bare socket that answers 503, so the run ends at once).
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AGENT_RUNTIME = str(BIN / "agent-runtime")
PROJECT = ROOT / "tests" / "project" / "agents.yaml"
ANSWER = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n"
    b"content-length: 80\r\nconnection: close\r\n\r\n"
    + b'{"error": {"message": "bench", "type": "x", "param": null, "code": 503}}'.ljust(80)
)


def wall(command: list[str], runs: int) -> list[float]:
    """Wall times (s) of running `command` `runs` times, after one warm-up run."""
    subprocess.run(command, capture_output=True, check=False)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return times


class FirstRequest:
    """A listening socket that notes when each request's first bytes arrive."""

    def __init__(self) -> None:
        self.socket = socket.create_server(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.arrivals: list[float] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.socket.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                self.arrivals.append(time.perf_counter())
                connection.sendall(ANSWER)

    def close(self) -> None:
        self.socket.close()


def first_request(runs: int) -> tuple[list[float], list[float]]:
    """Seconds from starting `agent-runtime run` to its first request reaching the server, and
    of `python -c "import agents"`: run in turns, one after the other, so that both see the
    same machine (their paired differences are what `run` adds to the import)."""
    server = FirstRequest()
    env = {**os.environ, "MOCK_URL": f"http://127.0.0.1:{server.port}/v1", "STATE_DIR": "/tmp"}
    command = [AGENT_RUNTIME, "run", "-c", str(PROJECT), "weather-haiku", "hi"]
    import_agents = [sys.executable, "-c", "import agents"]
    times, imports = [], []
    try:
        subprocess.run(command, capture_output=True, env=env, check=False)  # warm-up
        subprocess.run(import_agents, capture_output=True, check=False)
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run(import_agents, capture_output=True, check=False)
            imports.append(time.perf_counter() - started)
            seen = len(server.arrivals)
            started = time.perf_counter()
            subprocess.run(command, capture_output=True, env=env, check=False)
            times.append(server.arrivals[seen] - started)
    finally:
        server.close()
    return times, imports


def added_by_run(times: list[float], imports: list[float]) -> float:
    """Median over the pairs of (run → first request) - (import agents)."""
    return statistics.median(t - i for t, i in zip(times, imports, strict=True))


def summary(times: list[float]) -> str:
    return (
        f"{statistics.median(times) * 1000:7.0f} ms (min {min(times) * 1000:.0f}, "
        f"max {max(times) * 1000:.0f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description="Start-up time of the agent-runtime CLI.")
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--markdown", action="store_true", help="print a BENCHMARKS.md section")
    args = parser.parse_args()
    config = ["-c", str(ROOT / "agents.yaml")]
    rows = {
        "agent-runtime --help": wall([AGENT_RUNTIME, "--help"], args.runs),
        "agent-runtime list": wall([AGENT_RUNTIME, "list", *config], args.runs),
        "agent-runtime validate": wall([AGENT_RUNTIME, "validate", *config], args.runs),
        "agent-runtime schema": wall([AGENT_RUNTIME, "schema"], args.runs),
    }
    run_times, import_times = first_request(args.runs)
    rows['python -c "import agents"'] = import_times
    rows["agent-runtime run → first request"] = run_times
    added = added_by_run(run_times, import_times)
    if not args.markdown:
        for name, times in rows.items():
            print(f"{name:36} {summary(times)}")
        print(f"run adds {added * 1000:.0f} ms to `import agents` before its first request")
        return 0
    print(f"Reproduce: `uv run python scripts/bench_startup.py --runs {args.runs}`\n")
    print(
        f"- {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}; medians of {args.runs} runs after one warm-up\n"
    )
    print("| command | median | min | max |\n|---|---:|---:|---:|")
    for name, times in rows.items():
        print(
            f"| `{name}` | {statistics.median(times) * 1000:.0f} ms | "
            f"{min(times) * 1000:.0f} ms | {max(times) * 1000:.0f} ms |"
        )
    print(
        f"\n`run` adds **{added * 1000:.0f} ms** to `import agents` before its first request "
        "(median of the differences of runs made in turns)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
