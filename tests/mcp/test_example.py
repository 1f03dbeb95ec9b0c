"""examples/mcp-notes: an agent using an MCP server, offline with the mock vLLM server and the
example's own mock script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from agent_runtime.testing import MockVLLM, load_script
from tests import helpers

EXAMPLE = helpers.EXAMPLES / "mcp-notes"


def test_the_notes_example_runs_offline(tmp_path: Path) -> None:
    example = shutil.copytree(EXAMPLE, tmp_path / "mcp-notes")  # its traces go beside it
    with MockVLLM(load_script(EXAMPLE / "notes.mock.yaml")) as mock:
        done = subprocess.run(
            [sys.executable, "-m", "agent_runtime", "run", "-c", str(example / "agents.yaml"),
             "notes", "What do I need to buy?"],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "VLLM_BASE_URL": mock.url},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.rstrip().endswith("Your groceries note says: milk, eggs and rice.")
        assert helpers.outputs_sent(mock, 1) == ["groceries\nideas"]
        assert helpers.outputs_sent(mock, 2) == ["milk, eggs, rice"]
