"""Client tools: tools a caller offers for one run (`run(..., tools=[ClientTool(...)])`), which
the runtime never executes: the run stops at the model turn that calls one, and the caller runs
it and continues the session with its output."""

from __future__ import annotations

from collections.abc import (
    Collection,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any

from agent_runtime.errors import (
    ConfigError,
    ConfigProblem,
)
from agent_runtime.results import (
    call_id_of,
)
from agent_runtime.text import kind_of, show
from agent_runtime.tools import CLIENT_TOOL_NAME, ClientTool

if TYPE_CHECKING:
    from agents import (
        Agent,
        FunctionTool,
        FunctionToolResult,
        RunContextWrapper,
        ToolsToFinalOutputResult,
    )


def _client_tools(
    agent: str, tools: Sequence[ClientTool] | None, call: str, *, own: Collection[str]
) -> tuple[FunctionTool, ...]:
    """The SDK tools offering a run's client tools to `agent` (`ConfigError` naming each
    problem: `tools[0].name: ...`); `own`: the names the agent's own tools and handoffs take."""
    if not tools:
        return ()
    from agent_runtime.tools import client_function_tool

    problems: dict[str, str] = {}
    built: list[FunctionTool] = []
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, ClientTool):
            problems[where] = f"expected a `ClientTool`, got {kind_of(tool)}"
        elif not CLIENT_TOOL_NAME.fullmatch(tool.name):
            problems[f"{where}.name"] = (
                f"{show(tool.name, secret=False)} is not a tool name: use letters, digits, "
                "`_` and `-` (at most 64)"
            )
        elif tool.name in own:
            problems[f"{where}.name"] = (
                f"agent `{agent}` has a tool of its own named `{tool.name}`: give the "
                "client tool another name"
            )
        elif any(other.name == tool.name for other in built):
            problems[f"{where}.name"] = f"another client tool is named `{tool.name}` too"
        elif not isinstance(tool.parameters, Mapping):
            problems[f"{where}.parameters"] = (
                f"expected a JSON Schema (a mapping), got {kind_of(tool.parameters)}"
            )
        else:
            try:
                built.append(client_function_tool(tool))
            except Exception as exc:  # the SDK cannot make the schema strict
                reason = (str(exc).splitlines() or [""])[0].split(". ")[0].rstrip(".")
                problems[f"{where}.parameters"] = (
                    f"cannot use the schema: {reason}. Make it strict-compatible, or set "
                    "`strict` to false"
                )
    if problems:
        raise ConfigError(
            [
                ConfigProblem(file=f"{call}()", line=None, column=None, path=path, message=text)
                for path, text in problems.items()
            ]
        )
    return tuple(built)


def _without_outputs(items: list[Any], call_ids: Collection[str]) -> list[Any]:
    """`items` without the outputs of the calls `call_ids` (client calls: the placeholder
    outputs the SDK recorded; their real outputs come with the next run)."""
    if not call_ids:
        return items
    return [
        item
        for item in items
        if not (
            isinstance(item, dict)
            and item.get("type") == "function_call_output"
            and item.get("call_id") in call_ids
        )
    ]


class _ClientCalls:
    """The client tools of one run, offered to its starting agent: the run stops at the first
    model turn that calls one of them (the agent's own tools of that turn have run)."""

    def __init__(self, tools: Sequence[FunctionTool]) -> None:
        self.tools = tuple(tools)
        self.names = frozenset(tool.name for tool in tools)
        self.agent: Agent[Any] | None = None
        self.stopped = False
        self.call_ids: set[str] = set()

    def offer(self, agent: Agent[Any]) -> Agent[Any]:
        """`agent` with the client tools, stopping at their calls."""
        self.agent = agent.clone(tools=[*agent.tools, *self.tools], tool_use_behavior=self._stop)
        return self.agent

    def _stop(
        self, context: RunContextWrapper[Any], results: list[FunctionToolResult]
    ) -> ToolsToFinalOutputResult:
        from agents import ToolsToFinalOutputResult

        calls = [result for result in results if result.tool.name in self.names]
        if not calls:
            return ToolsToFinalOutputResult(is_final_output=False, final_output=None)
        self.stopped = True
        self.call_ids = {
            call_id_of(result.run_item) for result in calls if result.run_item is not None
        }
        return ToolsToFinalOutputResult(is_final_output=True, final_output="")

    def hides(self, item: Any) -> bool:
        """Whether a streamed SDK item is a client call or its placeholder output."""
        from agents.items import ToolCallItem, ToolCallOutputItem

        if item.agent is not self.agent:
            return False
        if isinstance(item, ToolCallItem):
            if getattr(item.raw_item, "name", None) in self.names:
                self.call_ids.add(call_id_of(item))
                return True
        elif isinstance(item, ToolCallOutputItem):
            return call_id_of(item) in self.call_ids
        return False
