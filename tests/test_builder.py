"""Building SDK agents from agents.yaml: settings, tools, handoffs, agents as tools, output
schemas, and what the SDK cannot build."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from agents import ModelBehaviorError, ModelSettings, RunConfig, Runner
from agents.agent_output import AgentOutputSchemaBase
from agents.tool_context import ToolContext
from openai.types.shared import Reasoning
from pydantic import BaseModel, Field

from agent_runtime import ConfigError, RunError, Runtime
from agent_runtime.backends import create_backend
from agent_runtime.builder import BuiltAgents, InvalidAnswer, build_agents, model_settings
from agent_runtime.config import ModelSettingsSpec, parse_config
from agent_runtime.testing import MockVLLM, Reply, call
from agent_runtime.tracing import in_nested_run
from tests import helpers

PROJECT = helpers.PROJECT / "agents.yaml"
BACKENDS = (
    "backends:\n"
    "  server: {base_url: 'http://127.0.0.1:9/v1', model: openai/gpt-oss-20b}\n"
    "  chat: {base_url: 'http://127.0.0.1:9/v1', model: openai/gpt-oss-20b, "
    "api: chat_completions}\n"
)


def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: The first number.
        b: The second number.
    """
    return a + b


def text(size: int) -> str:
    """A long text.

    Args:
        size: How many characters.
    """
    return "x" * size


def nested() -> str:
    """Whether this call runs inside an agent used as a tool."""
    return f"nested: {in_nested_run.get()}"


class Socket:
    """A type pydantic cannot describe."""


def takes_a_socket(connection: Socket) -> str:
    """Doc."""
    return ""


@contextlib.asynccontextmanager
async def built(yaml: str) -> AsyncIterator[BuiltAgents]:
    defaults = "" if "defaults:" in yaml else "defaults: {backend: server}\n"
    config = parse_config(f"version: 1\n{BACKENDS}{defaults}{yaml}")
    backends = {name: create_backend(name, spec) for name, spec in config.spec.backends.items()}
    try:
        yield build_agents(config, backends, nested_run_config=RunConfig)
    finally:
        for backend in backends.values():
            await backend.aclose()


def context() -> ToolContext[None]:
    return ToolContext(context=None, tool_name="t", tool_call_id="call_1", tool_arguments="")


# -- model settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("chat", [False, True])
def test_every_declared_setting_reaches_the_sdk(chat: bool) -> None:
    spec = ModelSettingsSpec(
        temperature=0.2,
        top_p=0.9,
        max_tokens=100,
        reasoning_effort="high",
        tool_choice="none",
        parallel_tool_calls=False,
        truncation="auto",
        extra_body={"top_k": 5},
        extra_headers={"X-Team": "a"},
    )
    assert model_settings(spec, chat=chat) == ModelSettings(
        temperature=0.2,
        top_p=0.9,
        max_tokens=100,
        reasoning=Reasoning(effort="high"),
        tool_choice="none",
        parallel_tool_calls=False,
        truncation="auto",
        extra_body={"top_k": 5},
        extra_headers={"X-Team": "a"},
        # Streaming Chat Completions reports usage only when asked.
        include_usage=True if chat else None,
    )


def test_no_settings_leave_the_sdks_defaults() -> None:
    assert model_settings(ModelSettingsSpec(), chat=False) == ModelSettings()
    assert model_settings(ModelSettingsSpec(), chat=True) == ModelSettings(include_usage=True)


async def test_an_agents_settings_override_the_defaults_field_by_field() -> None:
    async with built(
        "defaults: {backend: server, model_settings: {temperature: 0.5, reasoning_effort: low}}\n"
        "agents:\n"
        "  plain: {}\n"
        "  thorough: {model_settings: {reasoning_effort: high}}\n"
        "  chatty: {backend: chat, model_settings: {max_tokens: 64}}\n"
    ) as result:
        settings = {name: agent.model_settings for name, agent in result.agents.items()}
    low, high = Reasoning(effort="low"), Reasoning(effort="high")
    assert settings == {
        "plain": ModelSettings(temperature=0.5, reasoning=low),
        "thorough": ModelSettings(temperature=0.5, reasoning=high),
        "chatty": ModelSettings(temperature=0.5, reasoning=low, max_tokens=64, include_usage=True),
    }


