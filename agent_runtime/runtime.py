"""`Runtime`: load agents.yaml once, then run its agents (run / stream / run_sync).

```python
async with Runtime.from_yaml("agents.yaml") as runtime:
    result = await runtime.run("weather-haiku", "What's the weather in Tokyo?")
    print(result.final_output)
```

Each run is stateless towards the server (the transcript, reasoning included, is resent every
turn), traced locally (never to OpenAI's cloud), and optionally continues a stored session.
The Agents SDK is imported on first use, not when this module is imported.
"""

from __future__ import annotations

import asyncio
import dataclasses
import difflib
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from agent_runtime.config import Config, load_config
from agent_runtime.errors import (
    AgentRuntimeError,
    BackendError,
    BackendUnavailableError,
    ConfigError,
    ConfigProblem,
    RunError,
    RunLimitError,
)
from agent_runtime.results import (
    AgentChanged,
    Handoff,
    Message,
    Reasoning,
    ReasoningDelta,
    RunEvent,
    RunFinished,
    RunItem,
    RunResult,
    TextDelta,
    ToolCall,
    ToolResult,
    Usage,
)
from agent_runtime.sessions import SessionStore, consistent_prefix
from agent_runtime.tracing import RunTrace, TraceWriter, current_trace, in_nested_run

if TYPE_CHECKING:
    import httpx2
    from agents import Agent, RunConfig, RunHooks
    from agents.items import RunItem as SDKRunItem
    from agents.run_config import CallModelData, ModelInputData, ToolErrorFormatterArgs

    from agent_runtime.backends import Backend
    from agent_runtime.builder import BuiltAgents

__all__ = ["Runtime"]

logger = logging.getLogger(__name__)

Input = str | Sequence[Mapping[str, Any]]
"""A user message, or Responses-API input items (`{"role": "user", "content": "..."}`, ...)."""


