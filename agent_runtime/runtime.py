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
import contextlib
import dataclasses
import functools
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

from agent_runtime.backends.retry import RetryEvent, api_error_message
from agent_runtime.config import BackendSpec, Config, ModelSettingsSpec, load_config
from agent_runtime.config.schema import TOOL_CHOICES
from agent_runtime.errors import (
    AgentRuntimeError,
    BackendError,
    ConfigError,
    ConfigProblem,
    RunError,
    RunLimitError,
)
from agent_runtime.guards import CallGuard
from agent_runtime.redact import Redactor, current_redactor, own_logger
from agent_runtime.results import (
    AgentChanged,
    ReasoningDelta,
    Retrying,
    RunEvent,
    RunFinished,
    RunResult,
    TextDelta,
    Usage,
    run_item,
    run_result,
)
from agent_runtime.sessions import SessionStore, consistent_prefix, input_items, produced_items
from agent_runtime.text import did_you_mean, kind_of, show
from agent_runtime.tracing import (
    RunTrace,
    TraceWriter,
    current_trace,
    in_nested_run,
    quiet_sdk_model_errors,
)

if TYPE_CHECKING:
    import httpx2
    from agents import Agent, RunConfig, RunHooks
    from agents.run_config import CallModelData, ModelInputData, ToolErrorFormatterArgs

    from agent_runtime.backends import Backend, EmbeddedBackend
    from agent_runtime.backends.embedded.engine import Engine
    from agent_runtime.builder import BuiltAgents
    from agent_runtime.launch import LaunchProgress, ManagedServer

__all__ = ["Runtime"]

logger = own_logger(__name__)

Input = str | Sequence[Mapping[str, Any]]
"""A user message, or Responses-API input items (`{"role": "user", "content": "..."}`, ...)."""


