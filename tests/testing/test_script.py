"""Scripts: the Python builder, YAML/JSON files, and their errors."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import httpx2
import pytest

from agent_runtime.testing import (
    Call,
    Fault,
    Latency,
    MockVLLM,
    Reply,
    ScriptError,
    call,
    fault,
    load_script,
    parse_script,
)
from tests import helpers

EXAMPLE = helpers.EXAMPLES / "weather-haiku.mock.yaml"


def test_builder_helpers() -> None:
    assert call("get_weather", city="Tokyo") == Call("get_weather", {"city": "Tokyo"})
    assert call("f", '{"broken"').arguments_json == '{"broken"'
    assert call("f", {"a": "é"}).arguments_json == '{"a":"é"}'
    assert fault(status=503) == Reply(fault=Fault(status=503))
    with pytest.raises(TypeError, match="either as a mapping/string or as keywords"):
        call("f", {"a": 1}, b=2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({}, "an empty reply", id="empty"),
        pytest.param(
            {"harmony": "<|channel|>final<|message|>x<|return|>", "final": "x"},
            "either `harmony`",
            id="harmony-and-parts",
        ),
        pytest.param(
            {"fault": Fault(delay_s=1)}, "so the reply needs content too", id="delay-alone"
        ),
    ],
)
def test_invalid_replies(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Reply(**kwargs)  # type: ignore[arg-type]


def test_example_script_loads_and_claims_no_weather_it_cannot_know() -> None:
    replies = load_script(EXAMPLE)
    assert replies[0].calls == (Call("get_weather", {"city": "Tokyo"}),)
    assert replies[1].final is not None
    assert replies[1].final.startswith("Tokyo, asked of sky")
    # The tool's result (a reading online, an error offline) is unknown to a script: the answer
    # after it states no temperature or condition.
    words = set(re.findall(r"[a-z]+|\d+", f"{replies[1].reasoning} {replies[1].final}".lower()))
    assert not words & {"degrees", "sunny", "sun", "warm", "rain", "twenty", "21"}


def test_json_script(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(
        json.dumps(
            [
                {"reasoning": "r", "calls": [{"name": "f", "arguments": '{"x": '}]},
                {"fault": {"status": 503, "message": "busy"}},
                {"final": "ok", "fault": {"delay_s": 0.01}},
            ]
        )
    )
    replies = load_script(path)
    assert replies[0].calls[0].arguments == '{"x": '
    assert replies[1].fault == Fault(status=503, message="busy")
    assert replies[2].fault == Fault(delay_s=0.01)


def test_script_errors_name_the_reply_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- reasoning: 1\n  calls: [{arguments: {}}]\n- finall: x\n")
    with pytest.raises(ScriptError) as error:
        load_script(path)
    assert str(error.value) == (
        f"{path} is not a valid mock script (3 problems):\n"
        f"  {path}: reply[0].reasoning: Input should be a valid string\n"
        f"  {path}: reply[0].calls[0].name: Field required\n"
        f"  {path}: reply[1].finall: Extra inputs are not permitted"
    )


def test_script_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- final: [unclosed\n")
    with pytest.raises(ScriptError, match=rf"^{path}:2:1: invalid YAML: "):
        load_script(path)


def test_script_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ScriptError, match=r"cannot read mock script .*No such file"):
        load_script(tmp_path / "nope.yaml")


def test_reply_that_is_semantically_invalid() -> None:
    with pytest.raises(ScriptError, match=r"reply\[0\]: an empty reply"):
        parse_script([{}], source="inline")


def test_mock_accepts_a_script_path() -> None:
    with MockVLLM(EXAMPLE) as mock:
        body = httpx2.post(f"{mock.url}/responses", json={"input": "x"}).json()
    assert body["output"][1]["name"] == "get_weather"


def test_latency_model_paces_streamed_tokens() -> None:
    reply = Reply(final=" ".join(["word"] * 10))
    latency = Latency(first_token_s=0.05, per_token_s=0.01)
    with MockVLLM([reply], latency=latency) as mock:
        started = time.perf_counter()
        with httpx2.stream(
            "POST", f"{mock.url}/responses", json={"input": "x", "stream": True}
        ) as response:
            arrivals = [time.perf_counter() - started for _ in response.iter_raw()]
    tokens = mock.model_requests[0].events[-1]["response"]["usage"]["output_tokens"]
    # Lower bounds only: the model can never be faster than its latency, whatever the machine.
    assert arrivals[-1] >= latency.total(tokens)
    assert len(arrivals) > 2  # tokens arrive over time, not in one write
