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
import functools
import os
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Mapping,
    Sequence,
)
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, cast

from agent_runtime.config import Config, ModelSettingsSpec, load_config
from agent_runtime.config.checks import handoff_tool_name
from agent_runtime.errors import (
    AgentRuntimeError,
    RunError,
)
from agent_runtime.guards import CallGuard
from agent_runtime.otel import otel_tracing
from agent_runtime.redact import Redactor, current_redactor, own_logger
from agent_runtime.results import (
    RunEvent,
    RunFinished,
    RunResult,
)
from agent_runtime.runtime.approval import Approvals, PendingRun, read_pending, with_decisions
from agent_runtime.runtime.client_tools import (
    _client_tools,
    _ClientCalls,
)
from agent_runtime.runtime.options import (
    Input,
    _as_items,
    _check_session,
    _check_tool_choice,
    _model_input,
    _run_model_settings,
    _RunOptions,
    _with_overrides,
)
from agent_runtime.runtime.runs import (
    _Failed,
    _finish,
    _relay,
    _retry_answer,
    _Run,
    _running,
    _stop,
)
from agent_runtime.sessions import SessionStore
from agent_runtime.text import did_you_mean
from agent_runtime.tools import ClientTool
from agent_runtime.tracing import (
    RunTrace,
    TraceWriter,
    current_trace,
    quiet_sdk_model_errors,
)

if TYPE_CHECKING:
    import httpx2
    from agents import (
        Agent,
        FunctionTool,
        RunConfig,
        RunHooks,
    )
    from agents.run_config import ToolErrorFormatterArgs

    from agent_runtime.backends import Backend, EmbeddedBackend
    from agent_runtime.backends.embedded.engine import Engine
    from agent_runtime.builder import BuiltAgents
    from agent_runtime.durable.client import DurableClient
    from agent_runtime.durable.runs import RunHandle, RunState, RunStatus
    from agent_runtime.launch import LaunchProgress, ManagedServer
    from agent_runtime.mcp import McpServers

__all__ = ["Input", "Runtime"]

