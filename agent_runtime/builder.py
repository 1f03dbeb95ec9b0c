"""Config + tools + backends → Agents SDK `Agent`s, with handoffs and agents-as-tools resolved;
the tools of MCP servers are attached once the servers have listed them (`attach_mcp_tools`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from agent_runtime.backends import Backend, EmbeddedBackend
from agent_runtime.config import Config, ModelSettingsSpec
from agent_runtime.config.checks import handoff_tool_name
from agent_runtime.config.imports import import_type
from agent_runtime.errors import ToolResolutionError
from agent_runtime.text import json_problem
from agent_runtime.tools import ToolThreads, build_function_tool
from agent_runtime.tracing import current_trace, in_nested_run

if TYPE_CHECKING:
    from agents import Agent, FunctionTool, ModelSettings, RunConfig, RunHooks
    from agents.agent_output import AgentOutputSchemaBase

__all__ = [
    "BuiltAgents",
    "InvalidAnswer",
    "attach_mcp_tools",
    "build_agents",
    "model_settings",
    "output_type",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class BuiltAgents:
    """The SDK agents of a config, and the names of the tools each one offers the model."""

    agents: Mapping[str, Agent[Any]]
    tool_names: Mapping[str, tuple[str, ...]]
    mcp_attached: bool = False
    """Whether the tools of the agents' MCP servers are among their tools (`attach_mcp_tools`)."""


def model_settings(spec: ModelSettingsSpec, *, chat: bool) -> ModelSettings:
    """The SDK `ModelSettings` for an agent's declared settings."""
    from agents import ModelSettings
    from openai.types.shared import Reasoning

    merged = spec.model_dump(exclude_none=True)
    effort = merged.pop("reasoning_effort", None)
    settings = ModelSettings(**merged)
    if effort is not None:
        settings = settings.resolve(ModelSettings(reasoning=Reasoning(effort=effort)))
    if chat:
        # Streaming Chat Completions reports usage only when asked (vLLM is not "openai").
        settings = settings.resolve(ModelSettings(include_usage=True))
    return settings


class InvalidAnswer(Exception):
    """Why an agent's final answer does not fit its `output_schema`: the cause of the SDK's
    `ModelBehaviorError`, read by the runtime to send the problems back to the model.

    Attributes:
        agent: the agent that answered.
        answer: the answer's text.
        problems: what is wrong with it, for the model and for the error.
    """

    def __init__(self, agent: str, answer: str, problems: str) -> None:
        super().__init__(problems)
        self.agent = agent
        self.answer = answer
        self.problems = problems


def output_type(
    name: str, declared: Mapping[str, Any] | str, config: Config
) -> AgentOutputSchemaBase:
    """The SDK output schema of agent `name`: a JSON Schema checked with jsonschema, or a
    Python type (imported when loading) checked with pydantic."""
    if isinstance(declared, str):
        found = config.output_types.get(name)
        if found is None:  # a config loaded without imports
            try:
                found = import_type(declared, config.base_dir)
            except ToolResolutionError as exc:
                raise config.error(f"agents.{name}.output_schema", str(exc)) from exc
        return _typed_output(name, found)
    return _json_schema_output(name, declared)


def _json_schema_output(name: str, schema: Mapping[str, Any]) -> AgentOutputSchemaBase:
    import jsonschema

    validator = jsonschema.Draft202012Validator(dict(schema))

    def validate(answer: str) -> Any:
        value = _parsed(name, answer)
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            _reject(
                name,
                answer,
                "; ".join(
                    f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
                    for e in errors[:5]
                ),
            )
        return value

    return _output_schema(name, dict(schema), validate)


def _typed_output(name: str, output: type[Any]) -> AgentOutputSchemaBase:
    from pydantic import TypeAdapter, ValidationError

    adapter: TypeAdapter[Any] = TypeAdapter(output)

    def validate(answer: str) -> Any:
        value = _parsed(name, answer)
        try:
            return adapter.validate_python(value)
        except ValidationError as exc:
            _reject(
                name,
                answer,
                "; ".join(
                    f"{'/'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}"
                    for e in exc.errors(include_url=False)[:5]
                ),
            )

    return _output_schema(name, adapter.json_schema(), validate)


def _output_schema(
    name: str, schema: dict[str, Any], validate: Callable[[str], Any]
) -> AgentOutputSchemaBase:
    from agents.agent_output import AgentOutputSchemaBase

    class OutputSchema(AgentOutputSchemaBase):
        """The final answer must be JSON matching the agent's `output_schema`."""

        def is_plain_text(self) -> bool:
            return False

        def name(self) -> str:
            return f"{name}_output"

        def json_schema(self) -> dict[str, Any]:
            return dict(schema)

        def is_strict_json_schema(self) -> bool:
            return False

        def validate_json(self, json_str: str) -> Any:
            return validate(json_str)

    return OutputSchema()


def _parsed(name: str, answer: str) -> Any:
    """The answer as JSON (`ModelBehaviorError` when it is not)."""
    from agents import ModelBehaviorError

    try:
        return json.loads(answer)
    except json.JSONDecodeError as exc:
        problem = json_problem(exc)
        raise ModelBehaviorError(
            f"the final answer of `{name}` is not JSON ({problem}), but the agent has an "
            "output_schema"
        ) from InvalidAnswer(name, answer, f"it is not JSON ({problem})")


def _reject(name: str, answer: str, problems: str) -> NoReturn:
    """Raise the SDK's `ModelBehaviorError` for an answer that does not match the schema."""
    from agents import ModelBehaviorError

    raise ModelBehaviorError(
        f"the final answer of `{name}` does not match its output_schema: {problems}"
    ) from InvalidAnswer(name, answer, problems)