class Runtime:
    """The agents of one agents.yaml, ready to run.

    Args:
        config: a loaded configuration (`load_config`), or use `Runtime.from_yaml`.
        base_url: send every backend's requests here instead (e.g. a test server).
        model: use this model name on every backend instead of the declared one.
        api_key: use this API key on every backend.
        http_client: an `httpx2.AsyncClient` for the OpenAI clients (proxies, custom TLS). It
            stays the caller's: `aclose()` leaves it open.
        sessions: where sessions are stored (default: `sessions.path` in agents.yaml).
        trace_path: where the local trace goes (default: `tracing.path` in agents.yaml);
            `False` turns tracing off.
        launch_progress: called with the progress of the servers `start()` starts (backends
            with `launch: auto`), e.g. to show a spinner while vLLM loads the model.
        engines: engines for `vllm-embedded` backends, by backend name, instead of starting
            vLLM (e.g. `agent_runtime.testing.FakeEngine` in tests).
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
        launch_progress: Callable[[LaunchProgress], object] | None = None,
        engines: Mapping[str, Engine] | None = None,
    ) -> None:
        self.config = _with_overrides(config, base_url=base_url, model=model, api_key=api_key)
        self.redactor = Redactor(self.config.secrets())
        """Masks this runtime's secrets (API keys, header values, URL passwords) in text; its
        errors and trace records pass through it. For your own log handlers:
        `handler.addFilter(RedactFilter(runtime.redactor.text))`."""
        self._launch_progress = launch_progress
        self._servers: dict[str, ManagedServer] = {}
        spec = self.config.spec
        self._http_client = http_client
        self._engines = dict(engines or {})
        self._backends: dict[str, Backend | EmbeddedBackend] | None = None
        self._built: BuiltAgents | None = None
        self._sessions = sessions or SessionStore(self.config.resolve_path(spec.sessions.path))
        if trace_path is False or (trace_path is None and not spec.tracing.enabled):
            path: Path | None = None
        elif trace_path is None or trace_path is True:
            path = self.config.resolve_path(spec.tracing.path)
        else:
            path = Path(trace_path)
        self._tracer = TraceWriter(
            path,
            include_sensitive_data=spec.tracing.include_sensitive_data,
            redactor=self.redactor,
            max_field_chars=spec.tracing.max_field_chars,
        )
        self._hooks: RunHooks[Any] | None = None
        self._streams: set[asyncio.Task[None]] = set()
        quiet_sdk_model_errors()

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
        hint = did_you_mean(name, names, quote="'") or "."
        raise self.config.error(
            "agents", f"no agent named '{name}'{hint} Agents: {', '.join(names)}."
        )

    def _build(self) -> BuiltAgents:
        if self._built is None:
            from agent_runtime.backends import create_backend
            from agent_runtime.builder import build_agents
            from agent_runtime.tracing import hooks

            self._hooks = hooks()
            backends = {}
            for name, spec in self.config.spec.backends.items():
                try:
                    backends[name] = create_backend(
                        name, spec, http_client=self._http_client, engine=self._engines.get(name)
                    )
                except AgentRuntimeError:
                    raise
                except Exception as exc:  # e.g. a base_url the HTTP client cannot use
                    error = self.config.error(
                        f"backends.{name}",
                        f"cannot create the backend's client: {type(exc).__name__}: "
                        f"{str(exc).rstrip('.')}. Check its base_url and headers.",
                    )
                    raise self.redactor.exception(error) from self.redactor.exception(exc)
            self._backends = backends
            self._built = build_agents(
                self.config,
                self._backends,
                nested_run_config=self._run_config,
                nested_hooks=self._hooks,
            )
        return self._built

    def _format_tool_error(self, args: ToolErrorFormatterArgs[Any]) -> str | None:
        from agent_runtime.tools import tool_not_found_message

        if args.kind != "tool_not_found":
            return None
        trace = current_trace.get()
        agent = trace.agent if trace is not None else ""
        available = self._build().tool_names.get(agent, ())
        message = tool_not_found_message(args.tool_name, available)
        if trace is not None:
            # The SDK swallows what the formatter raises: the limit is raised before the next
            # model call instead (`_drop_finished_reasoning`).
            trace.guard.invalid_call(args.tool_name, message.removeprefix("Error: "), defer=True)
        return message

    # -- running ------------------------------------------------------------------------------

    def _options(
        self,
        agent: str,
        *,
        call: str,
        max_turns: int | None,
        context: object,
        instructions: str | None,
        model_settings: ModelSettingsSpec | Mapping[str, Any] | None,
    ) -> _RunOptions:
        """What one call asks for beyond agents.yaml, checked before anything starts."""
        agent = self._check_agent(agent)
        settings = _run_model_settings(model_settings, call)
        if settings is not None:
            self._check_tool_choice(agent, settings.tool_choice, call)
        return _RunOptions(
            max_turns=max_turns if max_turns is not None else self.config.max_turns_of(agent),
            context=context,
            instructions=instructions or None,
            model_settings=settings,
        )

    def _check_tool_choice(self, agent: str, tool_choice: str | None, call: str) -> None:
        """A run's `tool_choice` naming a tool names one of the agent's."""
        if tool_choice is None or tool_choice in TOOL_CHOICES:
            return
        tools = self._build().tool_names.get(agent, ())
        if tool_choice not in tools:
            hint = did_you_mean(tool_choice, list(tools)) or "."
            listing = ", ".join(f"`{tool}`" for tool in tools) or "none"
            raise _settings_error(
                call,
                {
                    "tool_choice": f"agent `{agent}` has no tool named `{tool_choice}`{hint} "
                    f"Its tools: {listing}."
                },
            )

    def _run_config(self, options: _RunOptions | None = None) -> RunConfig:
        from agents import RunConfig

        overrides = None
        if options is not None and options.model_settings is not None:
            from agent_runtime.builder import model_settings

            overrides = model_settings(options.model_settings, chat=False)
        instructions = options.instructions if options is not None else None
        return RunConfig(
            tracing_disabled=True,
            tool_not_found_behavior="return_error_to_model",
            tool_error_formatter=self._format_tool_error,
            call_model_input_filter=functools.partial(_model_input, instructions=instructions),
            model_settings=overrides,
        )

    def _session_turn(
        self, session: str | None, call: str
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """The session held for one run (runs of one session take turns); nothing without one.
        An empty or blank id is refused: it would silently run without memory."""
        if session is not None and not session.strip():
            raise ConfigError(
                [
                    ConfigProblem(
                        file=f"{call}()",
                        line=None,
                        column=None,
                        path="session",
                        message=f"the session id is empty ({session!r}). Pass a non-empty id, "
                        "or session=None for a run without memory.",
                    )
                ]
            )
        return self._sessions.hold(session) if session else contextlib.nullcontext()

    async def _begin(self, agent: str, input: Input, session: str | None) -> _Run:
        sdk_agent = self.agent(agent)
        new_items = _as_items(input)
        history = await self._sessions.load(session) if session else []
        repeats, invalid = self.config.guard_limits_of(agent)
        budget = self.config.run_timeout_of(agent)
        deadline = None if budget is None else asyncio.get_running_loop().time() + budget
        guard = CallGuard(
            repeats, invalid, deadline=None if budget is None else time.monotonic() + budget
        )
        trace = RunTrace(self._tracer, agent=agent, guard=guard)
        trace.record("run_start", agent=agent, session=session, input=trace.sensitive(new_items))
        return _Run(
            agent=agent,
            sdk_agent=sdk_agent,
            session=session,
            new_items=new_items,
            history=history,
            trace=trace,
            budget_s=budget,
            deadline=deadline,
        )

    @contextlib.asynccontextmanager
    async def _running(self, run: _Run) -> AsyncIterator[None]:
        """The run's context: its trace for hooks and tools; failures translated and the
        session left consistent, also when the run is cancelled."""
        token = current_trace.set(run.trace)
        redacting = current_redactor.set(self.redactor)
        try:
            yield
        except asyncio.CancelledError:
            if run.session:
                # Cancelled: no more awaiting; a short synchronous write keeps what was done.
                try:
                    self._sessions.append_sync(
                        run.session, run.consistent_items(), timeout_s=_CANCELLED_WRITE_S
                    )
                except AgentRuntimeError as failure:
                    _session_write_failed(run, failure)
            run.trace.record(
                "run_end", agent=run.trace.agent, outcome="cancelled", error="cancelled"
            )
            raise
        except Exception as exc:
            if isinstance(exc, TimeoutError) and run.past_deadline():
                await _settle_tools(run.trace.guard)
            error = self.redactor.exception(self._translate(exc, run))
            self.redactor.exception(exc)
            if run.session:
                try:
                    await self._sessions.append(run.session, run.consistent_items(exc))
                except AgentRuntimeError as failure:
                    _session_write_failed(run, failure)
            run.trace.record(
                "run_end",
                agent=run.trace.agent,
                outcome="failed",
                error=f"{type(error).__name__}: {error}",
            )
            if error.__traceback__ is not None:
                # Ours, raised before (by a tool, a filter...): its own cause stays.
                raise error from error.__cause__
            raise error from exc
        finally:
            current_redactor.reset(redacting)
            current_trace.reset(token)

    async def _finish(self, run: _Run, result: Any) -> RunResult:
        outcome = _with_earlier(run_result(result, trace_id=run.trace.trace_id), run.earlier)
        try:
            if run.session:
                new_items = result.to_input_list()[len(run.history) :]
                try:
                    await self._sessions.append(run.session, new_items)
                except AgentRuntimeError as failure:
                    warning = _session_write_failed(run, failure)
                    outcome = dataclasses.replace(outcome, warnings=(*outcome.warnings, warning))
        finally:
            _record_end(run.trace, outcome)
        return outcome

    async def run(
        self,
        agent: str,
        input: Input,
        *,
        session: str | None = None,
        max_turns: int | None = None,
        context: object = None,
        instructions: str | None = None,
        model_settings: ModelSettingsSpec | Mapping[str, Any] | None = None,
    ) -> RunResult:
        """Run an agent until its final answer.

        Args:
            agent: the agent's name in agents.yaml.
            input: the user's message, or a list of input items.
            session: continue (and extend) this stored conversation. Runs of one session
                take turns: this one starts when the one before it has ended.
            max_turns: model calls allowed (default: the agent's `max_turns`).
            context: any object, handed to tools that take a `RunContextWrapper` as its
                `.context` (a user id, a database pool...), those of agents used as tools
                included. It stays in this process: never sent, stored or traced.
            instructions: text added to the instructions of this run's agents (the one named
                and those it hands off to) for this run only.
            model_settings: settings that replace the agents' own for this run: the keys of
                `model_settings` in agents.yaml, as a mapping or a `ModelSettingsSpec`.

        Raises:
            ConfigError: unknown agent, or `model_settings` that are not valid.
            BackendUnavailableError: the model server cannot be reached.
            BackendError: the model server keeps failing.
            RunLimitError: `max_turns`, `run_timeout_s` or the loop guard ended the run.
            RunError: the run failed otherwise (e.g. an answer that breaks `output_schema`).
        """
        from agents import Runner

        options = self._options(
            agent,
            call="run",
            max_turns=max_turns,
            context=context,
            instructions=instructions,
            model_settings=model_settings,
        )
        async with self._session_turn(session, "run"):
            run = await self._begin(agent, input, session)
            async with self._running(run), asyncio.timeout_at(run.deadline):
                while True:
                    try:
                        result = await Runner.run(
                            run.sdk_agent,
                            [*run.history, *run.new_items],
                            context=options.context,
                            max_turns=options.max_turns - run.turns_used,
                            run_config=self._run_config(options),
                            hooks=self._hooks,
                        )
                        break
                    except Exception as exc:
                        if self._retry_answer(run, exc, options.max_turns) is None:
                            raise
            return await self._finish(run, result)

    async def stream(
        self,
        agent: str,
        input: Input,
        *,
        session: str | None = None,
        max_turns: int | None = None,
        context: object = None,
        instructions: str | None = None,
        model_settings: ModelSettingsSpec | Mapping[str, Any] | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Run an agent, yielding events as they happen; the last one is `RunFinished`.

        Reasoning and answer text arrive as `ReasoningDelta` / `TextDelta`; reasoning, tool
        calls, tool results, messages and handoffs as items once complete; `AgentChanged` when
        an agent starts; `Retrying` when a model call failed part-way and is made again (drop
        the partial text). Arguments and errors are those of `run`.

        The run goes on in its own task while the events are read. A stream left before its
        end (`break`, `aclose()`, the reading task cancelled, a client gone) cancels the run,
        which ends as a cancelled run: running tools are cancelled, the trace gets its
        `run_end` record and the session keeps what was done. That happens when the stream
        is closed: at once with `aclose()` (or `contextlib.aclosing`), else when the
        generator is garbage-collected, at the latest when the runtime is closed.
        """
        options = self._options(
            agent,
            call="stream",
            max_turns=max_turns,
            context=context,
            instructions=instructions,
            model_settings=model_settings,
        )
        relay: asyncio.Queue[RunEvent | _Failed] = asyncio.Queue()
        pump = asyncio.create_task(
            self._pump(agent, input, session, options, relay.put_nowait),
            name=f"agent-runtime stream of {agent}",
        )
        self._streams.add(pump)
        pump.add_done_callback(self._streams.discard)
        ended = False
        try:
            while not ended:
                event = await relay.get()
                if isinstance(event, _Failed):
                    ended = True
                    raise event.error
                ended = isinstance(event, RunFinished)
                yield event
        finally:
            if not ended:
                pump.cancel()
                await asyncio.wait({pump})

    async def _pump(
        self,
        agent: str,
        input: Input,
        session: str | None,
        options: _RunOptions,
        emit: Callable[[RunEvent | _Failed], None],
    ) -> None:
        """A streamed run, in a task of its own: whoever reads the stream, and however the
        reading stops, the run ends here (recorded, its session stored) and its errors reach
        the reader through `emit`, never an unretrieved task."""
        from agents import Runner

        try:
            async with self._session_turn(session, "stream"):
                run = await self._begin(agent, input, session)
                async with self._running(run):
                    while True:
                        streamed = Runner.run_streamed(
                            run.sdk_agent,
                            [*run.history, *run.new_items],
                            context=options.context,
                            max_turns=options.max_turns - run.turns_used,
                            run_config=self._run_config(options),
                            hooks=self._hooks,
                        )
                        run.streamed = streamed
                        events = cast(AsyncGenerator[Any, None], streamed.stream_events())
                        try:
                            try:
                                async with asyncio.timeout_at(run.deadline):
                                    await _relay(events, run.sdk_agent.name, emit)
                            finally:
                                await _stop(streamed, events)
                            break
                        except Exception as exc:
                            retrying = self._retry_answer(run, exc, options.max_turns)
                            if retrying is None:
                                raise
                            emit(retrying)
                result = await self._finish(run, streamed)
        except Exception as exc:  # raised where the stream is read
            emit(_Failed(exc))
        else:
            emit(RunFinished(result=result))

    def run_sync(
        self,
        agent: str,
        input: Input,
        *,
        session: str | None = None,
        max_turns: int | None = None,
        context: object = None,
        instructions: str | None = None,
        model_settings: ModelSettingsSpec | Mapping[str, Any] | None = None,
    ) -> RunResult:
        """`run` for code without an event loop (each call uses a fresh loop and connections)."""

        async def run_then_release() -> RunResult:
            try:
                return await self.run(
                    agent,
                    input,
                    session=session,
                    max_turns=max_turns,
                    context=context,
                    instructions=instructions,
                    model_settings=model_settings,
                )
            finally:
                await self._release_clients()

        return asyncio.run(run_then_release())

    def _retry_answer(self, run: _Run, exc: Exception, max_turns: int) -> Retrying | None:
        """Prepare the next attempt of a run whose final answer broke the answering agent's
        `output_schema`: the answer and what is wrong with it go back to the model. None when
        `exc` is another failure.

        Raises:
            RunError: the agent's `output_retries` are used up.
            RunLimitError: no turn is left for another answer.
        """
        from agents import ModelBehaviorError

        from agent_runtime.builder import InvalidAnswer

        invalid = exc.__cause__
        details = getattr(exc, "run_data", None)
        if not (isinstance(exc, ModelBehaviorError) and isinstance(invalid, InvalidAnswer)):
            return None
        if details is None:
            return None
        allowed = self.config.output_retries_of(invalid.agent)
        run.turns_used += len(details.raw_responses) + 1
        if run.answer_retries >= allowed:
            raise RunError(
                f"agent `{invalid.agent}` answered {run.answer_retries + 1} time(s) without "
                f"matching its output_schema (output_retries={allowed}); last: "
                f"{invalid.problems}. Raise `output_retries` for the agent in agents.yaml, or "
                "say in its instructions what the answer must look like."
            ) from exc
        if run.turns_used >= max_turns:
            raise RunLimitError(
                f"agent `{invalid.agent}` used all its turns (max_turns={max_turns}) without a "
                f"final answer that matches its output_schema; last: {invalid.problems}. Raise "
                "`max_turns` for the agent in agents.yaml, or pass --max-turns."
            ) from exc
        run.answer_retries += 1
        run.earlier.append(details)
        run.new_items = [
            *run.new_items,
            *input_items(details.new_items),
            {"role": "assistant", "content": invalid.answer},
            {"role": "user", "content": _retry_request(invalid.problems)},
        ]
        run.sdk_agent = details.last_agent
        run.streamed = None
        run.trace.record(
            "output_retry",
            agent=invalid.agent,
            attempt=run.answer_retries,
            output_retries=allowed,
            answer=run.trace.sensitive(invalid.answer),
            problems=run.trace.sensitive(invalid.problems),
        )
        return Retrying(
            agent=invalid.agent,
            attempt=run.answer_retries,
            cause=f"the answer does not match the output_schema: {invalid.problems}",
        )

    def _translate(self, exc: Exception, run: _Run) -> AgentRuntimeError:
        import openai
        from agents.exceptions import AgentsException, MaxTurnsExceeded

        agent = run.trace.agent or run.agent
        own = _own_error(exc)
        if own is not None:
            return own
        if isinstance(exc, TimeoutError) and run.past_deadline():
            left = run.trace.guard.left_behind()
            for phrase in left:
                run.trace.record("tool_abandoned", agent=run.agent, detail=phrase)
            tools = f" Tools running then: {'; '.join(left)}." if left else ""
            return RunLimitError(
                f"the run of agent `{run.agent}` took longer than its time budget "
                f"(run_timeout_s={run.budget_s:g} s) and was stopped.{tools}"
            )
        backend_name, backend_spec = self.config.backend_of(agent)
        url = backend_spec.url
        if isinstance(exc, MaxTurnsExceeded):
            return RunLimitError(
                f"agent `{agent}` used all its turns without a final answer ({exc.message}). "
                "Raise `max_turns` for the agent in agents.yaml, or pass --max-turns."
            )
        if isinstance(exc, openai.APIStatusError):
            return BackendError(
                f"the model server of backend `{backend_name}` at {url} answered "
                f"{exc.status_code}: {api_error_message(exc)}",
                url=url,
            )
        if isinstance(exc, AgentsException):
            detail = str(exc)
            if "status=incomplete" in detail:
                detail += (
                    " The answer was cut at the output token limit: raise "
                    "`model_settings.max_tokens`, or lower `reasoning_effort`."
                )
            return RunError(f"agent `{agent}` failed: {detail}")
        return RunError(f"agent `{agent}` failed: {type(exc).__name__}: {exc}")

    def observe(self, listener: Callable[[Mapping[str, Any]], object]) -> Callable[[], None]:
        """Call `listener` with every trace record of this runtime's runs as it is made
        (`run_start`, `model_call`, `tool_call`, `handoff`, `run_end`...; see
        `agent_runtime.tracing`), also with tracing off: for metrics. It runs inside the run,
        so it must be quick; what it raises is logged and ignored. The record is not redacted
        yet: do not log it. Returns the function that stops the calls."""
        return self._tracer.listen(listener)

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

    async def start(self) -> None:
        """Make sure the servers of backends with `launch: auto` are up: one already answering
        at the backend's base_url is used as it is, otherwise it is started (`vllm serve`) and
        waited for. `async with` calls this; `aclose()` stops what it started. Calling it again
        does nothing.

        Raises:
            BackendError: a server cannot be started (vllm missing, port taken by something
                else, the process died during start-up, `startup_timeout_s` passed).
        """
        from agent_runtime.launch import ensure_server, plan_launch

        redacting = current_redactor.set(self.redactor)  # the launcher's log lines
        try:
            for name, spec in self.config.spec.backends.items():
                if spec.launch == "auto" and name not in self._servers:
                    plan = plan_launch(self.config, name)
                    self._servers[name] = await ensure_server(plan, progress=self._launch_progress)
        except AgentRuntimeError as error:
            self.redactor.exception(error)
            raise
        finally:
            current_redactor.reset(redacting)

    async def _cancel_streams(self) -> None:
        """Cancel the streamed runs still going on this loop (streams left unclosed)."""
        loop = asyncio.get_running_loop()
        pumps = [pump for pump in self._streams if pump.get_loop() is loop]
        for pump in pumps:
            pump.cancel()
        if pumps:
            await asyncio.wait(pumps)

    async def aclose(self) -> None:
        """Cancel streamed runs still going (streams left unclosed); close HTTP connections,
        the session database and the trace file; stop the model servers `start()` started
        (those found running are left alone)."""
        try:
            await self._cancel_streams()
            await self._release_clients()
            self._sessions.close()
            self._tracer.close()
        finally:
            servers, self._servers = self._servers, {}
            redacting = current_redactor.set(self.redactor)
            try:
                for server in reversed(servers.values()):
                    await server.stop()
            finally:
                current_redactor.reset(redacting)

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


