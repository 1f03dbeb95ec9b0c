"""The harmony encoding, and prompts rendered as vLLM renders them (`backends.harmony`)."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest

from agent_runtime.backends.harmony import (
    CALL_TOKEN,
    RETURN_TOKEN,
    drop_analysis_before_final,
    load_encoding,
    render_prompt,
)


@pytest.fixture(scope="module")
def encoding() -> Any:
    return load_encoding()


def test_the_harmony_module_is_vllms() -> None:
    """One `openai_harmony` is installed, the one vLLM 0.33 depends on (`openai-harmony` installs
    the same module and renders tool results differently)."""
    assert importlib.metadata.packages_distributions()["openai_harmony"] == ["oss-harmony"]


def test_stop_tokens(encoding: Any) -> None:
    # a set in harmony: its order changes between processes
    assert sorted(encoding.stop_tokens_for_assistant_actions()) == [RETURN_TOKEN, CALL_TOKEN]
    assert encoding.decode_utf8([RETURN_TOKEN, CALL_TOKEN]) == "<|return|><|call|>"


def conversation() -> list[Any]:
    from openai_harmony import Author, Message, Role

    def assistant(text: str, channel: str) -> Any:
        return Message.from_role_and_content(Role.ASSISTANT, text).with_channel(channel)

    return [
        Message.from_role_and_content(Role.USER, "Hi"),
        assistant("old thought", "analysis"),
        assistant("Hello!", "final"),
        Message.from_role_and_content(Role.USER, "Weather?"),
        assistant("Need the tool.", "analysis"),
        assistant('{"city": "Zürich"}', "commentary")
        .with_recipient("functions.get_weather")
        .with_content_type("<|constrain|>json"),
        Message.from_author_and_content(Author.new(Role.TOOL, "functions.get_weather"), "15C")
        .with_channel("commentary")
        .with_recipient("assistant"),
    ]


TAIL = (
    "<|start|>user<|message|>Weather?<|end|>"
    "<|start|>assistant<|channel|>analysis<|message|>Need the tool.<|end|>"
    '<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>{"city": '
    '"Zürich"}<|call|>'
)


def test_vllm_033_prompt(encoding: Any) -> None:
    prompt = encoding.decode_utf8(render_prompt(encoding, conversation()))
    assert prompt == (
        "<|start|>user<|message|>Hi<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Hello!<|end|>"
        + TAIL
        + "<|start|>functions.get_weather<|channel|>commentary to=assistant<|message|>15C<|end|>"
        "<|start|>assistant"
    )


def test_legacy_tool_results_and_no_drop(encoding: Any) -> None:
    prompt = encoding.decode_utf8(
        render_prompt(encoding, conversation(), drop_analysis=False, legacy_tool_results=True)
    )
    assert prompt == (
        "<|start|>user<|message|>Hi<|end|>"
        "<|start|>assistant<|channel|>analysis<|message|>old thought<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Hello!<|end|>"
        + TAIL
        + "<|start|>functions.get_weather to=assistant<|channel|>commentary<|message|>15C<|end|>"
        "<|start|>assistant"
    )


def test_rewritten_headers_are_tokenised_as_the_text_would_be(encoding: Any) -> None:
    tokens = render_prompt(encoding, conversation(), legacy_tool_results=True)
    assert tokens == encoding.encode(encoding.decode_utf8(tokens), allowed_special="all")


def test_the_drop_keeps_what_follows_the_last_final_answer() -> None:
    messages = conversation()
    kept = drop_analysis_before_final(messages)
    assert [m.content[0].text for m in kept] == [
        "Hi",
        "Hello!",
        "Weather?",
        "Need the tool.",
        '{"city": "Zürich"}',
        "15C",
    ]
    assert drop_analysis_before_final(messages[4:]) == messages[4:]  # no final answer: kept
