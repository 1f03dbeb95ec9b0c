"""The embedded backend: real harmony rendering and parsing around a fake engine (no GPU)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner, function_tool

from agent_runtime import BackendUnavailableError, Runtime
from agent_runtime.backends.embedded import EngineUnavailableError, VLLMEngine, embedded_model
from agent_runtime.config import parse_config
from agent_runtime.results import ToolResult
from agent_runtime.sessions import SessionStore
from agent_runtime.testing import LATEST, FakeEngine, MockVLLM, Reply, call, load_encoding
from tests import helpers

DATE = "2026-11-22"
HAIKU = "Sun over Tokyo"
NO_TRACING = RunConfig(tracing_disabled=True)


@function_tool
def get_weather(city: str) -> str:
    """Current weather for a city.

    Args:
        city: The city name.
    """
    return json.dumps({"city": city, "condition": "sunny"})


def script() -> list[Reply]:
    return [
        Reply(reasoning="Need the weather.", calls=[call("get_weather", city="Tokyo")]),
        Reply(
            reasoning="Again, for Oslo.",
            preamble="Now Oslo.",
            calls=[call("get_weather", city="Oslo")],
        ),
        Reply(reasoning="Both known. Write.", final=HAIKU),
    ]


def agent(model: Any) -> Agent[Any]:
    return Agent(
        name="weather",
        instructions="You only respond in haikus.",
        model=model,
        tools=[get_weather],
        model_settings={"reasoning": {"effort": "low"}},  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def encoding() -> Any:
    return load_encoding()


async def run_embedded(engine: FakeEngine, *, reuse: str = "exact", stream: bool = False) -> Any:
    model = embedded_model(
        engine,
        engine.encoding,
        model="openai/gpt-oss-20b",
        start_date=DATE,
        reuse=reuse,  # type: ignore[arg-type]
    )
    if not stream:
        return await Runner.run(agent(model), "Weather in Tokyo and Oslo?", run_config=NO_TRACING)
    result = Runner.run_streamed(agent(model), "Weather in Tokyo and Oslo?", run_config=NO_TRACING)
    async for _ in result.stream_events():
        pass
    return result


async def test_rerendered_prompts_equal_the_servers(encoding: Any) -> None:
    """The same tool loop over the embedded backend and over vLLM's server (the mock in harmony
    mode) sends the model identical prompts, token for token, every turn."""
    from agents import OpenAIResponsesModel
    from openai import AsyncOpenAI

    engine = FakeEngine(encoding, script())
    embedded = await run_embedded(engine, reuse="rerender")
    async with (
        MockVLLM(script(), harmony=True, profile=LATEST, start_date=DATE) as mock,
        AsyncOpenAI(base_url=mock.url, api_key="x") as client,
    ):
        served = await Runner.run(
            agent(OpenAIResponsesModel("openai/gpt-oss-20b", openai_client=client)),
            "Weather in Tokyo and Oslo?",
            run_config=NO_TRACING,
        )
    assert embedded.final_output == served.final_output == HAIKU
    server_prompts = [r.prompt_token_ids for r in mock.model_requests]
    assert [g.prompt for g in engine.generations] == server_prompts
    assert len(server_prompts) == 3


async def test_exact_reuse_continues_from_the_generated_tokens(encoding: Any) -> None:
    engine = FakeEngine(encoding, script())
    result = await run_embedded(engine)
    assert result.final_output == HAIKU
    first, second, third = engine.generations
    # Each prompt starts with the whole previous prompt and what the model generated.
    assert second.prompt[: len(first.prompt) + len(first.tokens)] == first.prompt + first.tokens
    assert third.prompt[: len(second.prompt) + len(second.tokens)] == second.prompt + second.tokens
    tail = encoding.decode_utf8(list(second.prompt[len(first.prompt) + len(first.tokens) :]))
    assert tail == (
        "<|start|>functions.get_weather<|channel|>commentary to=assistant<|message|>"
        '{"city": "Tokyo", "condition": "sunny"}<|end|><|start|>assistant'
    )
    usages = [r.usage for r in result.raw_responses]
    assert [u.input_tokens_details.cached_tokens for u in usages] == [
        0,
        len(first.prompt) + len(first.tokens),
        len(second.prompt) + len(second.tokens),
    ]
    assert all(u.output_tokens > u.output_tokens_details.reasoning_tokens > 0 for u in usages)


async def test_rerender_reports_how_much_a_prefix_cache_would_reuse(encoding: Any) -> None:
    engine = FakeEngine(encoding, script())
    result = await run_embedded(engine, reuse="rerender")
    first, second, _ = engine.generations
    cached = result.raw_responses[1].usage.input_tokens_details.cached_tokens
    # The re-render differs from the model's own words where the call's header is written.
    assert len(first.prompt) <= cached < len(first.prompt) + len(first.tokens)
    assert second.prompt[:cached] == (first.prompt + first.tokens)[:cached]


async def test_engine_that_leaves_out_the_stop_token(encoding: Any) -> None:
    engine = FakeEngine(encoding, script(), stop_token=False)
    result = await run_embedded(engine)
    assert result.final_output == HAIKU
    first, second, _ = engine.generations
    call_token = 200012
    assert second.prompt[len(first.prompt) + len(first.tokens)] == call_token


async def test_streaming(encoding: Any) -> None:
    engine = FakeEngine(encoding, script(), chunk=3)
    model = embedded_model(engine, encoding, model="openai/gpt-oss-20b", start_date=DATE)
    result = Runner.run_streamed(agent(model), "Weather?", run_config=NO_TRACING)
    kinds: list[str] = []
    deltas: list[str] = []
    async for event in result.stream_events():
        if event.type == "raw_response_event":
            kinds.append(event.data.type)
            if event.data.type == "response.reasoning_text.delta":
                deltas.append(event.data.delta)  # type: ignore[union-attr]
        elif event.type == "run_item_stream_event":
            kinds.append(event.name)
    assert result.final_output == HAIKU
    assert "".join(deltas).startswith("Need the weather.")
    assert kinds[0] == "response.created"
    assert {"tool_called", "tool_output", "message_output_created"} <= set(kinds)
    assert kinds.count("response.completed") == 3


@pytest.mark.parametrize(
    ("harmony", "types", "detail"),
    [
        pytest.param(
            "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>analysis "
            'to=functions.get_weather <|constrain|>json<|message|>{"city":"Rome"}<|call|>',
            ["reasoning", "function_call"],
            "get_weather",
            id="call-from-analysis",
        ),
        pytest.param(
            "<|channel|>commentary to=get_weather <|constrain|>json<|message|>"
            '{"city":"Oslo"}<|call|>',
            ["function_call"],
            "get_weather",
            id="bare-recipient",
        ),
        pytest.param(
            "<|channel|>analysis to=python<|message|>print(1)<|call|>",
            ["reasoning"],
            None,
            id="builtin-python-is-reasoning",
        ),
        pytest.param(
            "<|channel|>commentary<|message|>Let me check.<|end|><|start|>assistant"
            "<|channel|>final<|message|>Done.<|return|>",
            ["message", "message"],
            None,
            id="preamble-and-final",
        ),
    ],
)
async def test_parsing_rules(
    encoding: Any, harmony: str, types: list[str], detail: str | None
) -> None:
    from agents import ModelSettings
    from agents.models.interface import ModelTracing

    engine = FakeEngine(encoding, [Reply(harmony=harmony)])
    model = embedded_model(engine, encoding, model="m", start_date=DATE)
    response = await model.get_response(
        None, "x", ModelSettings(), [get_weather], None, [], ModelTracing.DISABLED,
        previous_response_id=None, conversation_id=None, prompt=None,
    )  # fmt: skip
    assert [item.type for item in response.output] == types
    if detail is not None:
        assert response.output[-1].name == detail  # type: ignore[union-attr]


async def test_output_token_limit_while_reasoning_is_a_cut_answer(encoding: Any) -> None:
    from agents import ModelSettings
    from agents.models.interface import ModelTracing

    from agent_runtime.backends.client import CutAnswerError

    engine = FakeEngine(encoding, [Reply(reasoning="one two three four five six seven eight")])
    model = embedded_model(engine, encoding, model="m", start_date=DATE)
    with pytest.raises(CutAnswerError) as caught:
        await model.get_response(
            None, "x", ModelSettings(max_tokens=5), [], None, [], ModelTracing.DISABLED,
            previous_response_id=None, conversation_id=None, prompt=None,
        )  # fmt: skip
    assert engine.generations[0].sampling.max_tokens == 5
    assert str(caught.value) == (
        "the answer was cut at the output token limit (max_output_tokens=5) while the model "
        "was still reasoning"
    )


def test_vllm_missing_is_a_clear_error() -> None:
    with pytest.raises(EngineUnavailableError) as error:
        VLLMEngine.check()
    assert str(error.value).startswith(
        "the vllm-embedded backend runs vLLM in this process, but vLLM is not installed"
    )
    assert "pip install 'agent-runtime[vllm]'" in str(error.value)


def _gpu_ready() -> bool:
    try:
        VLLMEngine.check()
    except EngineUnavailableError:
        return False
    return True


@pytest.mark.gpu
@pytest.mark.skipif(not _gpu_ready(), reason="needs the vllm extra and a CUDA GPU")
async def test_real_engine_on_a_gpu(encoding: Any) -> None:
    from agent_runtime.backends.embedded import EngineOptions

    engine = VLLMEngine(EngineOptions(model="openai/gpt-oss-20b", max_model_len=8192))
    try:
        model = embedded_model(engine, encoding, model="openai/gpt-oss-20b")
        result = await Runner.run(
            agent(model), "What's the weather in Tokyo?", run_config=NO_TRACING
        )
        assert result.final_output
        assert any(item.type == "tool_call_item" for item in result.new_items)
    finally:
        await engine.close()


# -- `kind: vllm-embedded` in agents.yaml -----------------------------------------------------

PROJECT = helpers.PROJECT
EMBEDDED_YAML = """\
version: 1
backends:
  gpu:
    kind: vllm-embedded
    model: openai/gpt-oss-20b
    engine: {max_model_len: 16384, prefix_reuse: exact}
