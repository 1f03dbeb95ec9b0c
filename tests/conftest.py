"""Shared test setup: the offline harmony vocabulary, and the network guard on."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import settings

_VOCAB = Path(__file__).resolve().parents[2] / "shared" / "vocab"

# openai-harmony reads TIKTOKEN_ENCODINGS_BASE when it first loads the encoding. Use the offline
# copy next to the project when there is one; otherwise harmony downloads the file as usual.
if "TIKTOKEN_ENCODINGS_BASE" not in os.environ and (_VOCAB / "o200k_base.tiktoken").is_file():
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(_VOCAB)

# CI runs the property tests with a fixed seed, so a run is repeatable; locally they explore.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