logger = own_logger(__name__)


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
        database_url: the database of durable runs instead of `durability.database_url`
            (else the environment variable `AGENT_RUNTIME_DATABASE_URL` replaces it).
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
        database_url: str | None = None,
    ) -> None:
        if config.spec.durability is not None:
            from agent_runtime.durable.setup import with_database_url

            config = with_database_url(config, database_url)
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
        if spec.durability is not None:
            from agent_runtime.durable.setup import durable_sessions

            sessions = durable_sessions(self.config, sessions)
        self._sessions = sessions or SessionStore(
            self.config.resolve_path(spec.sessions.path), keep_days=spec.sessions.keep_days
        )
        self._durable: DurableClient | None = None
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
            keep_days=spec.tracing.keep_days,
        )
        # Runs as OpenTelemetry spans, when a collector is configured (agents.yaml, OTEL_*).
        self._otel = otel_tracing(self.config, redactor=self.redactor, environ=os.environ)
        if self._otel is not None:
            self._tracer.listen(self._otel)
        self._hooks: RunHooks[Any] | None = None
        self._streams: set[asyncio.Task[None]] = set()
        self._mcp: McpServers | None = None
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
            if self.config.spec.durability is not None:
                from agent_runtime.durable.steps import make_durable

                make_durable(self._built)
        return self._built

    async def _start_mcp(self) -> None:
        """Start the MCP servers not running (all of them the first time: `start()`, else the
        first run) and give their tools to the agents, once per build."""
        if not self.config.spec.mcp_servers:
            return
        from agent_runtime.builder import attach_mcp_tools
        from agent_runtime.mcp import McpServers

        if self._mcp is None:
            self._mcp = McpServers(self.config)
        redacting = current_redactor.set(self.redactor)
        try:
            await self._mcp.start()
            built = self._build()
            if not built.mcp_attached:
                own = {name: self._own_tool_names(name) for name in self.config.spec.agents}
                self._built = attach_mcp_tools(built, self._mcp.agent_tools(own))
                if self.config.spec.durability is not None:
                    from agent_runtime.durable.steps import make_durable

                    make_durable(self._built)
        except AgentRuntimeError as error:
            self.redactor.exception(error)
            raise
        finally:
            current_redactor.reset(redacting)

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
        tools: Sequence[ClientTool] | None = None,
    ) -> _RunOptions:
        """What one call asks for beyond agents.yaml, checked before anything starts."""
        agent = self._check_agent(agent)
        client_tools = _client_tools(agent, tools, call, own=self._own_tool_names(agent))
        settings = _run_model_settings(model_settings, call)
        if settings is not None:
            _check_tool_choice(
                self._build().tool_names.get(agent, ()),
                agent,
                settings.tool_choice,
                call,
                [tool.name for tool in client_tools],
            )
        return _RunOptions(
            max_turns=max_turns if max_turns is not None else self.config.max_turns_of(agent),
            context=context,
            instructions=instructions or None,
            model_settings=settings,
            client_tools=client_tools,
        )

    def check_tools(self, agent: str, tools: Sequence[ClientTool]) -> None:
        """Check client tools for a run of `agent` as `run` and `stream` do before starting
        (for a server that answers a bad request before its stream begins).

        Raises:
            ConfigError: unknown agent; a client tool whose name is not valid, is taken by one
                of the agent's own tools or handoffs, or is given twice; a schema that cannot
                be used.
        """
        agent = self._check_agent(agent)
        _client_tools(agent, tools, "check_tools", own=self._own_tool_names(agent))

    def _own_tool_names(self, agent: str) -> set[str]:
        """The names `agent`'s own tools and handoffs take (a client tool must not)."""
        own = set(self._build().tool_names.get(agent, ()))
        own.update(handoff_tool_name(target) for target in self.config.spec.agents[agent].handoffs)
        return own

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
        _check_session(session, call)
        return self._sessions.hold(session) if session else contextlib.nullcontext()

    async def _begin(
        self,
        agent: str,
        input: Input,
        session: str | None,
        client_tools: Sequence[FunctionTool] = (),
        *,
        trace_id: str | None = None,
        history: list[Any] | None = None,
    ) -> _Run:
        sdk_agent = self.agent(agent)
        client = None
        if client_tools:
            client = _ClientCalls(client_tools)
            sdk_agent = client.offer(sdk_agent)
        new_items = _as_items(input)
        if history is None:
            history = await self._sessions.load(session) if session else []
        repeats, invalid = self.config.guard_limits_of(agent)
        budget = self.config.run_timeout_of(agent)
        deadline = None if budget is None else asyncio.get_running_loop().time() + budget
        guard = CallGuard(
            repeats, invalid, deadline=None if budget is None else time.monotonic() + budget
        )
        if trace_id is None:
            trace = RunTrace(self._tracer, agent=agent, guard=guard)
            trace.record(
                "run_start",
                agent=agent,
                session=session,
                input=trace.sensitive(new_items),
                **self._durable_run_id(),
            )
        else:  # a run resumed after approval: the same trace goes on
            trace = RunTrace(self._tracer, agent=agent, guard=guard, trace_id=trace_id)
            trace.record("run_resume", agent=agent)
        return _Run(
            agent=agent,
            sdk_agent=sdk_agent,
            client=client,
            session=session,
            new_items=new_items,
            history=history,
            trace=trace,
            budget_s=budget,
            deadline=deadline,
        )

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
        tools: Sequence[ClientTool] | None = None,
    ) -> RunResult:
        """Run an agent until its final answer, or until it calls a client tool or a tool
        that needs approval (`approval: always`: then `pending_approvals` has the calls, and
        `resume` continues the run with a person's decisions).

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
            tools: client tools (`ClientTool`): offered to the agent named (not to agents it
                hands off to) next to its own tools, and never run here. When the model
                calls one, the run stops after that turn (the agent's own tools called in
                the same turn have run): `pending_calls` has the turn's client calls,
                `final_output` is None, and the session keeps the calls. Continue the session
                with a `{"type": "function_call_output", "call_id", "output"}` item per call.

        Raises:
            ConfigError: unknown agent, `model_settings` that are not valid, or client
                `tools` that are not (a name taken by the agent's own tools, say).
            BackendUnavailableError: the model server cannot be reached.
            BackendError: the model server keeps failing.
            RunLimitError: `max_turns`, `run_timeout_s` or the loop guard ended the run.
            RunError: the run failed otherwise (e.g. an answer that breaks `output_schema`).
        """
        await self._start_mcp()
        options = self._options(
            agent,
            call="run",
            max_turns=max_turns,
            context=context,
            instructions=instructions,
            model_settings=model_settings,
            tools=tools,
        )
        async with self._session_turn(session, "run"):
            run = await self._begin(agent, input, session, options.client_tools)
            return await self._complete(run, options)

    async def _complete(self, run: _Run, options: _RunOptions) -> RunResult:
        """Run `run` (a new one, or one resumed) until it ends or stops again."""
        from agents import Runner

        run.max_turns = options.max_turns
        run.resumable = _resumable(options)
        async with (
            _running(run, self.config, self._sessions, self.redactor),
            asyncio.timeout_at(run.deadline),
        ):
            while True:
                try:
                    result = await Runner.run(
                        run.sdk_agent,
                        run.sdk_input(),
                        context=options.context,
                        max_turns=options.max_turns - run.turns_used,
                        run_config=self._run_config(options),
                        hooks=self._hooks,
                    )
                    break
                except Exception as exc:
                    if _retry_answer(self.config, run, exc, options.max_turns) is None:
                        raise
            if result.interruptions:
                self._check_approval_allowed(run)
        return await _finish(run, result, self._sessions)

    def _durable_run_id(self) -> dict[str, str]:
        """`{"run_id": ...}` inside a durable run (its id goes into the run log), else `{}`."""
        if self.config.spec.durability is None:
            return {}
        from agent_runtime.durable.steps import current_run

        durable = current_run.get()
        return {} if durable is None else {"run_id": durable.run_id}

    def _check_approval_allowed(self, run: _Run) -> None:
        """Refuse to stop a durable run for approval (nobody could resume it)."""
        if self.config.spec.durability is None:
            return
        from agent_runtime.durable.steps import current_run

        if current_run.get() is not None:
            raise RunError(
                f"agent `{run.trace.agent or run.agent}` called a tool that needs approval "
                "(`approval: always` in agents.yaml), which durable runs do not support yet. "
                "Set `approval: never` on the tool, or run the agent with `run` instead of "
                "`submit`."
            )

    async def resume(
        self,
        pending: RunResult | str,
        *,
        approve: Approvals = (),
        reject: Mapping[str, str | None] | None = None,
        context: object = None,
    ) -> RunResult:
        """Continue a run that stopped at calls needing approval (`pending_approvals`), with
        a person's decisions, until it ends or stops again.

        Approved calls run; each rejected one reaches the model as its output ("Error: the
        user did not approve `NAME`: REASON..."); calls decided neither way stay pending. The
        run goes on in the same session and under the same trace id, with the instructions
        and model settings it started with.

        Args:
            pending: the stopped run's result, or its `pending_state` text (saved, possibly
                by another process with the same agents.yaml).
            approve: the call ids to approve, or True for every pending call not rejected
                (with those recorded on the result by `RunResult.approve`).
            reject: call id → reason (None for none), for the calls to reject (with those
                recorded by `RunResult.reject`).
            context: the run's `context` (never saved with the state: give it again).

        Raises:
            ConfigError: an id that is not a pending call's, or a call approved and rejected.
            RunError: `pending` is not a stopped run of this agents.yaml, or cannot be
                restored; or the run failed as `run` says.
        """
        await self._start_mcp()
        stopped = read_pending(pending, self.agent_names)
        approve, reject = with_decisions(pending, approve, reject)
        options = self._resumed_options(stopped, context)
        async with self._session_turn(stopped.session, "resume"):
            run = await self._begin_resumed(stopped, context, approve, reject)
            return await self._complete(run, options)

    async def resume_stream(
        self,
        pending: RunResult | str,
        *,
        approve: Approvals = (),
        reject: Mapping[str, str | None] | None = None,
        context: object = None,
    ) -> AsyncIterator[RunEvent]:
        """`resume` as a stream: the events `stream` yields, ending with `RunFinished` (whose
        result may have `pending_approvals` again). Arguments and errors are `resume`'s."""
        await self._start_mcp()
        stopped = read_pending(pending, self.agent_names)
        approve, reject = with_decisions(pending, approve, reject)
        options = self._resumed_options(stopped, context)

        async def begin() -> _Run:
            return await self._begin_resumed(stopped, context, approve, reject)

        async with contextlib.aclosing(
            self._relayed(begin, stopped.session, options, stopped.agent)
        ) as events:
            async for event in events:
                yield event

    def _resumed_options(self, stopped: PendingRun, context: object) -> _RunOptions:
        saved = stopped.options
        return self._options(
            stopped.agent,
            call="resume",
            max_turns=stopped.max_turns or None,
            context=context,
            instructions=saved.get("instructions"),
            model_settings=saved.get("model_settings"),
        )

    async def _begin_resumed(
        self,
        stopped: PendingRun,
        context: object,
        approve: Approvals,
        reject: Mapping[str, str | None] | None,
    ) -> _Run:
        """The run `stopped` was, with the person's decisions, its trace id and session."""
        from agent_runtime.runtime.approval import apply_decisions, restore_state

        sdk_agent = self.agent(stopped.agent)
        state = await restore_state(stopped, sdk_agent, context)
        apply_decisions(state, stopped.calls, approve=approve, reject=reject, call="resume")
        run = await self._begin(
            stopped.agent,
            stopped.input[stopped.history :],
            None,
            trace_id=stopped.trace_id,
            history=stopped.input[: stopped.history],
        )
        run.session = stopped.session
        run.state = state
        return run

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
        tools: Sequence[ClientTool] | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Run an agent, yielding events as they happen; the last one is `RunFinished`.

        Reasoning and answer text arrive as `ReasoningDelta` / `TextDelta`; reasoning, tool
        calls, tool results, messages and handoffs as items once complete; `AgentChanged` when
        an agent starts; `Retrying` when a model call failed part-way and is made again (drop
        the partial text). Arguments and errors are those of `run`; calls of client `tools`
        are not streamed as items: they are the result's `pending_calls`.

        The run goes on in its own task while the events are read. A stream left before its
        end (`break`, `aclose()`, the reading task cancelled, a client gone) cancels the run,
        which ends as a cancelled run: running tools are cancelled, the trace gets its
        `run_end` record and the session keeps what was done. That happens when the stream
        is closed: at once with `aclose()` (or `contextlib.aclosing`), else when the
        generator is garbage-collected, at the latest when the runtime is closed.
        """
        await self._start_mcp()
        options = self._options(
            agent,
            call="stream",
            max_turns=max_turns,
            context=context,
            instructions=instructions,
            model_settings=model_settings,
            tools=tools,
        )

        async def begin() -> _Run:
            return await self._begin(agent, input, session, options.client_tools)

        async with contextlib.aclosing(self._relayed(begin, session, options, agent)) as events:
            async for event in events:
                yield event

    async def _relayed(
        self,
        begin: Callable[[], Awaitable[_Run]],
        session: str | None,
        options: _RunOptions,
        agent: str,
    ) -> AsyncGenerator[RunEvent, None]:
        """The events of a streamed run (`begin` makes it) that goes on in a task of its own."""
        relay: asyncio.Queue[RunEvent | _Failed] = asyncio.Queue()
        pump = asyncio.create_task(
            self._pump(begin, session, options, relay.put_nowait),
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
        begin: Callable[[], Awaitable[_Run]],
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
                run = await begin()
                run.max_turns = options.max_turns
                run.resumable = _resumable(options)
                async with _running(run, self.config, self._sessions, self.redactor):
                    while True:
                        streamed = Runner.run_streamed(
                            run.sdk_agent,
                            run.sdk_input(),
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
                                    await _relay(events, run.sdk_agent.name, emit, run.client)
                            finally:
                                await _stop(streamed, events)
                            break
                        except Exception as exc:
                            retrying = _retry_answer(self.config, run, exc, options.max_turns)
                            if retrying is None:
                                raise
                            emit(retrying)
                    if streamed.interruptions:
                        self._check_approval_allowed(run)
                result = await _finish(run, streamed, self._sessions)
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
        tools: Sequence[ClientTool] | None = None,
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
                    tools=tools,
                )
            finally:
                await self._release_clients()

        return asyncio.run(run_then_release())

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

    # -- durable runs (agent_runtime.durable) ---------------------------------------------------

    def _durable_client(self) -> DurableClient:
        if self._durable is None:
            from agent_runtime.durable.client import DurableClient

            self._durable = DurableClient(self.config)
        return self._durable

    async def submit(
        self,
        agent: str,
        input: Input,
        *,
        session: str | None = None,
        run_id: str | None = None,
        instructions: str | None = None,
        model_settings: ModelSettingsSpec | Mapping[str, Any] | None = None,
        max_turns: int | None = None,
    ) -> RunHandle:
        """Queue a durable run of an agent and return at once; a worker (`agent-runtime
        worker`) executes it, and `result(handle.run_id)` gives its result. The runs of one
        session execute one at a time, in the order submitted. Needs `durability:` in
        agents.yaml (see `agent_runtime.durable`).

        Args:
            agent: the agent's name in agents.yaml.
            input: the user's message, or a list of input items (as `run`).
            session: continue (and extend) this stored conversation.
            run_id: the run's id (default: a new one). Submitting the same id again returns
                the run already submitted, without queuing another.
            instructions, model_settings, max_turns: as `run`'s, for this run (checked now).

        Raises:
            ConfigError: unknown agent.
            DurabilityError: no `durability:` section, the database cannot be used, or
                `run_id` is taken by another agent's or session's run.
        """
        self._check_agent(agent)
        _check_session(session, "submit")
        _as_items(input)
        options: dict[str, Any] = {}
        if instructions or model_settings or max_turns is not None:
            checked = self._options(
                agent,
                call="submit",
                max_turns=max_turns,
                context=None,
                instructions=instructions,
                model_settings=model_settings,
            )
            options = {"instructions": checked.instructions, "max_turns": max_turns}
            if checked.model_settings is not None:
                options["model_settings"] = checked.model_settings.model_dump(
                    mode="json", exclude_unset=True
                )
            options = {key: value for key, value in options.items() if value is not None}
        return await self._durable_client().submit(
            agent, input, session=session, run_id=run_id, options=options
        )

    async def result(
        self,
        run_id: str,
        *,
        wait: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109 - a wait that times out is RunPendingError
    ) -> RunResult:
        """The result of a durable run, as `run` gives it; waits for the run to finish unless
        `wait` is False (at most `timeout` seconds when given).

        Raises:
            RunPendingError: the run has not finished (without `wait`, or by `timeout`).
            RunCancelledError: the run was cancelled.
            UnknownRunError: no run has this id.
            AgentRuntimeError: the run failed: the error `run` would have raised, with its
                message (`BackendError`, `RunLimitError`...).
        """
        return await self._durable_client().result(run_id, wait=wait, timeout=timeout)

    async def follow(self, run_id: str) -> AsyncIterator[RunEvent]:
        """Follow a durable run while a worker (in any process) executes it: the events
        `stream` yields, ending with `RunFinished`. A finished run's events are replayed; a
        recovered run's events come once each. Items arrive as the run makes progress (a model
        call's reasoning, tool calls and message when the call has finished; tool results
        when the turn's tools have); live text deltas are not streamed for durable runs.
        Leaving the loop early stops following, not the run.

        Raises:
            UnknownRunError: no run has this id.
            RunCancelledError: the run was cancelled.
            AgentRuntimeError: the run failed: the error `run` would have raised (as `result`).
        """
        async with contextlib.aclosing(self._durable_client().follow(run_id)) as events:
            async for event in events:
                yield event

    def status(self, run_id: str) -> RunStatus:
        """Where a durable run is: queued, running, succeeded, failed or cancelled, with its
        agent, session, times and worker.

        Raises:
            UnknownRunError: no run has this id.
        """
        return self._durable_client().status(run_id)

    async def cancel(self, run_id: str) -> RunStatus:
        """Cancel a durable run that has not finished (a running one stops at its next step);
        a finished run stays as it is. Returns its status after.

        Raises:
            UnknownRunError: no run has this id.
        """
        return await self._durable_client().cancel(run_id)

    def runs(
        self,
        *,
        limit: int = 20,
        agent: str | None = None,
        status: RunState | Sequence[RunState] | None = None,
    ) -> list[RunStatus]:
        """Recent durable runs, newest first: at most `limit`, of `agent` and in `status`
        (one state or several) when given."""
        return self._durable_client().runs(limit=limit, agent=agent, status=status)

    # -- lifecycle ----------------------------------------------------------------------------

    async def _release_clients(self) -> None:
        backends, self._backends, self._built = self._backends, None, None
        mcp, self._mcp = self._mcp, None
        if mcp is not None:
            await mcp.aclose()
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
            await self._start_mcp()
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
        the session database and the trace file; send the OpenTelemetry spans left (when
        exported); stop the model servers `start()` started
        (those found running are left alone)."""
        try:
            await self._cancel_streams()
            await self._release_clients()
            self._sessions.close()
            if self._durable is not None:
                self._durable.close()
            self._tracer.close()
            if self._otel is not None:
                await asyncio.to_thread(self._otel.close)  # sends the spans left
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


def _resumable(options: _RunOptions) -> dict[str, Any]:
    """The options of a run that a resumed run keeps (JSON values)."""
    saved: dict[str, Any] = {}
    if options.instructions:
        saved["instructions"] = options.instructions
    if options.model_settings is not None:
        saved["model_settings"] = options.model_settings.model_dump(mode="json", exclude_unset=True)
    return saved
