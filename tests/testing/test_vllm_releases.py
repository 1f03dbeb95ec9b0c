"""The mock against vLLM itself: for every request of the recorded corpus (tests/fixtures/vllm/,
captured from vLLM 0.33.0 and 0.22.1 by scripts/vllm_oracle), the mock with that release's
profile renders the same prompt, answers the same generated tokens with the same JSON body and
the same server-sent events, refuses the same bad requests with the same error, and reports the
same models and version."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from agent_runtime.testing import (
    VLLM_0_22,
    VLLM_0_33,
    MockVLLM,
    RecordedRequest,
    Reply,
    VLLMProfile,
)
from tests.vllm_fixtures import VERSIONS, load, normalise

PROFILES: dict[str, VLLMProfile] = {"0.33.0": VLLM_0_33, "0.22.1": VLLM_0_22}
DATE = "2026-01-01"  # VLLM_SYSTEM_START_DATE of the captures
NAMES = ("openai/gpt-oss-20b", "gpt-oss")
ANSWER = "<|channel|>final<|message|>It is 15C.<|return|>"  # what the capture's engine answers


def cases(kind: str) -> list[Any]:
    return [
        pytest.param(version, case, id=f"{version}-{case_id}")
        for version in VERSIONS
        for case_id, case in load(version, kind).items()
        if "skipped" not in case
    ]


class Replies:
    """The reply the shared servers give: the one generation of the case under test."""

    def __init__(self) -> None:
        self.reply = Reply(harmony=ANSWER)

    def __call__(self, record: RecordedRequest) -> Reply:
        return self.reply


@pytest.fixture(scope="module")
def replies() -> Replies:
    return Replies()


@pytest.fixture(scope="module")
def servers(replies: Replies) -> Iterator[Callable[..., MockVLLM]]:
    """One mock per release (and API key) for the module: loading harmony's encoding for each
    case would cost more than the cases themselves."""
    started: dict[tuple[str, str | None], MockVLLM] = {}

    def server(version: str, api_key: str | None = None) -> MockVLLM:
        key = (version, api_key)
        if key not in started:
            started[key] = MockVLLM(
                default=replies,
                harmony=True,
                profile=PROFILES[version],
                served_model_names=NAMES,
                start_date=DATE,
                api_key=api_key,
                keep_requests=1,
            ).start()
        return started[key]

    yield server
    for mock in started.values():
        mock.stop()


@pytest.fixture
def mock_for(
    servers: Callable[..., MockVLLM], replies: Replies
) -> Iterator[Callable[..., MockVLLM]]:
    def make(version: str, *, reply: Reply | None = None, api_key: str | None = None) -> MockVLLM:
        replies.reply = reply or Reply(harmony=ANSWER)
        return servers(version, api_key)

    yield make
    replies.reply = Reply(harmony=ANSWER)


def answer_of(response: httpx.Response) -> dict[str, Any]:
    """The response as the fixtures hold an answer (before normalising)."""
    content_type = response.headers.get("content-type", "")
    answer: dict[str, Any] = {"status": response.status_code, "content_type": content_type}
    if content_type.startswith("text/event-stream"):
        answer["events"] = sse_events(response.text)
    else:
        try:
            answer["body"] = response.json()
        except ValueError:
            answer["text"] = response.text
    return answer


def sse_events(text: str) -> list[dict[str, Any]]:
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event: dict[str, Any] = {}
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                event["event"] = value
            elif field == "data":
                event["data"] = value if value == "[DONE]" else json.loads(value)
        events.append(event)
    return events


def comparable(answer: dict[str, Any]) -> dict[str, Any]:
    """An answer with its body or events normalised as the fixtures are."""
    out = dict(answer)
    out["content_type"] = out["content_type"].split(";")[0]
    for key in ("body", "events"):
        if key in out:
            out[key] = normalise(out[key])
    return out


def differences(got: Any, want: Any, where: str = "") -> list[str]:
    """Where two JSON documents differ, one line per place (empty when equal)."""
    if isinstance(got, dict) and isinstance(want, dict):
        lines = []
        for key in sorted(set(got) | set(want), key=str):
            here = f"{where}.{key}"
            if key not in got:
                lines.append(f"{here}: missing, expected {want[key]!r}")
            elif key not in want:
                lines.append(f"{here}: unexpected {got[key]!r}")
            else:
                lines.extend(differences(got[key], want[key], here))
        return lines
    if isinstance(got, list) and isinstance(want, list):
        lines = []
        for index in range(max(len(got), len(want))):
            here = f"{where}[{index}]"
            if index >= len(got):
                lines.append(f"{here}: missing, expected {want[index]!r}")
            elif index >= len(want):
                lines.append(f"{here}: unexpected {got[index]!r}")
            else:
                lines.extend(differences(got[index], want[index], here))
        return lines
    if got != want or type(got) is not type(want):
        return [f"{where}: {got!r} != expected {want!r}"]
    return []


def assert_same(got: dict[str, Any], want: dict[str, Any]) -> None:
    lines = differences(comparable(got), comparable(want))
    assert not lines, "the mock differs from vLLM:\n" + "\n".join(lines[:40])


def post(mock: MockVLLM, path: str, body: Any) -> httpx.Response:
    return httpx.post(mock.root_url + path, json=body, timeout=30)


@pytest.mark.parametrize(("version", "case"), cases("render"))
def test_prompts_equal_the_releases(
    mock_for: Callable[..., MockVLLM], version: str, case: dict[str, Any]
) -> None:
    path = "/v1/responses" if case["api"] == "responses" else "/v1/chat/completions"
    mock = mock_for(version)
    response = post(mock, path, case["request"])
    if case["answer"]["status"] != 200:
        assert_same(answer_of(response), case["answer"])
        return
    assert response.status_code == 200, response.text
    record = mock.model_requests[-1]
    assert record.prompt == case["prompt_text"]
    assert list(record.prompt_token_ids or ()) == case["prompt_token_ids"]


@pytest.mark.parametrize(("version", "case"), cases("responses"))
def test_answers_equal_the_releases(
    mock_for: Callable[..., MockVLLM], version: str, case: dict[str, Any]
) -> None:
    path = "/v1/responses" if case["api"] == "responses" else "/v1/chat/completions"
    generated = case["generated"]
    reply = Reply(harmony=generated["text"], incomplete=generated["finish_reason"] == "length")
    mock = mock_for(version, reply=reply)
    plain = post(mock, path, case["request"])
    streamed = post(mock, path, case["streaming_request"])
    assert_same(answer_of(plain), case["non_streaming"])
    assert_same(answer_of(streamed), case["streaming"])


@pytest.mark.parametrize(("version", "case"), cases("errors"))
def test_errors_equal_the_releases(
    mock_for: Callable[..., MockVLLM], version: str, case: dict[str, Any]
) -> None:
    request = case["request"]
    mock = mock_for(version, api_key=request.get("api_key"))
    if "content" in request:
        headers = {"content-type": request["content_type"]}
        response = httpx.request(
            request["method"],
            mock.root_url + request["path"],
            content=request["content"],
            headers=headers,
            timeout=30,
        )
    else:
        response = httpx.request(
            request["method"], mock.root_url + request["path"], json=request.get("body")
        )
    assert_same(answer_of(response), case["answer"])


@pytest.mark.parametrize(("version", "case"), cases("endpoints"))
def test_endpoints_equal_the_releases(
    mock_for: Callable[..., MockVLLM], version: str, case: dict[str, Any]
) -> None:
    request = case["request"]
    response = httpx.request(request["method"], mock_for(version).root_url + request["path"])
    assert_same(answer_of(response), case["answer"])
