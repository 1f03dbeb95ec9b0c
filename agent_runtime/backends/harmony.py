"""The gpt-oss harmony encoding, and prompts rendered from it as vLLM renders them; shared by the
embedded backend and the mock.

The encoding comes from the `openai_harmony` module of `oss-harmony`, the distribution vLLM
(0.31 and later) depends on; it carries the tokenizer's vocabulary. (`openai-harmony`, which
installs the same module, reads the vocabulary file o200k_base.tiktoken from
`TIKTOKEN_ENCODINGS_BASE`, else its download cache, else downloads it: `vocab_dir` points it at
a local copy.)

`render_prompt` turns harmony messages into prompt tokens the way vLLM's server does: analysis
messages before the last final answer dropped, tool-call headers in the form the model writes
(`<|start|>assistant to=functions.f<|channel|>commentary json<|message|>`), tool results in
vLLM 0.33's form (`<|start|>functions.f<|channel|>commentary to=assistant<|message|>`) or, with
`legacy_tool_results`, in the form of vLLM before 0.31
(`<|start|>functions.f to=assistant<|channel|>commentary<|message|>`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from openai_harmony import HarmonyEncoding, Message

__all__ = [
    "CALL_TOKEN",
    "RETURN_TOKEN",
    "HarmonyUnavailableError",
    "drop_analysis_before_final",
    "load_encoding",
    "render_prompt",
]

RETURN_TOKEN = 200002
"""`<|return|>`: the model's final answer ends here (vLLM reports it as `stop_reason`)."""
CALL_TOKEN = 200012
"""`<|call|>`: a tool call ends here."""
_START, _CHANNEL, _MESSAGE, _CONSTRAIN = 200006, 200005, 200008, 200003

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


def drop_analysis_before_final(messages: Sequence[Message]) -> list[Message]:
    """The messages without the analysis (reasoning) before the last final answer: a finished
    turn's reasoning is not shown to the model again (vLLM 0.33's rule, on both APIs)."""
    from openai_harmony import Role

    last_final = max(
        (
            index
            for index, message in enumerate(messages)
            if message.author.role == Role.ASSISTANT and message.channel == "final"
        ),
        default=-1,
    )
    return [
        message
        for index, message in enumerate(messages)
        if index > last_final or message.channel != "analysis"
    ]


def render_prompt(
    encoding: HarmonyEncoding,
    messages: Sequence[Message],
    *,
    drop_analysis: bool = True,
    harmony_drop: bool = False,
    legacy_tool_results: bool = False,
) -> list[int]:
    """Prompt tokens for the assistant's next message, as vLLM's server renders `messages`.

    Args:
        encoding: the harmony encoding.
        messages: system, developer and conversation messages.
        drop_analysis: drop the analysis before the last final answer (vLLM 0.33, and its Chat
            API before).
        harmony_drop: let harmony drop analysis by its own rule as well (vLLM before 0.31).
        legacy_tool_results: tool results in the header form of vLLM before 0.31.
    """
    from openai_harmony import Conversation, RenderConversationConfig, Role

    kept = drop_analysis_before_final(messages) if drop_analysis else list(messages)
    tokens = encoding.render_conversation_for_completion(
        Conversation.from_messages(kept),
        Role.ASSISTANT,
        config=RenderConversationConfig(auto_drop_analysis=harmony_drop),
    )
    return _rewrite_headers(encoding, tokens, legacy_tool_results=legacy_tool_results)


def _rewrite_headers(
    encoding: HarmonyEncoding, tokens: list[int], *, legacy_tool_results: bool
) -> list[int]:
    """Move the recipient of tool-call headers (and, with `legacy_tool_results`, of tool-result
    headers) before `<|channel|>`, as vLLM does; other tokens stay as they are."""
    out: list[int] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        if token != _START:
            out.append(token)
            index += 1
            continue
        try:
            end = tokens.index(_MESSAGE, index)
        except ValueError:  # the final `<|start|>assistant` of the prompt
            out.extend(tokens[index:])
            break
        header = tokens[index + 1 : end]
        out.extend(_header(encoding, header, legacy_tool_results) or [_START, *header])
        out.append(_MESSAGE)
        index = end + 1
    return out


def _header(encoding: HarmonyEncoding, header: list[int], legacy_results: bool) -> list[int] | None:
    """The rewritten `<|start|>…` header (without `<|message|>`), or None to keep it."""
    if _CHANNEL not in header:
        return None
    split = header.index(_CHANNEL)
    author = encoding.decode_utf8(header[:split])
    rest = encoding.decode_utf8(header[split + 1 :])
    channel, _, tail = rest.partition(" to=")
    if not tail:
        return None
    recipient, _, content_type = tail.partition(" ")
    content_type = content_type.removeprefix("<|constrain|>")
    if author == "assistant":
        after = f"{channel} {content_type}" if content_type else channel
    elif legacy_results:
        after = channel
    else:
        return None
    return [
        _START,
        *encoding.encode(f"{author} to={recipient}", allowed_special=set()),
        _CHANNEL,
        *encoding.encode(after, allowed_special=set()),
    ]
