"""Generated harmony tokens → Responses output items and stream events, by vLLM's rules.

A turn's tokens are fed one at a time to harmony's `StreamableParser` (as vLLM 0.33 does; call
arguments are passed on exactly as the model wrote them): each assistant message
becomes an output item — `analysis` → reasoning, a message to `functions.NAME`
(or to the bare name of a declared tool) → function call, `commentary`/`final` text → message —
and, when streaming, the matching `response.*` events are produced as the tokens arrive.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from openai.types.responses import Response, ResponseStreamEvent
    from openai_harmony import HarmonyEncoding, StreamableParser

__all__ = ["ParsedTurn", "TurnParser"]

_BUILTIN = ("python", "browser", "container")


def _hex() -> str:
    return uuid.uuid4().hex[:16]


@dataclass(slots=True)
class _Item:
    kind: Literal["reasoning", "message", "function_call"]
    id: str
    name: str = ""
    call_id: str = ""
    text: list[str] = field(default_factory=list)
    done: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedTurn:
    """The result of a turn: its output items and token counts."""

    output: list[Any]
    output_tokens: int
    reasoning_tokens: int
    finished: bool


class TurnParser:
    """Parses one turn's generated tokens incrementally.

    Args:
        encoding: the harmony encoding.
        tool_names: the declared function tools (a bare recipient naming one is a call).
        stream: produce `response.*` events (`events()` drains them).
    """

    def __init__(
        self, encoding: HarmonyEncoding, tool_names: Sequence[str], *, stream: bool = False
    ) -> None:
        from openai_harmony import Role, StreamableParser

        self._parser: StreamableParser = StreamableParser(encoding, role=Role.ASSISTANT)
        self._tool_names = set(tool_names)
        self._stream = stream
        self._items: list[_Item] = []
        self._events: list[ResponseStreamEvent] = []
        self._sequence = 0
        self._open: _Item | None = None
        self._open_index = -1
        self._pending: list[int] = []  # tokens since the last complete message
        self._encoding = encoding
        self.tokens = 0
        self.reasoning_tokens = 0

    # -- classifying messages -----------------------------------------------------------------

    def _kind(self, channel: str | None, recipient: str | None) -> tuple[str, str]:
        """(item kind, function name) of the message being parsed."""
        if recipient and recipient != "assistant":
            if recipient.startswith("functions."):
                return "function_call", recipient.removeprefix("functions.")
            if recipient.split(".")[0] in _BUILTIN:
                return "reasoning", ""
            return "function_call", recipient  # an unknown tool: the run reports it to the model
        return ("reasoning" if channel == "analysis" else "message"), ""

    # -- feeding ---------------------------------------------------------------------------------

    def feed(self, token: int) -> None:
        """Process one generated token."""
        from openai_harmony import StreamState

        parser = self._parser
        before = len(parser.messages)
        parser.process(token)
        self.tokens += 1
        self._pending.append(token)
        if len(parser.messages) > before:
            self._pending = []
            if self._open is not None:
                self._close()
        if parser.state == StreamState.CONTENT:
            channel, recipient = parser.current_channel, parser.current_recipient
            if channel == "analysis" or (channel == "commentary" and recipient):
                self.reasoning_tokens += 1
            delta = parser.last_content_delta or ""
            if self._open is None and delta:
                self._start(*self._kind(channel, recipient))
            if self._open is not None and delta:
                self._open.text.append(delta)
                self._delta(delta)

    def _start(self, kind: str, name: str) -> None:
        hex_id = _hex()
        if kind == "function_call":
            item = _Item("function_call", f"fc_{hex_id}", name=name, call_id=f"call_{hex_id}")
        elif kind == "reasoning":
            item = _Item("reasoning", f"rs_{hex_id}")
        else:
            item = _Item("message", f"msg_{hex_id}")
        self._items.append(item)
        self._open = item
        self._open_index = len(self._items) - 1
        if self._stream:
            from openai.types.responses import ResponseOutputItemAddedEvent

            self._emit(
                ResponseOutputItemAddedEvent,
                item=self._output_item(item, status="in_progress"),
                output_index=self._open_index,
            )

    def _delta(self, delta: str) -> None:
        if not self._stream or self._open is None:
            return
        from openai.types.responses import (
            ResponseFunctionCallArgumentsDeltaEvent,
            ResponseReasoningTextDeltaEvent,
            ResponseTextDeltaEvent,
        )

        item, index = self._open, self._open_index
        if item.kind == "reasoning":
            self._emit(
                ResponseReasoningTextDeltaEvent,
                item_id=item.id,
                output_index=index,
                content_index=0,
                delta=delta,
            )
        elif item.kind == "message":
            self._emit(
                ResponseTextDeltaEvent,
                item_id=item.id,
                output_index=index,
                content_index=0,
                delta=delta,
                logprobs=[],
            )
        else:
            self._emit(
                ResponseFunctionCallArgumentsDeltaEvent,
                item_id=item.id,
                output_index=index,
                delta=delta,
            )

    def _close(self) -> None:
        item = self._open
        if item is None:
            return
        item.done = True
        self._open = None
        if self._stream:
            from openai.types.responses import ResponseOutputItemDoneEvent

            self._emit(
                ResponseOutputItemDoneEvent,
                item=self._output_item(item, status="completed"),
                output_index=self._open_index,
            )

    # -- results ---------------------------------------------------------------------------------

    def _output_item(self, item: _Item, *, status: str) -> Any:
        from openai.types.responses import (
            ResponseFunctionToolCall,
            ResponseOutputMessage,
            ResponseOutputText,
            ResponseReasoningItem,
        )
        from openai.types.responses.response_reasoning_item import Content

        text = "".join(item.text)
        if item.kind == "reasoning":
            return ResponseReasoningItem(
                id=item.id,
                summary=[],
                type="reasoning",
                content=[Content(text=text, type="reasoning_text")],
            )
        if item.kind == "function_call":
            return ResponseFunctionToolCall(
                arguments=text,
                call_id=item.call_id,
                name=item.name,
                type="function_call",
                id=item.id,
                status=status,  # type: ignore[arg-type]
            )
        return ResponseOutputMessage(
            id=item.id,
            content=[ResponseOutputText(annotations=[], text=text, type="output_text")],
            role="assistant",
            status="completed" if status == "completed" else "incomplete",
            type="message",
        )

    def finish(self, *, cut: bool = False) -> ParsedTurn:
        """End of generation: the output items. `cut`: it stopped at the output token limit; then
        the item being written is `incomplete`, and a cut inside a message header (or before
        anything was generated) leaves, as in vLLM 0.33, an incomplete message holding the raw
        text since the last complete message."""
        open_item = self._open
        finished = open_item is None
        if cut and open_item is None and (self._pending or not self.tokens):
            text = self._encoding.decode_utf8(self._pending)
            if text:  # streamed like any message
                self._start("message", "")
                open_item = self._open
                assert open_item is not None
                open_item.text.append(text)
                self._delta(text)
            else:  # nothing to stream
                open_item = _Item("message", f"msg_{_hex()}", text=[""])
                self._items.append(open_item)
        self._close()
        output = [
            self._output_item(
                item, status="incomplete" if cut and item is open_item else "completed"
            )
            for item in self._items
        ]
        return ParsedTurn(
            output=output,
            output_tokens=self.tokens,
            reasoning_tokens=self.reasoning_tokens,
            finished=finished,
        )

    # -- events ----------------------------------------------------------------------------------

    def _emit(self, event_class: type[Any], **fields: Any) -> None:
        kind = event_class.model_fields["type"].annotation.__args__[0]  # its Literal["response…"]
        self._events.append(event_class(sequence_number=self._sequence, type=kind, **fields))
        self._sequence += 1

    def events(self) -> list[ResponseStreamEvent]:
        """The events produced since the last call."""
        events, self._events = self._events, []
        return events

    def created(self, response: Response) -> ResponseStreamEvent:
        """The `response.created` event (first of a stream)."""
        from openai.types.responses import ResponseCreatedEvent

        event = ResponseCreatedEvent(
            response=response, sequence_number=self._sequence, type="response.created"
        )
        self._sequence += 1
        return event

    def completed(self, response: Response) -> ResponseStreamEvent:
        """The last event of a stream: `response.incomplete` for an incomplete response (as vLLM
        0.33 ends one), else `response.completed`."""
        from openai.types.responses import ResponseCompletedEvent, ResponseIncompleteEvent

        event: ResponseStreamEvent
        if response.status == "incomplete":
            event = ResponseIncompleteEvent(
                response=response, sequence_number=self._sequence, type="response.incomplete"
            )
        else:
            event = ResponseCompletedEvent(
                response=response, sequence_number=self._sequence, type="response.completed"
            )
        self._sequence += 1
        return event


def response_object(
    *,
    model: str,
    output: list[Any],
    input_tokens: int,
    cached_tokens: int,
    output_tokens: int,
    reasoning_tokens: int,
    status: Literal["completed", "incomplete", "in_progress"],
    max_output_tokens: int | None = None,
) -> Response:
    """A typed `Response` holding a turn's output and usage."""
    from openai.types.responses import Response, ResponseUsage
    from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

    return Response(
        id=f"resp_{_hex()}",
        created_at=time.time(),
        model=model,
        object="response",
        output=output,
        parallel_tool_calls=True,
        tool_choice="auto",
        tools=[],
        status=status,
        max_output_tokens=max_output_tokens,
        incomplete_details={"reason": "max_output_tokens"} if status == "incomplete" else None,  # type: ignore[arg-type]
        usage=ResponseUsage(
            input_tokens=input_tokens,
            input_tokens_details=InputTokensDetails(
                cached_tokens=cached_tokens, cache_write_tokens=0
            ),
            output_tokens=output_tokens,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=reasoning_tokens),
            total_tokens=input_tokens + output_tokens,
        ),
    )