# -- helpers --------------------------------------------------------------------------------

_CANCELLED_WRITE_S = 1.0
"""How long a cancelled run's session write waits for a locked database (the loop waits too)."""


def _session_write_failed(run: _Run, failure: AgentRuntimeError) -> str:
    """Report that a run's new items were not stored in its session; the warning text."""
    warning = (
        f"the run's new items were not stored in session {run.session!r}, which does not "
        f"remember this exchange: {failure}"
    )
    logger.warning("%s", warning)
    run.trace.record(
        "session_write_failed", agent=run.trace.agent, session=run.session, error=str(failure)
    )
    return warning


async def _settle_tools(guard: CallGuard) -> None:
    """Give the async tools cancelled with a run that passed its deadline the time they have
    to stop (`CANCEL_GRACE_S`), so that only those that did not are reported as abandoned."""
    from agent_runtime.tools import CANCEL_GRACE_S

    tasks = guard.running_tasks()
    if tasks:
        await asyncio.wait(tasks, timeout=CANCEL_GRACE_S)


def _with_overrides(
    config: Config, *, base_url: str | None, model: str | None, api_key: str | None
) -> Config:
    changes: dict[str, Any] = {}
    if base_url is not None:
        changes["base_url"] = base_url
        changes["launch"] = "never"  # use that server: start none
    if model is not None:
        changes["model"] = model
    if api_key is not None:
        from pydantic import SecretStr

        from agent_runtime.config import clean_secret

        try:
            changes["api_key"] = SecretStr(clean_secret(api_key, what="the api_key argument"))
        except ValueError as exc:
            raise config.error("api_key", str(exc)) from None
    if not changes:
        return config
    backends = {
        name: backend.model_copy(update=changes | _served(backend, base_url))
        for name, backend in config.spec.backends.items()
    }
    spec = config.spec.model_copy(update={"backends": backends})
    return dataclasses.replace(config, spec=spec)


