"""Output types: `output_schema` as a JSON Schema or a Python type by reference, and final
answers that break it sent back to the model up to `output_retries` times."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import BaseModel
from typing_extensions import TypedDict

from agent_runtime import ConfigError, RunError, RunFinished, Runtime
from agent_runtime.builder import output_type
from agent_runtime.cli import cli
from agent_runtime.config import load_config
from agent_runtime.errors import RunLimitError
from agent_runtime.results import Retrying
from agent_runtime.testing import MockVLLM, Reply, call

M = "tests.test_output_types"


class Weather(BaseModel):
    city: str
    temperature_c: float


@dataclass
class Place:
    city: str
    country: str


class Point(TypedDict):
    x: int
    y: int


class Socket:
    """A type pydantic cannot validate."""


def not_a_type() -> None:
    """Not a type."""


def get_weather(city: str) -> str:
    """The weather.

    Args:
        city: The city.
    """
    return f"21 degrees in {city}"


YAML = """\
version: 1
sessions: {{path: state/sessions.sqlite3}}
tracing: {{path: state/traces.jsonl, include_sensitive_data: true}}
defaults: {{output_retries: {retries}}}
backends:
  mock: {{base_url: "${{MOCK_URL}}", model: openai/gpt-oss-20b, max_retries: 0}}
tools:
  get_weather: {{function: "{m}:get_weather"}}
agents:
  weather:
    instructions: Answer with JSON.
    output_schema: "{m}:Weather"
    tools: [get_weather]
  place: {{output_schema: "{m}:Place", output_retries: 0}}
  point: {{output_schema: "{m}:Point"}}
  schema:
    output_schema:
      type: object
      properties: {{city: {{type: string}}}}
      required: [city]
    max_turns: 2