# -- agents and their tools -------------------------------------------------------------------


async def test_agents_get_their_instructions_model_and_tools() -> None:
    async with built(
        "defaults: {backend: server, tool_max_output_chars: 8}\n"
        "tools:\n"
        "  add: {function: 'tests.test_builder:add'}\n"
        "  long: {function: 'tests.test_builder:text', name: long_text, description: Long.,"
        " max_output_chars: 4}\n"
        "  longer: {function: 'tests.test_builder:text', name: longer_text}\n"
        "agents:\n"
        "  calc: {description: Adds., instructions: Add., tools: [longer, add, long]}\n"
        "  other: {model: openai/gpt-oss-120b}\n"
    ) as result:
        calc, other = result.agents["calc"], result.agents["other"]
        assert (calc.name, calc.instructions, calc.handoff_description) == ("calc", "Add.", "Adds.")
        assert (other.instructions, other.handoff_description, other.tools) == (None, None, [])
        assert calc.model.model == "openai/gpt-oss-20b"  # type: ignore[union-attr]
        assert other.model.model == "openai/gpt-oss-120b"  # type: ignore[union-attr]
        assert result.tool_names == {"calc": ("longer_text", "add", "long_text"), "other": ()}
        longer, _, long = calc.tools
        assert (long.name, long.description) == ("long_text", "Long.")  # type: ignore[union-attr]
        assert longer.description == "A long text."  # type: ignore[union-attr]
        # The tool's own output cap, else the default.
        note = "\n[output truncated: 10 characters, showing the first {}]"
        assert await long.on_invoke_tool(context(), '{"size": 10}') == "xxxx" + note.format(4)  # type: ignore[union-attr]
        assert await longer.on_invoke_tool(context(), '{"size": 10}') == "x" * 8 + note.format(8)  # type: ignore[union-attr]


async def test_handoffs_are_offered_as_transfer_tools_and_may_form_cycles() -> None:
    async with built(
        "agents:\n"
        "  triage: {handoffs: [Weather Bot.v2, billing-desk]}\n"
        "  Weather Bot.v2: {description: Weather., handoffs: [triage]}\n"
        "  billing-desk: {}\n"
    ) as result:
        agents = result.agents
        triage_handoffs = agents["triage"].handoffs
        back = agents["Weather Bot.v2"].handoffs
    assert [h.tool_name for h in triage_handoffs] == [  # type: ignore[union-attr]
        "transfer_to_weather_bot_v2",
        "transfer_to_billing_desk",
    ]
    assert [h.agent_name for h in triage_handoffs] == ["Weather Bot.v2", "billing-desk"]  # type: ignore[union-attr]
    assert [h.tool_name for h in back] == ["transfer_to_triage"]  # type: ignore[union-attr]
    assert agents["billing-desk"].handoffs == []
    assert result.tool_names["triage"] == ()  # handoffs are not among the agent's tools


async def test_agents_used_as_tools_come_after_the_agents_own_tools() -> None:
    # Declared before the agents they use: the builder wraps the used agents first.
    async with built(
        "tools: {add: {function: 'tests.test_builder:add'}}\n"
        "agents:\n"
        "  top: {tools: [add], agent_tools: [middle-agent, {agent: plain, description: Plain.}]}\n"
        "  middle-agent: {description: Middle., agent_tools: [{agent: bottom, name: ask_bottom}]}\n"
        "  bottom: {tools: [add]}\n"
        "  plain: {description: Unused here.}\n"
    ) as result:
        tools = {name: agent.tools for name, agent in result.agents.items()}
        names = result.tool_names
    assert names == {
        "top": ("add", "middle_agent", "plain"),
        "middle-agent": ("ask_bottom",),
        "bottom": ("add",),
        "plain": (),
    }
    descriptions = {
        tool.name: tool.description  # type: ignore[union-attr]
        for tool in [*tools["top"], *tools["middle-agent"]]
    }
    assert descriptions == {
        "add": "Add two integers.",
        "middle_agent": "Middle.",  # the agent's description
        "plain": "Plain.",  # the entry's own description
        "ask_bottom": "Ask the `bottom` agent; give it the whole task.",
    }