tools:
  get_weather: {function: "fixture_tools.basic:get_weather"}
agents:
  weather:
    instructions: You only respond in haikus.
    backend: gpu
    tools: [get_weather]
"""


def embedded_runtime(engine: FakeEngine, tmp_path: Path, **options: Any) -> Runtime:
    config = parse_config(EMBEDDED_YAML, base_dir=PROJECT, environ={})
    return Runtime(
        config,
        engines={"gpu": engine},
        sessions=SessionStore(tmp_path / "sessions.sqlite3"),
        trace_path=tmp_path / "trace.jsonl",
        **options,
    )


async def test_runtime_runs_the_tool_loop_on_an_embedded_engine(
    encoding: Any, tmp_path: Path
) -> None:
    engine = FakeEngine(
        encoding,
        [
            Reply(reasoning="Need the weather.", calls=[call("get_weather", city="Tokyo")]),
            Reply(reasoning="Sunny. Write.", final=HAIKU),
            Reply(reasoning="Same again.", final=HAIKU),
        ],
    )
    async with embedded_runtime(engine, tmp_path) as runtime:
        result = await runtime.run("weather", "Weather in Tokyo?", session="s")
        again = await runtime.run("weather", "Once more?", session="s")

    assert result.final_output == again.final_output == HAIKU
    (tool_result,) = [item for item in result.items if isinstance(item, ToolResult)]
    assert json.loads(tool_result.output)["city"] == "Tokyo"
    assert result.usage.requests == 2
    # The second call continues from the first one's tokens; the next run from the last one's.
    assert result.usage.cached_tokens > 0
    first, second, third = (g.prompt for g in engine.generations)
    assert second[: len(first)] == first
    # A new user message is rendered afresh, without the finished turn's reasoning; it shares
    # the system, developer and first user message with the earlier prompts.
    assert third[: len(first) - 2] == first[:-2]  # all but `<|start|>assistant`
    assert "Need the weather." not in encoding.decode(list(third))
    assert encoding.decode(list(third)).endswith(
        f"<|channel|>final<|message|>{HAIKU}<|end|><|start|>user<|message|>Once more?<|end|>"
        "<|start|>assistant"
    )
    records = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    reuse = [record for record in records if record["type"] == "prefix_reuse"]
    assert [(e["mode"], e["reused_tokens"] > 0) for e in reuse] == [
        ("exact", False),
        ("exact", True),
        ("exact", False),
    ]
    assert reuse[1]["reused_tokens"] == len(first) + len(engine.generations[0].tokens)
    assert engine.closed is False  # an engine passed in stays the caller's


async def test_base_url_override_uses_a_server_instead(encoding: Any, tmp_path: Path) -> None:
    engine = FakeEngine(encoding)
    async with MockVLLM(script=[Reply(final=HAIKU)]) as mock:
        async with embedded_runtime(engine, tmp_path, base_url=mock.url) as runtime:
            result = await runtime.run("weather", "Weather?")
        assert len(mock.model_requests) == 1
    assert result.final_output == HAIKU
    assert engine.generations == []


def test_runtime_without_vllm_says_what_is_missing(tmp_path: Path) -> None:
    config = parse_config(EMBEDDED_YAML, base_dir=PROJECT, environ={})
    runtime = Runtime(config, sessions=SessionStore(tmp_path / "s.sqlite3"), trace_path=False)
    with pytest.raises(BackendUnavailableError, match="vLLM is not installed"):
        runtime.run_sync("weather", "hi")


def test_cli_run_without_vllm_and_with_a_server_instead(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from agent_runtime.cli import cli

    config = tmp_path / "agents.yaml"
    config.write_text(EMBEDDED_YAML)
    (tmp_path / "fixture_tools").symlink_to(PROJECT / "fixture_tools")
    missing = CliRunner().invoke(cli, ["run", "-c", str(config), "weather", "hi"])
    assert missing.exit_code == 3
    assert "vLLM is not installed" in missing.output
    assert "Traceback" not in missing.output
    with MockVLLM(script=[Reply(final=HAIKU)]) as mock:
        served = CliRunner().invoke(
            cli, ["run", "-c", str(config), "--base-url", mock.url, "weather", "hi"]
        )
    assert (served.exit_code, served.output.strip()) == (0, HAIKU)


async def test_concurrent_runs_share_the_backend_engine(encoding: Any, tmp_path: Path) -> None:
    engine = FakeEngine(encoding, [Reply(reasoning=f"Run {i}.", final=HAIKU) for i in range(6)])
    async with embedded_runtime(engine, tmp_path) as runtime:
        results = await asyncio.gather(*(runtime.run("weather", f"Weather {i}?") for i in range(6)))
    assert [result.final_output for result in results] == [HAIKU] * 6
    prompts = sorted(encoding.decode(list(g.prompt)) for g in engine.generations)
    assert [prompt.count(f"Weather {i}?") for i, prompt in enumerate(prompts)] == [1] * 6


def test_engine_settings_come_from_agents_yaml(monkeypatch: pytest.MonkeyPatch) -> None:
    from agent_runtime.backends import EmbeddedBackend, create_backend

    monkeypatch.setattr(VLLMEngine, "check", staticmethod(lambda: None))  # as on a GPU machine
    config = parse_config(
        EMBEDDED_YAML.replace(
            "engine: {max_model_len: 16384, prefix_reuse: exact}",
            "engine: {max_model_len: 16384, tensor_parallel_size: 2, gpu_memory_utilization: 0.8}",
        ),
        base_dir=PROJECT,
        environ={},
    )
    backend = create_backend("gpu", config.spec.backends["gpu"])
    assert isinstance(backend, EmbeddedBackend) and backend.owns_engine
    assert isinstance(backend.engine, VLLMEngine)
    options = backend.engine.options
    assert (options.model, options.tensor_parallel_size, options.gpu_memory_utilization) == (
        "openai/gpt-oss-20b",
        2,
        0.8,
    )
    assert options.max_model_len == 16384