def _served(backend: BackendSpec, base_url: str | None) -> dict[str, Any]:
    """A base_url given for an in-process backend means: use the vLLM server there instead."""
    if base_url is None or backend.kind != "vllm-embedded":
        return {}
    return {"kind": "vllm", "engine": None}


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


def _model_input(data: CallModelData[Any], *, instructions: str | None) -> ModelInputData:
    """What each model call of a run sends: finished reasoning dropped, the run's own
    `instructions` added to the agent's."""
    from agents.run_config import ModelInputData

    prepared = _drop_finished_reasoning(data)
    if not instructions:
        return prepared
    own = prepared.instructions
    return ModelInputData(
        input=prepared.input, instructions=f"{own}\n\n{instructions}" if own else instructions
    )


def _drop_finished_reasoning(data: CallModelData[Any]) -> ModelInputData:
    """Resend reasoning of the running turn only, as harmony drops finished turns' reasoning."""
    from agents.run_config import ModelInputData

    items = data.model_data.input
    trace = current_trace.get()
    if trace is not None:
        trace.guard.raise_if_tripped()
        if not in_nested_run.get():
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


def _run_model_settings(
    value: ModelSettingsSpec | Mapping[str, Any] | None, call: str
) -> ModelSettingsSpec | None:
    """A run's `model_settings=` checked as agents.yaml's are (`ConfigError` naming each
    problem)."""
    if value is None or isinstance(value, ModelSettingsSpec):
        return value
    if not isinstance(value, Mapping):
        raise _settings_error(
            call,
            {"": f"expected a mapping of settings or a `ModelSettingsSpec`, got {kind_of(value)}"},
        )
    import pydantic

    try:
        return ModelSettingsSpec.model_validate(dict(value))
    except pydantic.ValidationError as exc:
        problems = {
            ".".join(str(part) for part in error["loc"]): _setting_problem(error)
            for error in exc.errors(include_url=False)
        }
        raise _settings_error(call, problems) from None


