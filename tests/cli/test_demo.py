"""`scripts/demo` runs the example agent against the mock server and leaves nothing running.

The demo runs as it is, with a stand-in `uv` first on PATH: its `sync` does nothing (no
network), its `run --no-sync COMMAND` runs COMMAND from this environment. The demo's own
arguments point `run` at the test project, whose weather tool needs no network."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests import helpers

DEMO = helpers.ROOT / "scripts" / "demo"
UV = """#!/bin/sh
if [ "$1" = sync ]; then exit 0; fi
shift 2
exec "$@"
"""


def processes_with(marker: str) -> list[int]:
    """The processes whose environment holds `DEMO_MARKER=marker` (the demo's, and theirs)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue
        if f"DEMO_MARKER={marker}".encode() in environment.split(b"\0"):
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize(
    ("args", "code"),
    [pytest.param([], 0, id="answers"), pytest.param(["--max-turns", "0"], 2, id="run-fails")],
)
def test_demo_stops_the_mock_server(tmp_path: Path, args: list[str], code: int) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "uv").write_text(UV)
    (bin_dir / "uv").chmod(0o755)
    marker = uuid.uuid4().hex
    environment = {
        **os.environ,
        "PATH": os.pathsep.join(
            [str(bin_dir), str(Path(sys.executable).parent), os.environ["PATH"]]
        ),
        "DEMO_MARKER": marker,
        "STATE_DIR": str(tmp_path / "state"),
    }
    result = subprocess.run(
        [str(DEMO), "-c", "tests/project/agents.yaml", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    left = processes_with(marker)
    for pid in left:  # the demo should have stopped them; do it here so nothing leaks
        os.kill(pid, signal.SIGKILL)
    assert left == [], result.stderr
    assert result.returncode == code, result.stderr
    first, *rest = result.stdout.splitlines(keepends=True)
    assert first.startswith("$ agent-runtime run weather-haiku")
    script = yaml.safe_load((helpers.EXAMPLES / "weather-haiku.mock.yaml").read_text())
    assert "".join(rest) == (script[-1]["final"] + "\n" if code == 0 else "")