def build_agents(
    config: Config,
    backends: Mapping[str, Backend | EmbeddedBackend],
    *,
    nested_run_config: Callable[[], RunConfig],
    nested_hooks: RunHooks[Any] | None = None,
) -> BuiltAgents:
    """Build every declared agent.

    Agents are created first, then handoffs are assigned (handoff cycles are allowed), then
    agents used as tools are wrapped, in dependency order (config validation rejects cycles).
    Nested runs of agents used as tools get `nested_run_config()` and `nested_hooks`. The sync
    tools of all agents share one thread limit, `defaults.tool_threads`.
    """
    from agents import Agent, handoff

    spec = config.spec
    defaults = spec.defaults
    tools: dict[str, FunctionTool] = {}
    threads = ToolThreads(defaults.tool_threads)
    for key, tool in spec.tools.items():
        try:
            tools[key] = build_function_tool(
                config.functions[key],
                name=tool.name,
                description=tool.description,
                timeout_s=tool.timeout_s if tool.timeout_s is not None else defaults.tool_timeout_s,
                max_output_chars=tool.max_output_chars or defaults.tool_max_output_chars,
                strict=tool.strict,
                threads=threads,
                needs_approval=tool.approval == "always",
            )
        except Exception as exc:  # the SDK cannot describe the function to the model
            raise config.error(
                f"tools.{key}.function", _schema_problem(tool.function, tool.strict, exc)
            ) from exc
    agents: dict[str, Agent[Any]] = {}
    for name, agent_spec in spec.agents.items():
        backend_name, backend_spec = config.backend_of(name)
        backend = backends[backend_name]
        agents[name] = Agent(
            name=name,
            handoff_description=agent_spec.description,
            instructions=config.instructions.get(name),
            model=backend.model(agent_spec.model),
            model_settings=model_settings(
                config.model_settings_of(name), chat=backend_spec.api == "chat_completions"
            ),
            tools=[tools[key] for key in agent_spec.tool_keys],
            output_type=(
                output_type(name, agent_spec.output_schema, config)
                if agent_spec.output_schema is not None
                else None
            ),
        )
    for name, agent_spec in spec.agents.items():
        if agent_spec.handoffs:
            agents[name].handoffs = [
                handoff(agents[target], tool_name_override=handoff_tool_name(target))
                for target in agent_spec.handoffs
            ]
    for name in _tool_order(config):
        extra = [
            _marked_nested(
                agents[tool.agent].as_tool(
                    tool_name=tool.name,
                    tool_description=(
                        tool.description
                        or spec.agents[tool.agent].description
                        or f"Ask the `{tool.agent}` agent; give it the whole task."
                    ),
                    run_config=nested_run_config(),
                    hooks=nested_hooks,
                    max_turns=config.max_turns_of(tool.agent),
                )
            )
            for tool in config.agent_tools_of(name)
        ]
        if extra:
            agents[name].tools = [*agents[name].tools, *extra]
    tool_names = {
        name: tuple(tool.name for tool in agent.tools if hasattr(tool, "name"))
        for name, agent in agents.items()
    }
    return BuiltAgents(agents=agents, tool_names=tool_names)


def attach_mcp_tools(
    built: BuiltAgents, tools: Mapping[str, Sequence[FunctionTool]]
) -> BuiltAgents:
    """Add the tools of each agent's MCP servers (listed once the servers run) after its own
    tools, in place: agents that hand off to it or call it as a tool see them too. Returns the
    agents with their tool names updated and `mcp_attached` set."""
    for name, extra in tools.items():
        if extra:
            agent = built.agents[name]
            agent.tools = [*agent.tools, *extra]
    tool_names = {
        name: (*built.tool_names.get(name, ()), *(tool.name for tool in tools.get(name, ())))
        for name in built.agents
    }
    return dataclasses.replace(built, tool_names=tool_names, mcp_attached=True)


def _marked_nested(tool: FunctionTool) -> FunctionTool:
    """The agent tool, running its nested run with `in_nested_run` set. The loop guard sees
    its calls like those of any other tool: they end a run of repeated calls, and are refused
    when repeated themselves."""
    invoke = tool.on_invoke_tool

    async def invoke_nested(context: Any, arguments: str) -> Any:
        trace = current_trace.get()
        if trace is not None:
            refusal = trace.guard.before_call(tool.name, arguments)
            if refusal is not None:
                return refusal
        token = in_nested_run.set(True)
        try:
            return await invoke(context, arguments)
        finally:
            in_nested_run.reset(token)

    return dataclasses.replace(tool, on_invoke_tool=invoke_nested)


def _schema_problem(reference: str, strict: bool, exc: Exception) -> str:
    fix = "give the function named parameters with type hints"
    if strict:
        fix += " (no **kwargs, no plain dict), or set `strict: false` on the tool"
    reason = (str(exc).splitlines() or [""])[0].rstrip(".")
    return (
        f"cannot make a tool schema from `{reference}`: {type(exc).__name__}: {reason}. "
        f"{fix[0].upper()}{fix[1:]}."
    )


def _tool_order(config: Config) -> list[str]:
    """Agents in an order where every agent used as a tool comes before its users."""
    spec = config.spec
    order: list[str] = []
    seen: set[str] = set()

    def visit(name: str) -> None:
        if name in seen:
            return
        seen.add(name)
        for entry in spec.agents[name].agent_tools:
            visit(entry if isinstance(entry, str) else entry.agent)
        order.append(name)

    for name in spec.agents:
        visit(name)
    return order
