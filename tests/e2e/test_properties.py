"""Property (hypothesis): random fault sequences never crash a run.

A random script of replies and faults, played by the mock vLLM server (in harmony mode) to the
`worker` or `chat-worker` agent of tests/project/faults.yaml, streamed or not, ends in a
`RunResult` or an `AgentRuntimeError`, in bounded time, and the mock itself never fails.

Random agents.yaml documents are in tests/config/test_properties.py; random request bodies sent
to the mock are fuzzed in tests/testing/test_fuzz.py.
"""

from __future__ import annotations

import asyncio
import gc
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_runtime import RunFinished, RunResult, Runtime
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.testing import Fault, MockVLLM, RecordedRequest, Reply, call, fault
from tests import helpers

PROJECT = helpers.PROJECT
FAULTS = PROJECT / "faults.yaml"

# -- random fault sequences through a real Runtime ----------------------------------------------

FINALS = ["All done.", "Oslo is sunny.", '{"city": "Oslo"}']
CALLS = st.sampled_from(
    [
        call("get_weather", city="Oslo"),
        call("get_weather", city="Oslo", channel="analysis"),
        call("get_weather", town="Oslo"),  # invalid arguments
        call("get_weather", '{"city": '),  # not JSON
        call("add", a=1, b=2),
        call("add", a="x", b=1),
        call("count", key="property"),
        call("get_wether", city="Oslo"),  # no such tool
        call("slow_async", seconds=1),  # past its time limit (0.2 s)
    ]
)


@st.composite
def _reply(draw: st.DrawFn) -> Reply:
    reasoning = draw(st.sampled_from([None, "Think.", ""]))
    preamble = draw(st.sampled_from([None, None, "Let me check."]))
    calls = draw(st.lists(CALLS, max_size=2))
    final = draw(st.sampled_from([None, *FINALS]))
    if reasoning is None and preamble is None and not calls and final is None:
        reasoning = "Hmm."
    return Reply(reasoning=reasoning, preamble=preamble, calls=tuple(calls), final=final)


KINDS = st.sampled_from(
    ["reply", "reply", "reply", "status", "drop", "cut", "empty", "delay", "invalid", "harmony"]
)
STATUSES = st.sampled_from([400, 401, 404, 429, 500, 501, 502, 503, 504])
HARMONY = st.sampled_from(
    [
        "<|channel|>analysis<|message|>x<|end|>garbage",  # does not parse: vLLM's 500
        "<|channel|>final<|message|>All done.<|return|>",
        "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>commentary "
        'to=functions.get_weather <|constrain|>json<|message|>{"city": "Oslo"}<|call|>',
    ]
)


@st.composite
def _entry(draw: st.DrawFn) -> Reply:
    kind = draw(KINDS)
    if kind == "status":
        return fault(status=draw(STATUSES))
    if kind == "harmony":
        return Reply(harmony=draw(HARMONY))
    if kind == "drop":
        return fault(drop_connection=True)
    if kind == "empty":
        return fault(empty_incomplete=True)
    reply = draw(_reply())
    if kind == "cut":
        return Reply(**_parts(reply), fault=Fault(cut_stream=draw(st.integers(0, 8))))
    if kind == "delay":
        return Reply(**_parts(reply), fault=Fault(delay_s=draw(st.sampled_from([0.01, 0.05]))))
    if kind == "invalid" and reply.calls:
        return Reply(**_parts(reply), fault=Fault(invalid_arguments=True))
    return reply


def _parts(reply: Reply) -> dict[str, Any]:
    return {
        "reasoning": reply.reasoning,
        "preamble": reply.preamble,
        "calls": reply.calls,
        "final": reply.final,
    }


@dataclass(slots=True)
class Playlist:
    """The mock's `default`: the current example's replies, then a plain failure.

    One server serves every example; each example loads its own replies, so none is left over
    for the next one.
    """

    replies: deque[Reply] = field(default_factory=deque)

    def __call__(self, request: RecordedRequest) -> Reply:
        try:
            return self.replies.popleft()
        except IndexError:
            return fault(status=500, message="the example's script ran out")


@dataclass(frozen=True, slots=True)
class Rig:
    """One mock server and one runtime, shared by every example (as a service would be)."""

    mock: MockVLLM
    runtime: Runtime
    playlist: Playlist


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    playlist = Playlist()
    async with MockVLLM(default=playlist, harmony=True) as mock:
        environ = {"MOCK_URL": mock.url, "STATE_DIR": str(tmp_path)}
        async with Runtime.from_yaml(FAULTS, environ=environ) as runtime:
            yield Rig(mock, runtime, playlist)


def _texts(script: list[Reply]) -> set[str | None]:
    """What an answer can be: text the model wrote (its final message, a preamble that no call
    followed, or both: Chat Completions joins them in `content`, with a newline on vLLM 0.33);
    or "", when a turn of reasoning alone ends the run (the SDK's rule)."""
    texts = {reply.final for reply in script} | {reply.preamble for reply in script} | {""}
    texts |= {(reply.preamble or "") + (reply.final or "") for reply in script}
    texts |= {
        f"{reply.preamble}\n{reply.final}" for reply in script if reply.preamble and reply.final
    }
    return texts | {
        "All done." for reply in script if reply.harmony and "All done." in reply.harmony
    }


async def _play(rig: Rig, agent: str, stream: bool, max_turns: int) -> RunResult:
    if not stream:
        return await rig.runtime.run(agent, "Weather in Oslo?", max_turns=max_turns)
    events = [e async for e in rig.runtime.stream(agent, "Weather?", max_turns=max_turns)]
    assert isinstance(events[-1], RunFinished)
    assert not any(isinstance(event, RunFinished) for event in events[:-1])
    return events[-1].result


# What this property is about is the run's outcome. A streamed call abandoned part-way (a time
# limit, a cut stream) can leave httpx's `Response.aiter_raw` generator to be finalized by the
# garbage collector at any later moment, rarely while it is still marked running ("async
# generator already executing"): noise from the SDK's and httpx's stream teardown, not a failed
# run, so that one warning does not fail the example it happens to land in.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    script=st.lists(_entry(), min_size=1, max_size=6),
    agent=st.sampled_from(["worker", "chat-worker"]),
    stream=st.booleans(),
    max_turns=st.integers(min_value=1, max_value=4),
)
async def test_random_fault_sequences_end_in_a_result_or_a_clean_error(
    rig: Rig, script: list[Reply], agent: str, stream: bool, max_turns: int
) -> None:
    rig.playlist.replies = deque(script)
    limit = asyncio.timeout(30)
    try:
        async with limit:
            outcome: RunResult | AgentRuntimeError = await _play(rig, agent, stream, max_turns)
    except AgentRuntimeError as exc:
        outcome = exc
    except TimeoutError:
        if not limit.expired():
            raise
        pytest.fail(f"the run did not end within 30 s (script: {script!r})")
    finally:
        rig.playlist.replies.clear()
        # A streamed call leaves the openai client's SSE generators (down to httpx's
        # `BoundAsyncStream.__aiter__`) to be finalized when collected. Collect them now, while
        # the loop runs and can close them, not between examples, where closing them fails
        # with an "Exception ignored in" warning.
        gc.collect()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    assert rig.mock.internal_errors == []
    if isinstance(outcome, RunResult):
        assert outcome.final_output in _texts(script)
        assert 1 <= outcome.turns <= max_turns
    else:
        assert str(outcome)