def _setting_problem(error: Any) -> str:
    """One pydantic error of a run's `model_settings`, in words."""
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        names = list(ModelSettingsSpec.model_fields)
        hint = did_you_mean(str(loc[-1]), names)
        if hint:
            return "unknown setting" + hint
        return "unknown setting (settings: " + ", ".join(f"`{name}`" for name in names) + ")"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if "got " not in message:
        message += f", got {show(error['input'], secret=loc[:1] == ('extra_headers',))}"
    return message


def _settings_error(call: str, problems: Mapping[str, str]) -> ConfigError:
    """`ConfigError` for a run's `model_settings=`: `run(): model_settings.KEY: problem`."""
    return ConfigError(
        [
            ConfigProblem(
                file=f"{call}()",
                line=None,
                column=None,
                path=f"model_settings.{key}" if key else "model_settings",
                message=message,
            )
            for key, message in problems.items()
        ]
    )


async def _relay(
    events: AsyncIterator[Any], agent: str, emit: Callable[[RunEvent | _Failed], None]
) -> None:
    """The SDK's stream events as the runtime's, handed to `emit` as they come."""
    from openai.types.responses import ResponseReasoningTextDeltaEvent, ResponseTextDeltaEvent

    names: dict[str, str] = {}
    current = agent
    async for event in events:
        if event.type == "agent_updated_stream_event":
            current = event.new_agent.name
            emit(AgentChanged(agent=current))
        elif event.type == "raw_response_event":
            data = event.data
            if isinstance(data, ResponseReasoningTextDeltaEvent):
                emit(ReasoningDelta(agent=current, text=data.delta))
            elif isinstance(data, ResponseTextDeltaEvent):
                emit(TextDelta(agent=current, text=data.delta))
            elif isinstance(data, RetryEvent):
                emit(Retrying(agent=current, attempt=data.attempt, cause=data.cause))
        elif event.type == "run_item_stream_event":
            item = run_item(event.item, names)
            if item is not None:
                emit(item)


