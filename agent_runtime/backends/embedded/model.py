"""`EmbeddedModel`: an Agents SDK `Model` that runs gpt-oss in this process through an engine.

Each model call renders the prompt with openai-harmony (`prompt.py`), generates with harmony's
stop tokens, and parses the tokens back into reasoning, function calls and messages
(`parse.py`) — the same rules as vLLM's server, so an agent behaves the same on either backend.

Prefix reuse: with `reuse="exact"` (the default), a turn that continues a tool loop this model
answered is prompted with the exact tokens of the previous prompt and generation, followed by the
new tool results, so the engine's prefix cache holds the whole conversation. (A server re-renders
the history instead: the model writes `<|channel|>commentary to=functions.f`, the re-render says
`to=functions.f<|channel|>commentary json`, and the cache stops there.) `reuse="rerender"`
renders every turn afresh, exactly as vLLM's server does. A new user message is always rendered
afresh (without the finished turns' reasoning, as gpt-oss expects); the engine's prefix cache
still holds its shared start. Either way the reused share is reported as `cached_tokens` in the
usage and traced.
"""

from __future__ import annotations

import collections
import functools
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from agent_runtime.backends.client import check_response
from agent_runtime.backends.embedded.engine import Engine, Sampling
from agent_runtime.backends.embedded.parse import TurnParser, response_object
from agent_runtime.backends.embedded.prompt import (
    ASSISTANT_START,
    ToolSpec,
    conversation,
    render_items,
    tools_fingerprint,
)
from agent_runtime.backends.harmony import CALL_TOKEN, RETURN_TOKEN
from agent_runtime.tracing import current_trace

if TYPE_CHECKING:
    from agents import Model, ModelResponse, ModelSettings
    from openai_harmony import HarmonyEncoding

__all__ = ["embedded_model"]

Reuse = Literal["exact", "rerender"]


@dataclass(slots=True)
class _Turn:
    """What a tool-call turn left behind, to continue from its exact tokens."""

    tokens: list[int]
    items: int  # input items + output items of that turn
    last_call_id: str
    fingerprint: str
    calls: dict[str, str] = field(default_factory=dict)


