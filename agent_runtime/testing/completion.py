"""What the mock model generates: a `Reply` turned into tokens, deltas and parsed messages.

Two tokenizers stand behind the same `Completion`:
- harmony (openai-harmony's real gpt-oss encoding): exact token ids and counts, raw harmony
  replies parsed with harmony's `StreamableParser` as vLLM does, including its errors;
- plain (no vocabulary needed): text split into word-sized pieces, about as many as the real
  tokenizer makes, with a few header tokens per message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

from agent_runtime.backends.harmony import CALL_TOKEN, RETURN_TOKEN
from agent_runtime.testing.script import Reply

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

__all__ = ["Completion", "HarmonyParseError", "OutMessage", "Step", "generate"]

_STOPS = (RETURN_TOKEN, CALL_TOKEN)  # end a generation; <|end|> only ends a message
_PIECE = re.compile(r" ?[^\W_]+| ?[^\w\s]+| ?_+|\s+")


@dataclass(frozen=True, slots=True)
class OutMessage:
    """One assistant message of a completion, as harmony parses it."""

    channel: str | None
    recipient: str | None
    content_type: str | None
    text: str
    complete: bool = True

    @property
    def is_reasoning_like(self) -> bool:
        """Counted as reasoning by vLLM: analysis, or commentary addressed to a tool."""
        return self.channel == "analysis" or (
            self.channel == "commentary" and self.recipient is not None
        )


@dataclass(frozen=True, slots=True)
class Step:
    """One generated token: the message it belongs to (None in headers) and its text."""

    message: int | None
    delta: str


@dataclass(frozen=True, slots=True)
class Completion:
    """A generated completion: parsed messages and the token-by-token steps behind them."""

    messages: tuple[OutMessage, ...]
    steps: tuple[Step, ...]
    reasoning_tokens: int
    finish_reason: Literal["stop", "length"]
    stop_token: int | None
    token_ids: tuple[int, ...] | None = None
    unparsed: str = ""
    """The text of the tokens after the last message when the generation was cut inside a
    message header, which harmony cannot parse (special tokens written out)."""

    @property
    def output_tokens(self) -> int:
        """How many tokens were generated."""
        return len(self.steps)

    @property
    def reasoning_content_tokens(self) -> int:
        """The content tokens of reasoning-like messages, without the `<|message|>` token
        opening each (which `reasoning_tokens` counts): vLLM 0.33's `reasoning_tokens`."""
        counts: dict[int, int] = {}
        for step in self.steps:
            if step.message is not None and self.messages[step.message].is_reasoning_like:
                counts[step.message] = counts.get(step.message, 0) + 1
        return sum(count - 1 for count in counts.values())


class HarmonyParseError(ValueError):
    """The raw harmony completion cannot be parsed (vLLM fails the request the same way)."""

    def __init__(self, message: str, steps_before_error: int) -> None:
        super().__init__(message)
        self.steps_before_error = steps_before_error


def reply_messages(reply: Reply, *, invalid_arguments: bool = False) -> list[OutMessage]:
    """The harmony messages a structured reply stands for, in generation order."""
    messages: list[OutMessage] = []
    if reply.reasoning is not None:
        messages.append(OutMessage("analysis", None, None, reply.reasoning))
    if reply.preamble is not None:
        messages.append(OutMessage("commentary", None, None, reply.preamble))
    for call in reply.calls:
        arguments = call.arguments_json
        if invalid_arguments:
            arguments = _break_json(arguments)
        messages.append(
            OutMessage(call.channel, f"functions.{call.name}", "<|constrain|>json", arguments)
        )
    if reply.final is not None:
        messages.append(OutMessage("final", None, None, reply.final))
    return messages


def _break_json(text: str) -> str:
    """Arguments that are no longer valid JSON, as a model cut short or confused writes them."""
    if len(text) > 2:
        return text[: max(1, len(text) - 2)]
    return '{"'


def generate(
    reply: Reply,
    *,
    encoding: HarmonyEncoding | None,
    max_tokens: int | None,
    invalid_arguments: bool = False,
) -> Completion:
    """Turn a reply into a completion, cut at `max_tokens` (or the reply's `cut_at`) like
    vLLM's `length` finish; an `incomplete` reply is cut where its text ends (a raw reply
    ending in `<|return|>` or `<|call|>` just before it: a generation reaching them stops)."""
    if reply.cut_at is not None:
        max_tokens = reply.cut_at if max_tokens is None else min(max_tokens, reply.cut_at)
    if reply.harmony is not None:
        if encoding is None:
            raise RuntimeError("raw harmony replies need the harmony encoding")
        tokens = encoding.encode(reply.harmony, allowed_special="all")
        if reply.incomplete and tokens and tokens[-1] in _STOPS:
            tokens = tokens[:-1]
        completion = _parse_harmony_tokens(encoding, tokens, max_tokens)
    else:
        messages = reply_messages(reply, invalid_arguments=invalid_arguments)
        if encoding is not None:
            tokens = _harmony_tokens(encoding, messages)
            if reply.incomplete and tokens:
                tokens = tokens[:-1]
            completion = _parse_harmony_tokens(encoding, tokens, max_tokens)
        else:
            if reply.incomplete:
                count = len(_plain_completion(messages, None).steps)
                max_tokens = count - 1 if max_tokens is None else min(max_tokens, count - 1)
            completion = _plain_completion(messages, max_tokens)
    if reply.incomplete and completion.finish_reason != "length":
        completion = replace(completion, finish_reason="length", stop_token=None)
    return completion


