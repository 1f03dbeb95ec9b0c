"""scripts/bench.py --quick completes and prints every section (its figures are not asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = [
    "1. Overhead per run",
    "2. Concurrency",
    "3. Streaming",
    "4. Start-up",
    "5. Prefix stability (harmony)",
    "6. Long loops",
    "7. Concurrency with long transcripts",
]


def test_quick_benchmark_prints_every_section() -> None:
    # The benchmark starts its own mock servers on 127.0.0.1, in its own process.
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--quick", "--markdown"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for title in SECTIONS:
        assert f"\n## {title}\n" in result.stdout, title
        assert f"\n### {title}\n" in result.stdout, title
    assert "\n## Runtime (`scripts/bench.py`)\n" in result.stdout