async def _stop(streamed: Any, events: AsyncGenerator[Any, None]) -> None:
    """Stop the SDK's streamed run, if still going, and wait until it has: its tools have
    seen their cancellation and its items are final before the run's end is recorded."""
    streamed.cancel()
    await events.aclose()
    task = streamed.run_loop_task
    if task is not None:
        await asyncio.wait({task})
        if not task.cancelled():
            task.exception()  # an error of the run came through `events`; this one is seen


def _record_end(trace: RunTrace, outcome: RunResult) -> None:
    from pydantic_core import to_jsonable_python

    trace.record(
        "run_end",
        agent=outcome.agent,
        outcome="completed",
        turns=outcome.turns,
        usage=dataclasses.asdict(outcome.usage),
        final_output=trace.sensitive(to_jsonable_python(outcome.final_output, fallback=str)),
    )


def _retry_request(problems: str) -> str:
    """What the model is told when its final answer broke the agent's `output_schema`."""
    return (
        f"Your answer does not match the required output schema: {problems}. Answer again "
        "with only the corrected JSON, matching the schema."
    )


def _with_earlier(outcome: RunResult, earlier: Sequence[Any]) -> RunResult:
    """The result of a run's last attempt with the turns, usage and items of the attempts
    whose answers broke the `output_schema` (the SDK's error details of each) put in."""
    if not earlier:
        return outcome
    names: dict[str, str] = {}
    items = [
        converted
        for details in earlier
        for item in details.new_items
        if (converted := run_item(item, names)) is not None
    ]
    usage = outcome.usage
    for details in earlier:
        used = details.context_wrapper.usage
        usage = Usage(
            requests=usage.requests + used.requests,
            input_tokens=usage.input_tokens + used.input_tokens,
            output_tokens=usage.output_tokens + used.output_tokens,
            reasoning_tokens=usage.reasoning_tokens + used.output_tokens_details.reasoning_tokens,
            cached_tokens=usage.cached_tokens + used.input_tokens_details.cached_tokens,
        )
    return dataclasses.replace(
        outcome,
        items=(*items, *outcome.items),
        usage=usage,
        turns=outcome.turns + sum(len(details.raw_responses) + 1 for details in earlier),
    )