class _TurnCache:
    """The last turns of the conversations this model is in, by their last call id (LRU)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._turns: collections.OrderedDict[str, _Turn] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, call_id: str) -> _Turn | None:
        with self._lock:
            turn = self._turns.get(call_id)
            if turn is not None:
                self._turns.move_to_end(call_id)
            return turn

    def put(self, turn: _Turn) -> None:
        with self._lock:
            self._turns[turn.last_call_id] = turn
            while len(self._turns) > self._size:
                self._turns.popitem(last=False)


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    length = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        length += 1
    return length


def _item_field(item: Any, name: str) -> Any:
    return item.get(name) if isinstance(item, dict) else getattr(item, name, None)


def embedded_model(
    engine: Engine,
    encoding: HarmonyEncoding,
    *,
    model: str,
    max_model_len: int = 131072,
    start_date: str | None = None,
    reuse: Reuse = "exact",
    cache_size: int = 1024,
) -> Model:
    """An SDK `Model` on `engine` (see the module docstring)."""
    cls: Any = _model_class()
    instance: Model = cls(
        engine,
        encoding,
        model=model,
        max_model_len=max_model_len,
        start_date=start_date,
        reuse=reuse,
        cache_size=cache_size,
    )
    return instance


@functools.cache
def _model_class() -> type[Any]:
    """The `Model` subclass, built on first use (importing this module skips the SDK)."""
    from agents import Model, ModelResponse, Usage
    from openai.types.responses.response_usage import InputTokensDetails, OutputTokensDetails

    class EmbeddedModel(Model):
        def __init__(
            self,
            engine: Engine,
            encoding: HarmonyEncoding,
            *,
            model: str,
            max_model_len: int,
            start_date: str | None,
            reuse: Reuse,
            cache_size: int,
        ) -> None:
            self.engine = engine
            self.encoding = encoding
            self.model = model
            self.max_model_len = max_model_len
            self.start_date = start_date
            self.reuse = reuse
            self._turns = _TurnCache(cache_size)
            self._assistant_start = encoding.encode(ASSISTANT_START, allowed_special="all")

        # -- the prompt ----------------------------------------------------------------------

        def _tools(self, tools: Sequence[Any], handoffs: Sequence[Any]) -> list[ToolSpec]:
            specs = [
                ToolSpec(t.name, t.description or "", t.params_json_schema)
                for t in tools
                if hasattr(t, "params_json_schema")
            ]
            specs += [
                ToolSpec(h.tool_name, h.tool_description or "", h.input_json_schema)
                for h in handoffs
            ]
            return specs

        def _prompt(
            self,
            instructions: str | None,
            items: list[Any],
            settings: ModelSettings,
            tools: list[ToolSpec],
        ) -> tuple[list[int], int, str]:
            effort = settings.reasoning.effort if settings.reasoning else None
            fingerprint = tools_fingerprint(instructions, tools, effort)
            previous = self._previous_turn(items, fingerprint)
            if previous is not None and self.reuse == "exact":
                calls = dict(previous.calls)
                messages = render_items(items[previous.items :], calls)
                tokens = list(previous.tokens)
                for message in messages:
                    tokens += self.encoding.render(message)
                tokens += self._assistant_start
                return tokens, len(previous.tokens), fingerprint
            tokens = conversation(
                self.encoding,
                instructions=instructions,
                items=items,
                tools=tools,
                effort=effort,
                start_date=self.start_date,
            )
            reused = _common_prefix(tokens, previous.tokens) if previous is not None else 0
            return tokens, reused, fingerprint

        def _previous_turn(self, items: list[Any], fingerprint: str) -> _Turn | None:
            for position in range(len(items) - 1, -1, -1):
                if _item_field(items[position], "type") == "function_call":
                    turn = self._turns.get(str(_item_field(items[position], "call_id")))
                    if (
                        turn is None
                        or turn.items != position + 1
                        or turn.fingerprint != fingerprint
                    ):
                        return None
                    return turn
            return None

        def _remember(
            self,
            items: list[Any],
            output: list[Any],
            tokens: list[int],
            generated: list[int],
            fingerprint: str,
        ) -> None:
            calls = [item for item in output if getattr(item, "type", "") == "function_call"]
            if not calls or not generated:
                return
            if generated[-1] not in (CALL_TOKEN, RETURN_TOKEN):
                generated = [*generated, CALL_TOKEN]  # engines may leave the stop token out
            names: dict[str, str] = {}
            render_items(items, names)
            names.update({call.call_id: call.name for call in calls})
            self._turns.put(
                _Turn(
                    tokens=tokens + generated,
                    items=len(items) + len(output),
                    last_call_id=calls[-1].call_id,
                    fingerprint=fingerprint,
                    calls=names,
                )
            )

        # -- generating ----------------------------------------------------------------------

        async def _generate(
            self,
            system_instructions: str | None,
            input: str | list[Any],
            model_settings: ModelSettings,
            tools: list[Any],
            handoffs: list[Any],
            *,
            stream: bool,
        ) -> AsyncIterator[Any]:
            items: list[Any] = (
                [{"role": "user", "content": input}] if isinstance(input, str) else list(input)
            )
            specs = self._tools(tools, handoffs)
            prompt, reused, fingerprint = self._prompt(
                system_instructions, items, model_settings, specs
            )
            room = max(self.max_model_len - len(prompt), 1)
            limit = model_settings.max_tokens
            sampling = Sampling(
                max_tokens=room if limit is None else min(limit, room),
                stop_token_ids=self.encoding.stop_tokens_for_assistant_actions(),
                temperature=model_settings.temperature,
                top_p=model_settings.top_p,
            )
            parser = TurnParser(self.encoding, [s.name for s in specs], stream=stream)
            if stream:
                yield parser.created(self._response([], len(prompt), reused, parser, "in_progress"))
            generated: list[int] = []
            async for chunk in self.engine.generate(prompt, sampling):
                for token in chunk:
                    parser.feed(token)
                    generated.append(token)
                if stream:
                    for event in parser.events():
                        yield event
            stops = set(sampling.stop_token_ids)
            cut = len(generated) >= sampling.max_tokens and not (
                generated and generated[-1] in stops
            )
            turn = parser.finish(cut=cut)
            self._remember(items, turn.output, prompt, generated, fingerprint)
            trace = current_trace.get()
            if trace is not None:
                trace.record(
                    "prefix_reuse",
                    model=self.model,
                    prompt_tokens=len(prompt),
                    reused_tokens=reused,
                    mode=self.reuse,
                )
            status: Literal["completed", "incomplete"] = (
                "incomplete" if cut or not turn.output else "completed"
            )
            response = self._response(
                turn.output, len(prompt), reused, parser, status, sampling.max_tokens
            )
            if stream:
                for event in parser.events():
                    yield event
                yield parser.completed(response)
            else:
                yield response

        def _response(
            self,
            output: list[Any],
            prompt: int,
            reused: int,
            parser: TurnParser,
            status: Literal["completed", "incomplete", "in_progress"],
            max_output_tokens: int | None = None,
        ) -> Any:
            return response_object(
                model=self.model,
                output=output,
                input_tokens=prompt,
                cached_tokens=reused,
                output_tokens=parser.tokens,
                reasoning_tokens=parser.reasoning_tokens,
                status=status,
                max_output_tokens=max_output_tokens,
            )

        async def get_response(
            self,
            system_instructions: str | None,
            input: str | list[Any],
            model_settings: ModelSettings,
            tools: list[Any],
            output_schema: Any,
            handoffs: list[Any],
            tracing: Any,
            *,
            previous_response_id: str | None = None,
            conversation_id: str | None = None,
            prompt: Any = None,
        ) -> ModelResponse:
            results = [
                result
                async for result in self._generate(
                    system_instructions, input, model_settings, tools, handoffs, stream=False
                )
            ]
            response = check_response(results[-1])  # a cut answer: asked again or an error
            usage = response.usage
            return ModelResponse(
                output=response.output,
                usage=Usage(
                    requests=1,
                    input_tokens=usage.input_tokens,
                    output_tokens=usage.output_tokens,
                    total_tokens=usage.total_tokens,
                    input_tokens_details=InputTokensDetails(
                        cached_tokens=usage.input_tokens_details.cached_tokens,
                        cache_write_tokens=0,
                    ),
                    output_tokens_details=OutputTokensDetails(
                        reasoning_tokens=usage.output_tokens_details.reasoning_tokens
                    ),
                ),
                response_id=None,
            )

        async def stream_response(
            self,
            system_instructions: str | None,
            input: str | list[Any],
            model_settings: ModelSettings,
            tools: list[Any],
            output_schema: Any,
            handoffs: list[Any],
            tracing: Any,
            *,
            previous_response_id: str | None = None,
            conversation_id: str | None = None,
            prompt: Any = None,
        ) -> AsyncIterator[Any]:
            async for event in self._generate(
                system_instructions, input, model_settings, tools, handoffs, stream=True
            ):
                yield event

    return EmbeddedModel
