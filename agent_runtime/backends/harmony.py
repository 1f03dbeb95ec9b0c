"""The gpt-oss harmony encoding (openai-harmony), shared by the embedded backend and the mock.

openai-harmony reads its vocabulary file (o200k_base.tiktoken) from `TIKTOKEN_ENCODINGS_BASE`,
else its download cache, else downloads it; `vocab_dir` points it at a local copy for offline
machines.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

__all__ = ["CALL_TOKEN", "RETURN_TOKEN", "HarmonyUnavailableError", "load_encoding"]

RETURN_TOKEN = 200002
"""`<|return|>`: the model's final answer ends here (vLLM reports it as `stop_reason`)."""
CALL_TOKEN = 200012
"""`<|call|>`: a tool call ends here."""

_load_lock = threading.Lock()


@contextmanager
def _encodings_base(vocab_dir: str | Path | None) -> Iterator[None]:
    if vocab_dir is None:
        yield
        return
    previous = os.environ.get("TIKTOKEN_ENCODINGS_BASE")
    os.environ["TIKTOKEN_ENCODINGS_BASE"] = str(vocab_dir)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["TIKTOKEN_ENCODINGS_BASE"]
        else:
            os.environ["TIKTOKEN_ENCODINGS_BASE"] = previous


class HarmonyUnavailableError(RuntimeError):
    """openai-harmony could not load the gpt-oss encoding (no vocabulary file, no network)."""


def load_encoding(vocab_dir: str | Path | None = None) -> HarmonyEncoding:
    """Load the gpt-oss harmony encoding, from `vocab_dir` if given."""
    from openai_harmony import HarmonyEncodingName, load_harmony_encoding

    with _load_lock, _encodings_base(vocab_dir):
        try:
            return load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)
        except Exception as exc:
            base = os.environ.get("TIKTOKEN_ENCODINGS_BASE")
            where = f"from TIKTOKEN_ENCODINGS_BASE={base!r}" if base else "by download"
            raise HarmonyUnavailableError(
                f"cannot load the gpt-oss harmony vocabulary (o200k_base.tiktoken) {where}: "
                f"{exc}. Set TIKTOKEN_ENCODINGS_BASE to a folder holding o200k_base.tiktoken, "
                "or allow the download."
            ) from exc