def harmony_completion_text(messages: list[OutMessage]) -> str:
    """The raw text gpt-oss generates for these messages, after the prompt's `<|start|>assistant`.

    The model writes the recipient after the channel (`<|channel|>commentary to=functions.f`),
    ends a tool call with `<|call|>`, a final answer with `<|return|>`, anything else with
    `<|end|>`.
    """
    parts = []
    for index, message in enumerate(messages):
        header = "" if index == 0 else "<|start|>assistant"
        header += f"<|channel|>{message.channel}"
        if message.recipient is not None:
            header += f" to={message.recipient}"
        if message.content_type is not None:
            header += f" {message.content_type}"
        last = index == len(messages) - 1
        if message.recipient is not None:
            end = "<|call|>"
        elif last and message.channel == "final":
            end = "<|return|>"
        else:
            end = "<|end|>"
        parts.append(f"{header}<|message|>{message.text}{end}")
    return "".join(parts)


def _harmony_tokens(encoding: HarmonyEncoding, messages: list[OutMessage]) -> list[int]:
    return encoding.encode(harmony_completion_text(messages), allowed_special="all")


def _parse_harmony_tokens(
    encoding: HarmonyEncoding, tokens: list[int], max_tokens: int | None
) -> Completion:
    from openai_harmony import HarmonyError, Role, StreamableParser, StreamState

    finish: Literal["stop", "length"] = "stop"
    if max_tokens is not None and len(tokens) > max_tokens:
        tokens = tokens[:max_tokens]
        finish = "length"
    parser = StreamableParser(encoding, role=Role.ASSISTANT)
    steps: list[Step] = []
    reasoning_tokens = 0
    header_start = 0
    for index, token in enumerate(tokens):
        try:
            parser.process(token)
        except HarmonyError as exc:
            raise HarmonyParseError(str(exc), len(steps)) from None
        done = len(parser.messages)
        if parser.state == StreamState.EXPECT_START:
            header_start = index + 1
        if parser.state == StreamState.CONTENT:
            channel = parser.current_channel
            if channel == "analysis" or (
                channel == "commentary" and parser.current_recipient is not None
            ):
                reasoning_tokens += 1
            steps.append(Step(done, parser.last_content_delta or ""))
        else:
            steps.append(Step(None, ""))
    messages = [_from_harmony(m) for m in parser.messages]
    if parser.state == StreamState.CONTENT:
        messages.append(
            OutMessage(
                parser.current_channel,
                parser.current_recipient,
                parser.current_content_type,
                parser.current_content,
                complete=False,
            )
        )
    stop_token = tokens[-1] if tokens and tokens[-1] in (RETURN_TOKEN, CALL_TOKEN) else None
    return Completion(
        messages=tuple(messages),
        steps=tuple(steps),
        reasoning_tokens=reasoning_tokens,
        finish_reason=finish,
        stop_token=stop_token if finish == "stop" else None,
        token_ids=tuple(tokens),
        unparsed=encoding.decode(tokens[header_start:])
        if parser.state == StreamState.HEADER
        else "",
    )


def _from_harmony(message: object) -> OutMessage:
    from openai_harmony import Message, TextContent

    assert isinstance(message, Message)
    text = "".join(c.text for c in message.content if isinstance(c, TextContent))
    return OutMessage(message.channel, message.recipient, message.content_type, text)


def _plain_completion(messages: list[OutMessage], max_tokens: int | None) -> Completion:
    steps: list[Step] = []
    reasoning_tokens = 0
    for index, message in enumerate(messages):
        header = 3 + (0 if index == 0 else 2) + (5 if message.recipient else 0)
        header += 2 if message.content_type else 0
        steps.extend(Step(None, "") for _ in range(header - 1))
        steps.append(Step(index, ""))  # <|message|>: the content starts
        pieces = [Step(index, piece) for piece in _PIECE.findall(message.text)]
        steps.extend(pieces)
        steps.append(Step(None, ""))  # <|end|>, <|call|> or <|return|>
        if message.is_reasoning_like:
            reasoning_tokens += len(pieces) + 1
    finish: Literal["stop", "length"] = "stop"
    out = list(messages)
    if max_tokens is not None and len(steps) > max_tokens:
        finish = "length"
        steps = steps[:max_tokens]
        out = []
        texts: dict[int, list[str]] = {}
        for step in steps:
            if step.message is not None:
                texts.setdefault(step.message, []).append(step.delta)
        last_step = steps[-1] if steps else None
        for index, pieces_text in texts.items():
            complete = not (last_step is not None and last_step.message == index)
            source = messages[index]
            out.append(
                OutMessage(
                    source.channel,
                    source.recipient,
                    source.content_type,
                    "".join(pieces_text),
                    complete=complete,
                )
            )
        reasoning_tokens = min(reasoning_tokens, len(steps))
    stop_token = None
    if finish == "stop" and messages:
        stop_token = CALL_TOKEN if messages[-1].recipient else RETURN_TOKEN
    return Completion(
        messages=tuple(out),
        steps=tuple(steps),
        reasoning_tokens=reasoning_tokens,
        finish_reason=finish,
        stop_token=stop_token,
    )
