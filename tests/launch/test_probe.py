"""A server seen from outside: its log as a terminal would show it."""

from __future__ import annotations

from pathlib import Path

from agent_runtime.launch import (
    log_tail,
)


def test_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "vllm.log"
    log.write_bytes(
        b"INFO start\n\n\x1b[32mINFO\x1b[0m colour\n"
        b"Loading shards:   0%\rLoading shards:  50%\rLoading shards: 100%\r\n"
        b"last line without newline"
    )
    assert log_tail(log) == [
        "INFO start",
        "INFO colour",
        "Loading shards: 100%",
        "last line without newline",
    ]
    assert log_tail(log, 1) == ["last line without newline"]
    assert log_tail(tmp_path / "missing.log") == []
