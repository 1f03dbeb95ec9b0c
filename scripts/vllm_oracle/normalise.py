"""The normalisation applied to vLLM's answers before they are stored as fixtures.

vLLM puts random ids and wall-clock times in its answers. To make the fixtures reproducible
(and comparable with the mock vLLM server and the embedded backend), every such value is
replaced by a stable placeholder. Tests apply the same function to the project's own answers
before comparing them with a fixture.

This module uses the standard library only: capture.py imports it inside the oracle venv, and
tests/vllm_fixtures.py imports it by path inside the project's environment.

Rules (`normalise(value)`):

* A string that is a whole generated id, i.e. one of the prefixes in `ID_PREFIXES` followed by
  at least 8 lowercase hex digits (`fc_8e0b1df1730230fe`), becomes the prefix plus `<N>`, where N
  counts the distinct ids of that prefix in order of first appearance, from 1: `fc_<1>`,
  `call_<1>`, `fc_<2>`, `chatcmpl-tool-<1>`. The same id gets the same placeholder everywhere in
  the value, so "the streamed id equals the final id" survives normalisation and "a fresh id"
  shows as a new number. Ids chosen by the client (`call_1`, `c1`) are not hex and stay.
* The value of a key in `TIMESTAMP_KEYS` (`created`, `created_at`) becomes 0 when it is an int.
* The value of `system_fingerprint`, when a string `vllm-<version>-<hash>`, keeps its
  `vllm-<version>-` prefix and the hash becomes `<fingerprint>`.

Traversal order decides the numbering: lists in order, dict keys in sorted order (so the order
in which a server writes its keys does not matter). Call `normalise` once per document: one
response body, or one stream's list of events (ids then number across the events of that
stream). Values are never modified in place.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["ID_PREFIXES", "TIMESTAMP_KEYS", "normalise"]

ID_PREFIXES = (
    "chatcmpl-tool-",
    "chatcmpl-",
    "modelperm-",
    "resp_",
    "rs_",
    "msg_",
    "fc_",
    "call_",
    "mcp_",
    "ws_",
)
"""Prefixes of the ids vLLM generates (longest first: `chatcmpl-tool-` before `chatcmpl-`)."""

TIMESTAMP_KEYS = frozenset({"created", "created_at"})
"""Keys whose integer values are Unix times."""

_ID = re.compile("^(" + "|".join(re.escape(p) for p in ID_PREFIXES) + ")[0-9a-f]{8,}$")
_FINGERPRINT = re.compile(r"^(vllm-[^-]+-).+$")


def normalise(value: Any) -> Any:
    """`value` (a JSON document) with generated ids, times and fingerprints replaced.

    Example:
        >>> normalise({"id": "resp_0a1b2c3d4e5f6789", "created_at": 1767225600})
        {'created_at': 0, 'id': 'resp_<1>'}
    """
    seen: dict[str, str] = {}
    counts: dict[str, int] = {}

    def placeholder(text: str) -> str:
        match = _ID.match(text)
        if match is None:
            return text
        if text not in seen:
            prefix = match.group(1)
            counts[prefix] = counts.get(prefix, 0) + 1
            seen[text] = f"{prefix}<{counts[prefix]}>"
        return seen[text]

    def walk(item: Any, key: str | None) -> Any:
        if isinstance(item, dict):
            return {k: walk(item[k], k) for k in sorted(item)}
        if isinstance(item, list):
            return [walk(element, None) for element in item]
        if isinstance(item, bool):
            return item
        if isinstance(item, int) and key in TIMESTAMP_KEYS:
            return 0
        if isinstance(item, str):
            if key == "system_fingerprint":
                return _FINGERPRINT.sub(r"\1<fingerprint>", item)
            return placeholder(item)
        return item

    return walk(value, None)