"""

RETRY_REQUEST = (
    "Your answer does not match the required output schema: {problems}. Answer again with only "
    "the corrected JSON, matching the schema."
)


def project(folder: Path, retries: int = 1) -> Path:
    config = folder / "agents.yaml"
    config.write_text(YAML.format(retries=retries, m=M))
    return config


@pytest.fixture
async def mock() -> AsyncIterator[MockVLLM]:
    async with MockVLLM() as server:
        yield server


@pytest.fixture
async def runtime(mock: MockVLLM, tmp_path: Path) -> AsyncIterator[Runtime]:
    async with Runtime.from_yaml(project(tmp_path), environ={"MOCK_URL": mock.url}) as rt:
        yield rt


def input_of(mock: MockVLLM, request: int) -> list[Any]:
    return list(mock.model_requests[request].json["input"])


def traced(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "state" / "traces.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


# -- typed outputs ----------------------------------------------------------------------------


async def test_a_typed_output_is_an_instance(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(reasoning="JSON.", final='{"city": "Tokyo", "temperature_c": 21}'))
    result = await runtime.run("weather", "Tokyo is at 21 degrees.")
    assert type(result.final_output).__name__ == "Weather"
    assert result.final_output.model_dump() == {"city": "Tokyo", "temperature_c": 21.0}
    request = mock.model_requests[0].json
    assert request["text"]["format"]["type"] == "json_schema"
    assert request["text"]["format"]["schema"]["required"] == ["city", "temperature_c"]
    assert result.to_dict()["final_output"] == {"city": "Tokyo", "temperature_c": 21.0}


@pytest.mark.parametrize(
    ("agent", "answer", "expected"),
    [
        pytest.param("place", '{"city": "Paris", "country": "FR"}', "Place", id="dataclass"),
        pytest.param("point", '{"x": 1, "y": 2}', "dict", id="typed-dict"),
    ],
)
async def test_other_types_pydantic_validates(
    mock: MockVLLM, runtime: Runtime, agent: str, answer: str, expected: str
) -> None:
    mock.add(Reply(final=answer))
    result = await runtime.run(agent, "Where?")
    assert type(result.final_output).__name__ == expected
    assert result.to_dict()["final_output"] == json.loads(answer)


# -- retries ----------------------------------------------------------------------------------


async def test_a_broken_answer_goes_back_to_the_model(
    mock: MockVLLM, runtime: Runtime, tmp_path: Path
) -> None:
    mock.add(
        Reply(reasoning="Look it up.", calls=(call("get_weather", city="Tokyo"),)),
        Reply(reasoning="JSON.", final='{"city": "Tokyo", "temperature_c": "warm"}'),
        Reply(reasoning="Fix it.", final='{"city": "Tokyo", "temperature_c": 21}'),
    )
    result = await runtime.run("weather", "Tokyo?", session="s")
    assert result.final_output.model_dump() == {"city": "Tokyo", "temperature_c": 21.0}
    assert (result.turns, result.usage.requests) == (3, 3)
    assert [item.type for item in result.items][:3] == ["reasoning", "tool_call", "tool_result"]
    problems = "temperature_c: Input should be a valid number, unable to parse string as a number"
    sent = input_of(mock, 2)
    assert sent[-2:] == [
        {"role": "assistant", "content": '{"city": "Tokyo", "temperature_c": "warm"}'},
        {"role": "user", "content": RETRY_REQUEST.format(problems=problems)},
    ]
    assert [item.get("type") for item in sent[1:3]] == ["function_call", "function_call_output"]
    retry = [record for record in traced(tmp_path) if record["type"] == "output_retry"]
    assert len(retry) == 1
    assert {key: retry[0][key] for key in ("agent", "attempt", "output_retries", "problems")} == {
        "agent": "weather",
        "attempt": 1,
        "output_retries": 1,
        "problems": problems,
    }
    end = traced(tmp_path)[-1]
    assert (end["type"], end["outcome"], end["turns"]) == ("run_end", "completed", 3)
    assert end["final_output"] == {"city": "Tokyo", "temperature_c": 21.0}
    stored = await runtime.session_items("s")
    assert stored[0] == {"role": "user", "content": "Tokyo?"}
    assert {"role": "user", "content": RETRY_REQUEST.format(problems=problems)} in stored
    assert stored[-1]["role"] == "assistant"


async def test_an_answer_that_is_never_right(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(final="Sure, 21 degrees."), Reply(final='{"city": "Tokyo"}'))
    with pytest.raises(RunError) as error:
        await runtime.run("weather", "Tokyo?")
    assert str(error.value) == (
        "agent `weather` answered 2 time(s) without matching its output_schema "
        "(output_retries=1); last: temperature_c: Field required. Raise `output_retries` for the "
        "agent in agents.yaml, or say in its instructions what the answer must look like."
    )
    assert input_of(mock, 1)[-1] == {
        "role": "user",
        "content": RETRY_REQUEST.format(
            problems="it is not JSON (Expecting value at line 1 column 1)"
        ),
    }
    assert len(mock.model_requests) == 2


async def test_no_retry_with_output_retries_0(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(final='{"city": "Paris"}'))
    with pytest.raises(RunError) as error:
        await runtime.run("place", "Where?")
    assert str(error.value) == (
        "agent `place` answered 1 time(s) without matching its output_schema "
        "(output_retries=0); last: country: Field required. Raise `output_retries` for the "
        "agent in agents.yaml, or say in its instructions what the answer must look like."
    )
    assert len(mock.model_requests) == 1


async def test_retries_from_defaults(mock: MockVLLM, tmp_path: Path) -> None:
    mock.add(Reply(final="[]"), Reply(final="[1]"), Reply(final='{"city": "Oslo"}'))
    config = project(tmp_path, retries=2)
    async with Runtime.from_yaml(config, environ={"MOCK_URL": mock.url}) as runtime:
        result = await runtime.run("schema", "Where?", max_turns=3)
    assert result.final_output == {"city": "Oslo"}
    assert input_of(mock, 2)[-1] == {
        "role": "user",
        "content": RETRY_REQUEST.format(problems="(root): [1] is not of type 'object'"),
    }


async def test_a_retry_needs_a_turn_left(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(final="[]"), Reply(final="[]"))
    with pytest.raises(RunLimitError) as error:
        await runtime.run("schema", "Where?", max_turns=1)
    assert str(error.value) == (
        "agent `schema` used all its turns (max_turns=1) without a final answer that matches "
        "its output_schema; last: (root): [] is not of type 'object'. Raise `max_turns` for "
        "the agent in agents.yaml, or pass --max-turns."
    )
    assert len(mock.model_requests) == 1


async def test_a_streamed_run_retries_too(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(final='{"town": "Oslo"}'), Reply(final='{"city": "Oslo"}'))
    events = [event async for event in runtime.stream("schema", "Where?")]
    retrying = [event for event in events if isinstance(event, Retrying)]
    assert retrying == [
        Retrying(
            agent="schema",
            attempt=1,
            cause="the answer does not match the output_schema: (root): 'city' is a required "
            "property",
        )
    ]
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert (finished.result.final_output, finished.result.turns) == ({"city": "Oslo"}, 2)
    assert input_of(mock, 1)[-2]["content"] == '{"town": "Oslo"}'


async def test_a_streamed_run_that_is_never_right(mock: MockVLLM, runtime: Runtime) -> None:
    mock.add(Reply(final="{}"), Reply(final="{}"))
    with pytest.raises(RunError) as error:
        async for _ in runtime.stream("schema", "Where?"):
            pass
    assert str(error.value).startswith(
        "agent `schema` answered 2 time(s) without matching its output_schema (output_retries=1)"
    )


# -- the CLI ----------------------------------------------------------------------------------


def test_the_cli_prints_a_typed_output_as_json(tmp_path: Path) -> None:
    config = project(tmp_path)
    script = [
        Reply(final='{"city": "Tokyo"}'),
        Reply(final='{"city": "Tokyo", "temperature_c": 21}'),
    ]
    with MockVLLM(script) as mock:
        result = CliRunner().invoke(
            cli, ["run", "-c", str(config), "weather", "Tokyo?"], env={"MOCK_URL": mock.url}
        )
    assert (result.exit_code, result.output) == (
        0,
        '{\n  "city": "Tokyo",\n  "temperature_c": 21.0\n}\n',
    )


def test_the_cli_json_has_the_typed_output(tmp_path: Path) -> None:
    config = project(tmp_path)
    with MockVLLM([Reply(final='{"city": "Paris", "country": "FR"}')]) as mock:
        result = CliRunner().invoke(
            cli,
            ["run", "-c", str(config), "place", "Where?", "--json"],
            env={"MOCK_URL": mock.url},
        )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["final_output"] == {"city": "Paris", "country": "FR"}


# -- config -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        pytest.param(
            f"{M}:Wether",
            f"module `{M}` has no attribute `Wether`. Did you mean `Weather`?",
            id="misspelt",
        ),
        pytest.param(
            "missing_module:Weather",
            "cannot import `missing_module` (looked in {base} and on sys.path): "
            "ModuleNotFoundError: No module named 'missing_module'.",
            id="no-module",
        ),
        pytest.param(
            f"{M}:not_a_type",
            f"`{M}:not_a_type` is a value of type function, not a type; name a pydantic "
            "model, a dataclass or a TypedDict.",
            id="a-function",
        ),
        pytest.param(
            f"{M}:Socket",
            f"`{M}:Socket` is a type pydantic cannot validate (Unable to generate "
            f"pydantic-core schema for <class '{M}.Socket'>); name a pydantic model, a "
            "dataclass or a TypedDict.",
            id="not-validatable",
        ),
        pytest.param(
            f"{M}.Weather",
            "expected a 'package.module:Type' reference (or a JSON Schema mapping), got "
            f"'{M}.Weather'.",
            id="malformed",
        ),
    ],
)
def test_an_output_type_that_cannot_be_used(tmp_path: Path, reference: str, message: str) -> None:
    config = project(tmp_path)
    config.write_text(config.read_text().replace(f'"{M}:Weather"', f'"{reference}"'))
    with pytest.raises(ConfigError) as error:
        load_config(config, environ={"MOCK_URL": "http://127.0.0.1:9/v1"})
    expected = message.replace("{base}", str(tmp_path))
    assert str(error.value) == f"{config}:12:20: agents.weather.output_schema: {expected}"


def test_output_types_are_not_imported_without_imports(tmp_path: Path) -> None:
    config = load_config(
        project(tmp_path), environ={"MOCK_URL": "http://127.0.0.1:9/v1"}, import_tools=False
    )
    assert config.output_types == {}
    assert config.output_retries_of("place") == 0
    assert config.output_retries_of("weather") == 1
    schema = output_type("weather", f"{M}:Weather", config).json_schema()
    assert schema["required"] == ["city", "temperature_c"]
    with pytest.raises(ConfigError) as error:
        output_type("weather", f"{M}:Wether", config)
    assert str(error.value) == (
        f"{config.source}: agents.weather.output_schema: module `{M}` has no attribute `Wether`. "
        "Did you mean `Weather`?"
    )