class Runtime:
    """The agents of one agents.yaml, ready to run.

    Args:
        config: a loaded configuration (`load_config`), or use `Runtime.from_yaml`.
        base_url: send every backend's requests here instead (e.g. a test server).
        model: use this model name on every backend instead of the declared one.
        api_key: use this API key on every backend.
        http_client: an `httpx2.AsyncClient` for the OpenAI clients (proxies, custom TLS).
        sessions: where sessions are stored (default: `sessions.path` in agents.yaml).
        trace_path: where the local trace goes (default: `tracing.path` in agents.yaml);
            `False` turns tracing off.
    """

    def __init__(
        self,
        config: Config,
        *,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        http_client: httpx2.AsyncClient | None = None,
        sessions: SessionStore | None = None,
        trace_path: str | Path | bool | None = None,
    ) -> None:
        self.config = _with_overrides(config, base_url=base_url, model=model, api_key=api_key)
        spec = self.config.spec
        self._http_client = http_client
        self._backends: dict[str, Backend] | None = None
        self._built: BuiltAgents | None = None
        self._sessions = sessions or SessionStore(self.config.resolve_path(spec.sessions.path))
        if trace_path is False or (trace_path is None and not spec.tracing.enabled):
            path: Path | None = None
        elif trace_path is None or trace_path is True:
            path = self.config.resolve_path(spec.tracing.path)
        else:
            path = Path(trace_path)
        self._tracer = TraceWriter(path, include_sensitive_data=spec.tracing.include_sensitive_data)
        self._hooks: RunHooks[Any] | None = None

    @classmethod
    def from_yaml(
        cls,
        path: str | Path,
        *,
        environ: Mapping[str, str] | None = None,
        base_url: str | None = None,
        model: str | None = None,
        api_key: str | None = None,
        **options: Any,
    ) -> Self:
        """Load agents.yaml (raises `ConfigError` with every problem) and make a runtime."""
        config = load_config(path, environ=environ)
        return cls(config, base_url=base_url, model=model, api_key=api_key, **options)

    # -- agents ---------------------------------------------------------------------------------

    @property
    def agent_names(self) -> list[str]:
        """The declared agents, in file order."""
        return list(self.config.spec.agents)

    def agent(self, name: str) -> Agent[Any]:
        """The SDK `Agent` for a declared agent (an escape hatch: run it with the SDK yourself)."""
        return self._build().agents[self._check_agent(name)]

    def _check_agent(self, name: str) -> str:
        if name in self.config.spec.agents:
            return name
        names = self.agent_names
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            [
                ConfigProblem(
                    file=self.config.source,
                    line=None,
                    column=None,
                    path="agents",
                    message=f"no agent named '{name}'.{hint} Agents: {', '.join(names)}.",
                )
            ]
        )

    def _build(self) -> BuiltAgents:
        if self._built is None:
            from agent_runtime.backends import create_backend
            from agent_runtime.builder import build_agents
            from agent_runtime.tracing import hooks

            self._hooks = hooks()
            self._backends = {
                name: create_backend(name, spec, http_client=self._http_client)
                for name, spec in self.config.spec.backends.items()
            }
            self._built = build_agents(
                self.config,
                self._backends,
                nested_run_config=self._run_config,
                nested_hooks=self._hooks,
            )
        return self._built

    def _run_config(self) -> RunConfig:
        from agents import RunConfig

        return RunConfig(
            tracing_disabled=True,
            tool_not_found_behavior="return_error_to_model",
            tool_error_formatter=self._format_tool_error,
            call_model_input_filter=_drop_finished_reasoning,
        )

    def _format_tool_error(self, args: ToolErrorFormatterArgs[Any]) -> str | None:
        from agent_runtime.tools import tool_not_found_message

        if args.kind != "tool_not_found":
            return None
        trace = current_trace.get()
        agent = trace.agent if trace is not None else ""
        available = self._build().tool_names.get(agent, ())
        return tool_not_found_message(args.tool_name, available)

    # -- running ------------------------------------------------------------------------------

    def _max_turns(self, agent: str, max_turns: int | None) -> int:
        return max_turns if max_turns is not None else self.config.max_turns_of(agent)

    async def _start(
        self, agent: str, input: Input, session: str | None
    ) -> tuple[Agent[Any], list[Any], list[Any], RunTrace]:
        sdk_agent = self.agent(agent)
        new_items = _as_items(input)
        history = await self._sessions.load(session) if session else []
        trace = RunTrace(self._tracer, agent=agent)
        trace.record("run_start", agent=agent, session=session, input=trace.sensitive(new_items))
        return sdk_agent, new_items, history, trace

    async def run(
        self,
        agent: str,
        input: Input,
        *,
        session: str | None = None,
        max_turns: int | None = None,
    ) -> RunResult:
        """Run an agent until its final answer.

        Args:
            agent: the agent's name in agents.yaml.
            input: the user's message, or a list of input items.
            session: continue (and extend) this stored conversation.
            max_turns: model calls allowed (default: the agent's `max_turns`).

        Raises:
            ConfigError: unknown agent.
            BackendUnavailableError: the model server cannot be reached.
            BackendError: the model server keeps failing.
            RunLimitError: `max_turns` reached without a final answer.
            RunError: the run failed otherwise (e.g. an answer that breaks `output_schema`).
        """
        from agents import Runner

        sdk_agent, new_items, history, trace = await self._start(agent, input, session)
        token = current_trace.set(trace)
        try:
            result = await Runner.run(
                sdk_agent,
                [*history, *new_items],
                max_turns=self._max_turns(agent, max_turns),
                run_config=self._run_config(),
                hooks=self._hooks,
            )
        except Exception as exc:
            raise await self._failed(exc, agent, trace, session, new_items, len(history)) from exc
        finally:
            current_trace.reset(token)
        outcome = _result(result, trace)
        if session:
            await self._sessions.append(session, result.to_input_list()[len(history) :])
        _record_end(trace, outcome)
        return outcome

    async def stream(
        self,
        agent: str,
        input: Input,
        *,
        session: str | None = None,
        max_turns: int | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Run an agent, yielding events as they happen; the last one is `RunFinished`.

        Reasoning and answer text arrive as `ReasoningDelta` / `TextDelta`; reasoning, tool
        calls, tool results, messages and handoffs as items once complete; `AgentChanged` when
        an agent starts. Errors are raised as in `run`.
        """
        from agents import Runner
        from openai.types.responses import ResponseReasoningTextDeltaEvent, ResponseTextDeltaEvent

        sdk_agent, new_items, history, trace = await self._start(agent, input, session)
        token = current_trace.set(trace)
        try:
            streamed = Runner.run_streamed(
                sdk_agent,
                [*history, *new_items],
                max_turns=self._max_turns(agent, max_turns),
                run_config=self._run_config(),
                hooks=self._hooks,
            )
            names: dict[str, str] = {}
            current = agent
            try:
                async for event in streamed.stream_events():
                    if event.type == "agent_updated_stream_event":
                        current = event.new_agent.name
                        yield AgentChanged(agent=current)
                    elif event.type == "raw_response_event":
                        data = event.data
                        if isinstance(data, ResponseReasoningTextDeltaEvent):
                            yield ReasoningDelta(agent=current, text=data.delta)
                        elif isinstance(data, ResponseTextDeltaEvent):
                            yield TextDelta(agent=current, text=data.delta)
                    elif event.type == "run_item_stream_event":
                        item = _item(event.item, names)
                        if item is not None:
                            yield item
            except Exception as exc:
                raise await self._failed(
                    exc, agent, trace, session, new_items, len(history)
                ) from exc
            finally:
                streamed.cancel()
        finally:
            current_trace.reset(token)
        outcome = _result(streamed, trace)
        if session:
            await self._sessions.append(session, streamed.to_input_list()[len(history) :])
        _record_end(trace, outcome)
        yield RunFinished(result=outcome)

    def run_sync(
        self,
        agent: str,
        input: Input,
        *,
        session: str | None = None,
        max_turns: int | None = None,
    ) -> RunResult:
        """`run` for code without an event loop (each call uses a fresh loop and connections)."""

        async def run_then_release() -> RunResult:
            try:
                return await self.run(agent, input, session=session, max_turns=max_turns)
            finally:
                await self._release_clients()

        return asyncio.run(run_then_release())

    async def _failed(
        self,
        exc: Exception,
        agent: str,
        trace: RunTrace,
        session: str | None,
        new_items: list[Any],
        history_length: int,
    ) -> AgentRuntimeError:
        error = self._translate(exc, trace.agent or agent)
        if session:
            produced = _produced_items(exc) or trace.last_input[history_length + len(new_items) :]
            await self._sessions.append(session, consistent_prefix([*new_items, *produced]))
        trace.record("run_end", agent=trace.agent, error=f"{type(error).__name__}: {error}")
        return error

    def _translate(self, exc: Exception, agent: str) -> AgentRuntimeError:
        import openai
        from agents.exceptions import AgentsException, MaxTurnsExceeded

        if isinstance(exc, AgentRuntimeError):
            return exc
        backend_name, backend_spec = self.config.backend_of(agent)
        url = backend_spec.base_url
        if isinstance(exc, MaxTurnsExceeded):
            return RunLimitError(
                f"agent `{agent}` used all its turns without a final answer ({exc.message}). "
                "Raise `max_turns` for the agent in agents.yaml, or pass --max-turns."
            )
        if isinstance(exc, openai.APIConnectionError):
            cause = "timed out" if isinstance(exc, openai.APITimeoutError) else _cause(exc)
            return BackendUnavailableError(
                f"cannot reach the model server of backend `{backend_name}` at {url} ({cause}). "
                "Start one there (`vllm serve openai/gpt-oss-20b`) or point `base_url` "
                "(--base-url) at a running server.",
                url=url,
            )
        if isinstance(exc, openai.APIStatusError):
            return BackendError(
                f"the model server of backend `{backend_name}` at {url} answered "
                f"{exc.status_code}: {_api_message(exc)}",
                url=url,
            )
        if isinstance(exc, AgentsException):
            return RunError(f"agent `{agent}` failed: {exc}")
        return RunError(f"agent `{agent}` failed: {type(exc).__name__}: {exc}")

    async def clear_session(self, session: str) -> None:
        """Forget a stored conversation."""
        await self._sessions.clear(session)

    async def session_items(self, session: str) -> list[Any]:
        """The stored input items of a conversation (empty for an unknown session)."""
        return await self._sessions.load(session)

    # -- lifecycle ----------------------------------------------------------------------------

    async def _release_clients(self) -> None:
        backends, self._backends, self._built = self._backends, None, None
        for backend in (backends or {}).values():
            await backend.aclose()

    async def aclose(self) -> None:
        """Close HTTP connections, the session database and the trace file."""
        await self._release_clients()
        self._sessions.close()
        self._tracer.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# -- helpers --------------------------------------------------------------------------------


def _with_overrides(
    config: Config, *, base_url: str | None, model: str | None, api_key: str | None
) -> Config:
    changes: dict[str, Any] = {}
    if base_url is not None:
        changes["base_url"] = base_url
    if model is not None:
        changes["model"] = model
    if api_key is not None:
        from pydantic import SecretStr

        changes["api_key"] = SecretStr(api_key)
    if not changes:
        return config
    backends = {
        name: backend.model_copy(update=changes) for name, backend in config.spec.backends.items()
    }
    spec = config.spec.model_copy(update={"backends": backends})
    return dataclasses.replace(config, spec=spec)


def _as_items(input: Input) -> list[Any]:
    if isinstance(input, str):
        return [{"role": "user", "content": input}]
    return [dict(item) for item in input]


def _is_user_message(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("role") == "user"
        and item.get("type", "message") == "message"
    )


def _drop_finished_reasoning(data: CallModelData[Any]) -> ModelInputData:
    """Resend reasoning of the running turn only, as harmony drops finished turns' reasoning."""
    from agents.run_config import ModelInputData

    items = data.model_data.input
    trace = current_trace.get()
    if trace is not None and not in_nested_run.get():
        trace.last_input = items  # what a failed run had produced, up to this model call
    last_user = max((i for i, item in enumerate(items) if _is_user_message(item)), default=0)
    if not any(
        isinstance(item, dict) and item.get("type") == "reasoning" for item in items[:last_user]
    ):
        return data.model_data
    kept = [
        item
        for index, item in enumerate(items)
        if index >= last_user or not (isinstance(item, dict) and item.get("type") == "reasoning")
    ]
    return ModelInputData(input=kept, instructions=data.model_data.instructions)


def _cause(exc: BaseException) -> str:
    """The root cause of a connection failure, in a few words."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    if any(isinstance(e, ConnectionRefusedError) for e in seen):
        return "connection refused"
    texts = [str(e) for e in seen[1:] if str(e)]
    return texts[-1] if texts else (str(exc) or type(exc).__name__)


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return str(getattr(exc, "message", exc))


def _text_of(raw: Any) -> str:
    parts = getattr(raw, "content", None) or []
    texts = [getattr(p, "text", "") for p in parts if getattr(p, "text", None)]
    if not texts:
        texts = [getattr(p, "text", "") for p in getattr(raw, "summary", None) or []]
    return "\n".join(texts)


def _item(item: SDKRunItem, names: dict[str, str]) -> RunItem | None:
    """An SDK run item as a runtime item (None for kinds the runtime does not report)."""
    from agents.items import (
        HandoffOutputItem,
        ItemHelpers,
        MessageOutputItem,
        ReasoningItem,
        ToolCallItem,
        ToolCallOutputItem,
    )

    agent = item.agent.name
    if isinstance(item, ReasoningItem):
        return Reasoning(agent=agent, text=_text_of(item.raw_item))
    if isinstance(item, ToolCallItem):
        raw = item.raw_item
        call_id = str(getattr(raw, "call_id", "") or "")
        name = str(getattr(raw, "name", "") or type(raw).__name__)
        names[call_id] = name
        return ToolCall(
            agent=agent, name=name, arguments=str(getattr(raw, "arguments", "")), call_id=call_id
        )
    if isinstance(item, ToolCallOutputItem):
        raw_output = item.raw_item
        call_id = str(
            raw_output.get("call_id", "")
            if isinstance(raw_output, dict)
            else getattr(raw_output, "call_id", "")
        )
        return ToolResult(
            agent=agent, name=names.get(call_id, ""), call_id=call_id, output=str(item.output)
        )
    if isinstance(item, MessageOutputItem):
        return Message(agent=agent, text=ItemHelpers.text_message_output(item))
    if isinstance(item, HandoffOutputItem):
        return Handoff(agent=item.source_agent.name, to_agent=item.target_agent.name)
    return None


def _result(result: Any, trace: RunTrace) -> RunResult:
    names: dict[str, str] = {}
    items = [converted for item in result.new_items if (converted := _item(item, names))]
    usage = result.context_wrapper.usage
    return RunResult(
        final_output=result.final_output,
        items=tuple(items),
        usage=Usage(
            requests=usage.requests,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            reasoning_tokens=usage.output_tokens_details.reasoning_tokens,
            cached_tokens=usage.input_tokens_details.cached_tokens,
        ),
        turns=len(result.raw_responses),
        trace_id=trace.trace_id,
        agent=result.last_agent.name,
    )


def _record_end(trace: RunTrace, outcome: RunResult) -> None:
    trace.record(
        "run_end",
        agent=outcome.agent,
        turns=outcome.turns,
        usage=dataclasses.asdict(outcome.usage),
        final_output=trace.sensitive(outcome.final_output),
    )


def _produced_items(exc: Exception) -> list[Any]:
    """The input items a failed run had produced before it failed (from the SDK's error)."""
    run_data = getattr(exc, "run_data", None)
    if run_data is None:
        return []
    produced: list[Any] = []
    for item in run_data.new_items:
        try:
            produced.append(item.to_input_item())
        except Exception:  # an item the SDK cannot replay: stop at the last good one
            break
    return produced