def _own_error(exc: BaseException) -> AgentRuntimeError | None:
    """An error of ours that the SDK wrapped (raised from a tool, a filter or the retry layer)."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        if isinstance(current, AgentRuntimeError):
            return current
        seen.append(current)
        current = current.__cause__ or current.__context__
    return None


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _RunOptions:
    """What one call of `run` / `stream` / `run_sync` asks for beyond agents.yaml."""

    max_turns: int
    context: object
    instructions: str | None
    model_settings: ModelSettingsSpec | None


@dataclasses.dataclass(frozen=True, slots=True)
class _Failed:
    """The error that ended a streamed run, to be raised where the stream is read."""

    error: Exception


@dataclasses.dataclass(slots=True, kw_only=True)
class _Run:
    """One run in progress: what it started from, its trace, its time budget."""

    agent: str
    sdk_agent: Agent[Any]
    session: str | None
    new_items: list[Any]
    history: list[Any]
    trace: RunTrace
    budget_s: float | None
    deadline: float | None
    streamed: Any = None
    """The SDK's streamed result, for a streamed run (its items so far)."""
    answer_retries: int = 0
    """Final answers that broke the `output_schema` and were sent back to the model."""
    turns_used: int = 0
    """Model calls made by the attempts before the current one."""
    earlier: list[Any] = dataclasses.field(default_factory=list)
    """The SDK's error details of those attempts."""

    def past_deadline(self) -> bool:
        return self.deadline is not None and asyncio.get_running_loop().time() >= self.deadline

    def consistent_items(self, exc: BaseException | None = None) -> list[Any]:
        """What a failed run adds to its session: its input, and whatever complete turns it
        produced before failing (no call without its output, no dangling reasoning)."""
        produced = produced_items(exc) if exc is not None else []
        if not produced and self.streamed is not None:
            produced = input_items(self.streamed.new_items)
        if not produced:
            start = len(self.history) + len(self.new_items)
            produced = self.trace.last_input[start:]
        return consistent_prefix([*self.new_items, *produced])