async def test_agents_listed_under_tools_are_agents_used_as_tools() -> None:
    # The same agents as above, declared in `tools:` next to the function tools.
    async with built(
        "tools: {add: {function: 'tests.test_builder:add'}}\n"
        "agents:\n"
        "  top:\n"
        "    tools: [add, {agent: middle-agent}, {agent: plain, name: ask_plain,"
        " description: P.}]\n"
        "  middle-agent: {description: Middle., tools: [{agent: bottom, name: ask_bottom}]}\n"
        "  bottom: {tools: [add]}\n"
        "  plain: {description: Unused here.}\n"
    ) as result:
        names = result.tool_names
        descriptions = {
            tool.name: tool.description  # type: ignore[union-attr]
            for tool in result.agents["top"].tools
        }
    assert names == {
        "top": ("add", "middle_agent", "ask_plain"),
        "middle-agent": ("ask_bottom",),
        "bottom": ("add",),
        "plain": (),
    }
    assert descriptions == {
        "add": "Add two integers.",
        "middle_agent": "Middle.",
        "ask_plain": "P.",
    }


async def test_agents_used_as_tools_run_nested_three_deep(tmp_path: Path) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text(
        f"version: 1\n{BACKENDS.replace('http://127.0.0.1:9/v1', '${MOCK_URL}')}"
        "defaults: {backend: server}\n"
        "tools: {nested: {function: 'tests.test_builder:nested'}}\n"
        "agents:\n"
        "  top: {tools: [nested], agent_tools: [middle]}\n"
        "  middle: {agent_tools: [bottom]}\n"
        "  bottom: {tools: [nested]}\n"
        "tracing: {enabled: false}\n"
        f"sessions: {{path: {tmp_path}/sessions.sqlite3}}\n"
    )
    script = [
        Reply(calls=[call("nested")]),
        Reply(calls=[call("middle", input="go down")]),
        Reply(calls=[call("bottom", input="further")]),
        Reply(calls=[call("nested")]),
        Reply(final="bottom done"),
        Reply(final="middle done"),
        Reply(calls=[call("nested")]),
        Reply(final="top done"),
    ]
    async with (
        MockVLLM(script) as mock,
        Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime,
    ):
        result = await runtime.run("top", "go")
    assert result.final_output == "top done"
    # The last tool output each model request carried: nested runs see the flag set.
    assert [mock.model_requests[n].function_outputs[-1].output for n in (1, 4, 5, 6, 7)] == [
        "nested: False",
        "nested: True",
        "bottom done",
        "middle done",
        "nested: False",
    ]
    assert [r.json["tools"][0]["name"] for r in mock.model_requests[2:5]] == [
        "bottom",
        "nested",
        "nested",
    ]


