"""The recorded vLLM answers (tests/fixtures/vllm/) themselves: complete, consistent, normalised."""

from __future__ import annotations

import importlib.util
import json
import re
from typing import Any

import pytest

from tests.helpers import ROOT
from tests.vllm_fixtures import (
    FIXTURES,
    ID_PREFIXES,
    KINDS,
    TIMESTAMP_KEYS,
    VERSIONS,
    document,
    load,
    normalise,
    path_of,
)

FILES = [pytest.param(v, k, id=f"{v}-{k}") for v in VERSIONS for k in KINDS]
PLACEHOLDER = re.compile("^(" + "|".join(re.escape(p) for p in ID_PREFIXES) + r")<(\d+)>$")
RAW_ID = re.compile("^(" + "|".join(re.escape(p) for p in ID_PREFIXES) + ")[0-9a-f]{8,}$")


def _corpus() -> Any:
    path = ROOT / "scripts" / "vllm_oracle" / "corpus.py"
    spec = importlib.util.spec_from_file_location("vllm_oracle_corpus", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _answers(kind: str, case: dict[str, Any]) -> list[dict[str, Any]]:
    if "skipped" in case:
        return []
    if kind == "responses":
        return [case["non_streaming"], case["streaming"]]
    return [case["answer"]]


def _documents(answer: dict[str, Any]) -> list[Any]:
    """The normalised parts of an answer: its body, or its list of events."""
    return [answer[key] for key in ("body", "events") if key in answer]


def _strings(value: Any) -> list[str]:
    """Every string in `value`, object keys in sorted order (normalise's order)."""
    if isinstance(value, dict):
        return [s for key in sorted(value) for s in _strings(value[key])]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return [value] if isinstance(value, str) else []


@pytest.mark.parametrize(("version", "kind"), FILES)
def test_a_fixture_file_names_its_kind_version_and_packages(version: str, kind: str) -> None:
    doc = document(version, kind)
    assert (doc["kind"], doc["vllm"]) == (kind, version)
    assert doc["captured_with"]["packages"]["vllm"] == version
    assert "--tool-call-parser openai" in doc["captured_with"]["server_flags"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_version_has_the_corpus_cases_in_corpus_order(kind: str) -> None:
    expected = [case["id"] for case in _corpus().CORPUS[kind]]
    assert len(set(expected)) == len(expected)
    for version in VERSIONS:
        assert [case["id"] for case in document(version, kind)["cases"]] == expected


def test_skipped_cases_say_why_and_are_the_ones_the_corpus_limits() -> None:
    corpus = _corpus()
    for version in VERSIONS:
        for kind in KINDS:
            for case in corpus.CORPUS[kind]:
                recorded = load(version, kind)[case["id"]]
                limited = "only" in case and version not in case["only"]
                assert ("skipped" in recorded) == limited, (version, case["id"])
                if limited:
                    assert recorded == {"id": case["id"], "skipped": case["why"]}


@pytest.mark.parametrize("version", VERSIONS)
def test_render_cases_hold_the_prompt_vllm_sent_to_the_engine(version: str) -> None:
    for case_id, case in load(version, "render").items():
        assert case["api"] in ("responses", "chat"), case_id
        assert case["request"]["model"] == "openai/gpt-oss-20b"
        if case["answer"]["status"] != 200:
            assert "error" in case["answer"]["body"], case_id
            assert "prompt_token_ids" not in case
            continue
        ids = case["prompt_token_ids"]
        assert ids and all(isinstance(i, int) for i in ids), case_id
        text = case["prompt_text"]
        assert text.startswith("<|start|>system<|message|>"), case_id
        assert text.endswith("<|start|>assistant"), case_id
        assert "Current date: 2026-01-01" in text
        assert set(case["sampling_params"]) >= {"max_tokens", "structured_outputs"}
        assert case["sampling_params"]["max_tokens"] == 131072 - len(ids)


@pytest.mark.parametrize("version", VERSIONS)
def test_response_cases_hold_both_answers_to_one_generation(version: str) -> None:
    for case_id, case in load(version, "responses").items():
        generated = case["generated"]
        cut = "cut_after" in case
        assert generated["finish_reason"] == ("length" if cut else "stop"), case_id
        if cut:
            assert generated["text"] == case["cut_after"]
        assert all(isinstance(i, int) for i in generated["token_ids"])
        assert case["streaming_request"] == {**case["request"], "stream": True} | {
            k: v for k, v in case["streaming_request"].items() if k == "stream_options"
        }
        for answer in (case["non_streaming"], case["streaming"]):
            assert isinstance(answer["status"], int)
            assert ("events" in answer) == answer["content_type"].startswith("text/event-stream")
            assert ("events" in answer) or ("body" in answer), case_id


@pytest.mark.parametrize("version", VERSIONS)
def test_streams_are_whole_event_lists(version: str) -> None:
    for case_id, case in load(version, "responses").items():
        events = case["streaming"].get("events")
        if events is None:
            continue
        if case["api"] == "chat":
            assert events[-1] == {"data": "[DONE]"}, case_id
            assert all(set(e) == {"data"} and isinstance(e["data"], dict) for e in events[:-1])
        else:
            assert all(e["data"]["type"] == e["event"] for e in events), case_id
            numbers = [e["data"]["sequence_number"] for e in events]
            assert numbers == list(range(len(events))), case_id
            assert events[0]["event"] == "response.created"


@pytest.mark.parametrize("version", VERSIONS)
def test_error_and_endpoint_cases_hold_a_request_and_an_answer(version: str) -> None:
    for kind in ("errors", "endpoints"):
        for case_id, case in load(version, kind).items():
            if "skipped" in case:
                continue
            assert case["request"]["method"] in ("GET", "POST"), case_id
            assert case["request"]["path"].startswith("/"), case_id
            assert isinstance(case["answer"]["status"], int)
            assert ("body" in case["answer"]) != ("text" in case["answer"]), case_id
    refused = [c for c in load(version, "errors").values() if c.get("answer", {}).get("status")]
    assert sum(c["answer"]["status"] >= 400 for c in refused) >= 25
    endpoints = load(version, "endpoints")
    assert endpoints["version"]["answer"]["body"] == {"version": version}
    cards = endpoints["models"]["answer"]["body"]["data"]
    assert [card["id"] for card in cards] == ["openai/gpt-oss-20b", "gpt-oss"]


@pytest.mark.parametrize(("version", "kind"), FILES)
def test_answers_are_normalised(version: str, kind: str) -> None:
    for case in document(version, kind)["cases"]:
        for answer in _answers(kind, case):
            for doc in _documents(answer):
                assert normalise(doc) == doc, case["id"]
                assert not [s for s in _strings(doc) if RAW_ID.match(s)], case["id"]


@pytest.mark.parametrize(("version", "kind"), FILES)
def test_placeholders_are_numbered_by_first_appearance_per_document(
    version: str, kind: str
) -> None:
    for case in document(version, kind)["cases"]:
        for answer in _answers(kind, case):
            for doc in _documents(answer):
                seen: dict[str, list[int]] = {}
                for text in _strings(doc):
                    match = PLACEHOLDER.match(text)
                    if match is None:
                        continue
                    numbers = seen.setdefault(match.group(1), [])
                    number = int(match.group(2))
                    if number not in numbers:
                        assert number == len(numbers) + 1, (case["id"], text)
                        numbers.append(number)


def test_ids_of_every_kind_occur_in_the_fixtures() -> None:
    found = {
        match.group(1)
        for version in VERSIONS
        for kind in KINDS
        for case in document(version, kind)["cases"]
        for answer in _answers(kind, case)
        for doc in _documents(answer)
        for text in _strings(doc)
        if (match := PLACEHOLDER.match(text))
    }
    # mcp_ and ws_ need built-in tools or MCP servers, which the corpus does not configure.
    assert found == set(ID_PREFIXES) - {"mcp_", "ws_"}


@pytest.mark.parametrize(("version", "kind"), FILES)
def test_fixture_files_are_written_canonically(version: str, kind: str) -> None:
    text = path_of(version, kind).read_text(encoding="utf-8")
    assert text.endswith("}\n")

    def check(value: Any) -> None:
        """Keys sorted, but a request's, which keep the order they were sent in."""
        if isinstance(value, dict):
            assert list(value) == sorted(value)
            for key, item in value.items():
                if key != "request":
                    check(item)
        elif isinstance(value, list):
            for item in value:
                check(item)

    check(json.loads(text))


def test_normalise_replaces_generated_ids_times_and_the_fingerprint() -> None:
    body = {
        "id": "chatcmpl-0123456789abcdef",
        "created": 1767225600,
        "system_fingerprint": "vllm-0.33.0-tp2-89abcdef",
        "choices": [
            {"tool_calls": [{"id": "chatcmpl-tool-aaaaaaaaaaaaaaaa"}, {"id": "call_1"}]},
            {"tool_calls": [{"id": "chatcmpl-tool-bbbbbbbbbbbbbbbb"}]},
        ],
        "output": [{"id": "fc_cccccccccccccccc"}, {"id": "fc_cccccccccccccccc"}],
        "enabled": True,
    }
    assert normalise(body) == {
        "choices": [
            {"tool_calls": [{"id": "chatcmpl-tool-<1>"}, {"id": "call_1"}]},
            {"tool_calls": [{"id": "chatcmpl-tool-<2>"}]},
        ],
        "created": 0,
        "enabled": True,
        "id": "chatcmpl-<1>",
        "output": [{"id": "fc_<1>"}, {"id": "fc_<1>"}],
        "system_fingerprint": "vllm-0.33.0-<fingerprint>",
    }
    assert body["created"] == 1767225600  # not modified in place


def test_the_fixture_readme_documents_the_normalisation_tests_use() -> None:
    readme = (FIXTURES / "README.md").read_text(encoding="utf-8")
    assert "tests/vllm_fixtures.py" in readme
    assert "scripts/vllm_oracle/normalise.py" in readme
    assert "from tests.vllm_fixtures import load, normalise" in readme
    for prefix in ID_PREFIXES:
        assert f"`{prefix}`" in readme, prefix
    for key in TIMESTAMP_KEYS:
        assert f"`{key}`" in readme, key
    assert "`system_fingerprint" in readme
    assert "sorted" in readme