async def test_an_agent_runs_with_the_sdks_own_runner_agent_tools_included(
    tmp_path: Path,
) -> None:
    script = [
        Reply(calls=[call("weather_haiku", input="Tokyo")]),
        Reply(calls=[call("get_weather", city="Tokyo")]),
        Reply(final="Sun over Tokyo."),
        Reply(final="Here: Sun over Tokyo."),
    ]
    async with (
        MockVLLM(script) as mock,
        Runtime.from_yaml(
            PROJECT, environ={"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
        ) as runtime,
    ):
        planner = runtime.agent("planner")
        result = await Runner.run(planner, "A poem.", run_config=RunConfig(tracing_disabled=True))
    assert result.final_output == "Here: Sun over Tokyo."
    assert mock.model_requests[3].function_outputs[-1].output == "Sun over Tokyo."


# -- output schemas ---------------------------------------------------------------------------


SCHEMA = (
    "{type: object, additionalProperties: false, required: [a, b],"
    " properties: {a: {type: integer}, b: {type: array, items: {type: string}}}}"
)


@pytest.fixture
async def output() -> AsyncIterator[Any]:
    async with built(f"agents:\n  ex: {{output_schema: {SCHEMA}}}\n  free: {{}}\n") as result:
        assert result.agents["free"].output_type is None
        yield result.agents["ex"].output_type


def test_an_output_schema_is_sent_as_it_is_declared(output: Any) -> None:
    assert output.name() == "ex_output"
    assert output.is_plain_text() is False
    assert output.is_strict_json_schema() is False
    assert output.json_schema() == {
        "type": "object",
        "additionalProperties": False,
        "required": ["a", "b"],
        "properties": {
            "a": {"type": "integer"},
            "b": {"type": "array", "items": {"type": "string"}},
        },
    }
    assert output.validate_json('{"a": 1, "b": ["x"]}') == {"a": 1, "b": ["x"]}


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(
            "Sure! Here it is.",
            "the final answer of `ex` is not JSON (Expecting value at line 1 column 1), but the "
            "agent has an output_schema",
            id="prose",
        ),
        pytest.param(
            '{"a": 1, "b": ["x"]',
            "the final answer of `ex` is not JSON (Expecting ',' delimiter at line 1 column 20), "
            "but the agent has an output_schema",
            id="cut-short",
        ),
        pytest.param(
            '{"a": 1, "b": ["x]}',
            "the final answer of `ex` is not JSON (Unterminated string starting at line 1 column "
            "16), but the agent has an output_schema",
            id="unterminated-string",
        ),
        pytest.param(
            "[]",
            "the final answer of `ex` does not match its output_schema: (root): [] is not of "
            "type 'object'",
            id="root",
        ),
        pytest.param(
            '{"b": [1], "c": 1, "a": "x"}',
            "the final answer of `ex` does not match its output_schema: (root): Additional "
            "properties are not allowed ('c' was unexpected); a: 'x' is not of type 'integer'; "
            "b/0: 1 is not of type 'string'",
            id="sorted-by-place",
        ),
        pytest.param(
            '{"a": 1, "b": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]}',
            "the final answer of `ex` does not match its output_schema: b/0: 1 is not of type "
            "'string'; b/1: 2 is not of type 'string'; b/2: 3 is not of type 'string'; b/3: 4 is "
            "not of type 'string'; b/4: 5 is not of type 'string'",
            id="first-five",
        ),
    ],
)
def test_an_answer_that_breaks_the_output_schema(output: Any, answer: str, message: str) -> None:
    with pytest.raises(ModelBehaviorError) as error:
        output.validate_json(answer)
    assert str(error.value) == message
    invalid = error.value.__cause__
    assert isinstance(invalid, InvalidAnswer)
    assert (invalid.agent, invalid.answer) == ("ex", answer)
    assert message.endswith(invalid.problems) or invalid.problems.startswith("it is not JSON (")


class Order(BaseModel):
    """A typed output."""

    item: str
    count: int = Field(gt=0)


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(
            "Two pens.",
            "the final answer of `typed` is not JSON (Expecting value at line 1 column 1), but "
            "the agent has an output_schema",
            id="prose",
        ),
        pytest.param(
            '{"item": "pen", "count": 0, "colour": "red"}',
            "the final answer of `typed` does not match its output_schema: count: Input should "
            "be greater than 0",
            id="constraint",
        ),
        pytest.param(
            "[1]",
            "the final answer of `typed` does not match its output_schema: (root): Input "
            "should be a valid dictionary or instance of Order",
            id="root",
        ),
    ],
)
async def test_a_typed_output(answer: str, message: str) -> None:
    async with built(
        "agents:\n  typed: {output_schema: 'tests.test_builder:Order', output_retries: 0}\n"
    ) as result:
        output = result.agents["typed"].output_type
    assert isinstance(output, AgentOutputSchemaBase)
    assert (output.name(), output.is_plain_text(), output.is_strict_json_schema()) == (
        "typed_output",
        False,
        False,
    )
    assert output.json_schema() == Order.model_json_schema()
    assert output.validate_json('{"item": "pen", "count": 2}') == Order(item="pen", count=2)
    with pytest.raises(ModelBehaviorError) as error:
        output.validate_json(answer)
    assert str(error.value) == message


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
async def runtime(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[Runtime]:
    environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
    async with Runtime.from_yaml(PROJECT, environ=environ) as rt:
        yield rt


async def test_structured_output(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(reasoning="JSON.", final='{"city": "Tokyo", "temperature_c": 21}'))
    result = await runtime.run("extractor", "Tokyo is at 21 degrees.")
    assert result.final_output == {"city": "Tokyo", "temperature_c": 21}
    assert mock.model_requests[0].json["text"]["format"]["type"] == "json_schema"


async def test_structured_output_that_breaks_the_schema(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(final='{"city": "Tokyo"}'), Reply(final='{"city": "Tokyo"}'))
    with pytest.raises(RunError) as error:
        await runtime.run("extractor", "Tokyo")
    assert str(error.value) == (
        "agent `extractor` answered 2 time(s) without matching its output_schema "
        "(output_retries=1); last: (root): 'temperature_c' is a required property. Raise "
        "`output_retries` for the agent in agents.yaml, or say in its instructions what the "
        "answer must look like."
    )


# -- what the SDK cannot build ----------------------------------------------------------------


async def test_a_tool_the_sdk_cannot_describe_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "typed.py").write_text('def f(a: dict) -> str:\n    "Doc."\n    return ""\n')
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\n"
        "backends: {b: {base_url: 'http://127.0.0.1:9/v1', model: m}}\n"
        "tools: {t: {function: 'typed:f'}}\n"
        "agents: {a: {tools: [t]}}\n"
    )
    runtime = Runtime.from_yaml(config, trace_path=False)
    with pytest.raises(ConfigError) as error:
        runtime.agent("a")
    assert str(error.value).startswith(
        f"{config}: tools.t.function: cannot make a tool schema from `typed:f`: UserError: "
        "additionalProperties should not be set for object types"
    )
    assert str(error.value).endswith("or set `strict: false` on the tool.")
    await runtime.aclose()


@pytest.mark.parametrize(
    ("strict", "fix"),
    [
        pytest.param(
            "true",
            "Give the function named parameters with type hints (no **kwargs, no plain dict), or "
            "set `strict: false` on the tool.",
            id="strict",
        ),
        pytest.param("false", "Give the function named parameters with type hints.", id="loose"),
    ],
)
async def test_a_parameter_type_pydantic_cannot_describe(strict: str, fix: str) -> None:
    with pytest.raises(ConfigError) as error:
        async with built(
            f"tools: {{t: {{function: 'tests.test_builder:takes_a_socket', strict: {strict}}}}}\n"
            "agents: {a: {tools: [t]}}\n"
        ):
            pass
    assert str(error.value) == (
        "agents.yaml: tools.t.function: cannot make a tool schema from "
        "`tests.test_builder:takes_a_socket`: PydanticSchemaGenerationError: Unable to generate "
        "pydantic-core schema for <class 'tests.test_builder.Socket'>. Set "
        "`arbitrary_types_allowed=True` in the model_config to ignore this error or implement "
        f"`__get_pydantic_core_schema__` on your type to fully support it. {fix}"
    )
    assert isinstance(error.value.__cause__, Exception)
