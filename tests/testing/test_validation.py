"""Requests the mock refuses, with vLLM's status codes and error envelopes."""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import pytest
from openai import OpenAI

from agent_runtime.testing import VLLM_0_22, MockVLLM, Reply

FUNCTION_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CHAT_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather.",
        "parameters": {"type": "object", "properties": {}},
    },
}


@pytest.fixture(scope="module")
def mock() -> Any:
    with MockVLLM(default=Reply(final="ok"), api_key=None) as server:
        yield server


def error_of(response: httpx2.Response) -> tuple[int, str, str | None, str]:
    error = response.json()["error"]
    assert error["code"] == response.status_code
    return response.status_code, error["type"], error["param"], error["message"]


def responses(mock: MockVLLM, body: Any) -> httpx2.Response:
    return httpx2.post(f"{mock.url}/responses", json=body)


def chat(mock: MockVLLM, body: Any) -> httpx2.Response:
    return httpx2.post(f"{mock.url}/chat/completions", json=body)


@pytest.fixture(scope="module")
def mock_0_22() -> Any:
    with MockVLLM(default=Reply(final="ok"), api_key=None, profile=VLLM_0_22) as server:
        yield server


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"input": [{"type": "item_reference", "id": "x"}]},
            (
                400,
                "invalid_request_error",
                "input",
                "Unknown input type: item_reference (parameter=input)",
            ),
            id="unknown-input-item",
        ),
        pytest.param(
            {"input": [{"type": "function_call_output", "call_id": "call_abc", "output": "1"}]},
            (
                400,
                "invalid_request_error",
                "input",
                "No call message found for call_abc (parameter=input)",
            ),
            id="orphan-function-call-output",
        ),
        pytest.param(
            {"input": "x", "reasoning": {"effort": "minimal"}},
            (
                400,
                "BadRequestError",
                "reasoning_effort",
                "reasoning_effort='minimal' is not supported by Harmony. "
                "Supported values are: high, medium, low. (parameter=reasoning_effort)",
            ),
            id="effort-minimal",
        ),
        pytest.param(
            {"input": "x", "model": "gpt-4o"},
            (
                404,
                "NotFoundError",
                "model",
                "The model `gpt-4o` does not exist. Valid aliases: openai/gpt-oss-20b.",
            ),
            id="unknown-model",
        ),
        pytest.param(
            {"input": "x", "previous_response_id": "resp_123"},
            (404, "invalid_request_error", "response_id", "Response with id 'resp_123' not found."),
            id="previous-response-id",
        ),
        pytest.param(
            {"input": "x", "include": ["message.output_text.logprobs"]},
            (
                400,
                "invalid_request_error",
                "logprobs",
                "logprobs are not supported with gpt-oss models",
            ),
            id="logprobs",
        ),
        pytest.param(
            {"input": "x", "tools": [FUNCTION_TOOL, {"type": "mcp", "server_label": "s"}]},
            (
                400,
                "BadRequestError",
                "tools",
                "tool type 'mcp' is not supported. (parameter=tools)",
            ),
            id="mcp-with-function-tools",
        ),
        pytest.param(
            {
                "input": [
                    {
                        "role": "user",
                        "content": [{"type": "input_image", "image_url": "u", "detail": "auto"}],
                    }
                ]
            },
            (500, "InternalServerError", None, "'text'"),
            id="image-part",
        ),
        pytest.param(
            [{"input": "x"}],
            (500, "InternalServerError", None, "'list' object has no attribute 'get'"),
            id="array-body",
        ),
    ],
)
def test_responses_refusals(mock: MockVLLM, body: Any, expected: tuple[Any, ...]) -> None:
    assert error_of(responses(mock, body)) == expected


@pytest.mark.parametrize(
    "tool_choice",
    [
        pytest.param("required", id="required"),
        pytest.param({"type": "function", "name": "get_weather"}, id="named"),
    ],
)
def test_forced_tool_choice(mock: MockVLLM, mock_0_22: MockVLLM, tool_choice: Any) -> None:
    body = {"input": "x", "tools": [FUNCTION_TOOL], "tool_choice": tool_choice}
    assert responses(mock, body).status_code == 200
    assert error_of(responses(mock_0_22, body)) == (
        501,
        "NotImplementedError",
        None,
        "Only 'auto' or 'none' tool_choice is supported in response API with Harmony",
    )


@pytest.mark.parametrize(
    ("body", "param", "line"),
    [
        pytest.param(
            {},
            "body.input",
            "{'type': 'missing', 'loc': 'body.input', 'msg': 'Field required', "
            "'input': '<dict of 1 items>'}",
            id="no-input",
        ),
        pytest.param(
            {"input": "x", "reasoning": {"effort": "bogus"}},
            "body.reasoning.effort",
            "{'type': 'literal_error', 'loc': 'body.reasoning.effort', 'msg': \"Input should be ",
            id="effort-not-a-responses-value",
        ),
        pytest.param(
            {"input": "x", "temperature": "hot"},
            "body.temperature",
            "{'type': 'float_parsing', 'loc': 'body.temperature', 'msg': 'Input should be a "
            "valid number, unable to parse string as a number', 'input': 'hot'}",
            id="wrong-type",
        ),
    ],
)
def test_responses_schema_errors(
    mock: MockVLLM, body: dict[str, Any], param: str, line: str
) -> None:
    status, kind, got_param, message = error_of(responses(mock, body))
    assert (status, kind, got_param) == (400, "Bad Request", param)
    assert message.startswith(f"1 validation error:\n  {line}")


def test_item_errors_are_counted_and_cut_at_ten(mock: MockVLLM) -> None:
    """Every member of openai's input item union reports its errors; vLLM 0.33 lists ten."""
    body = {"input": [{"type": "bogus"}]}
    status, kind, param, message = error_of(responses(mock, body))
    assert (status, kind, param) == (400, "Bad Request", "body.input")
    lines = message.split("\n")
    assert lines[0] == "237 validation errors:"
    assert lines[2] == (
        "  {'type': 'missing', 'loc': 'body.input.0.EasyInputMessageParam.content', "
        "'msg': 'Field required', 'input': '<dict of 1 items>'}"
    )
    assert lines[11:] == ["  ...and 227 more errors"]


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        pytest.param(
            {"input": "x", "tool_choice": "required"},
            "tool_choice",
            "Tool choice 'required' must be specified with 'tools' parameter. "
            "(parameter=tool_choice)",
            id="required-without-tools",
        ),
        pytest.param(
            {
                "input": "x",
                "tools": [FUNCTION_TOOL],
                "tool_choice": {"type": "function", "name": "f"},
            },
            "tool_choice",
            "Tool choice 'function' not found in 'tools' parameter. (parameter=tool_choice)",
            id="named-not-in-tools",
        ),
        pytest.param(
            {"input": "x", "background": True, "store": False},
            "background",
            "background can only be used when `store` is true (parameter=background)",
            id="background-without-store",
        ),
        pytest.param(
            {"input": "x", "prompt": {"id": "p"}},
            "prompt",
            "prompt template is not supported (parameter=prompt)",
            id="prompt-template",
        ),
    ],
)
def test_responses_validator_errors(
    mock: MockVLLM, body: dict[str, Any], param: str, message: str
) -> None:
    assert error_of(responses(mock, body)) == (400, "BadRequestError", param, message)


def test_validation_errors_of_0_22_list_the_endpoint(mock_0_22: MockVLLM) -> None:
    """vLLM 0.22 writes FastAPI's text (with the endpoint's file) and the error list."""
    error = (
        "{'type': 'value_error', 'loc': ('body',), 'msg': 'Value error, prompt template is not "
        "supported (parameter=prompt)', 'input': {'input': 'x', 'prompt': {'id': 'p'}, "
        "'tool_choice': 'none'}, 'ctx': {'error': VLLMValidationError('prompt template is not "
        "supported')}}"
    )
    body = {"input": "x", "prompt": {"id": "p"}}
    assert error_of(responses(mock_0_22, body)) == (
        400,
        "Bad Request",
        "prompt",
        f"1 validation error:\n  {error}\n\n"
        '  File "<site-packages>/vllm/entrypoints/utils.py", line 48, in create_responses\n'
        f"    POST /v1/responses [{error}]",
    )
    status, kind, param, message = error_of(chat(mock_0_22, {"messages": "x"}))
    assert (status, kind, param) == (400, "Bad Request", None)
    assert "'loc': ('body', 'messages'), 'msg': 'Input should be a valid list'" in message
    assert "in create_chat_completion\n    POST /v1/chat/completions [{" in message


def test_function_tool_without_description(mock: MockVLLM, mock_0_22: MockVLLM) -> None:
    tool = {k: v for k, v in FUNCTION_TOOL.items() if k != "description"}
    body = {"input": "x", "tools": [tool]}
    chat_body = {
        "messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
    }
    assert responses(mock, body).status_code == 200
    assert chat(mock, chat_body).status_code == 200
    for answer in (responses(mock_0_22, body), chat(mock_0_22, chat_body)):
        status, kind, _, message = error_of(answer)
        assert (status, kind) == (400, "BadRequestError")
        assert message.startswith("1 validation error for ToolDescription\ndescription\n")


def test_function_output_that_is_not_text(mock: MockVLLM) -> None:
    """harmony's `Message` takes text only: a list of parts fails its own validation."""
    body = {
        "input": [
            {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            {
                "type": "function_call_output",
                "call_id": "c",
                "output": [{"type": "input_text", "text": "x"}],
            },
        ]
    }
    status, kind, param, message = error_of(responses(mock, body))
    assert (status, kind, param) == (400, "invalid_request_error", "input")
    assert message.startswith(
        "1 validation error for Message\ncontent.0\n  Input should be a valid dictionary or "
        "instance of Content [type=model_type, input_value=[{'text': 'x', 'type': 'input_text'}]"
    )


def test_background_with_store_off(mock: MockVLLM) -> None:
    status, kind, param, message = error_of(responses(mock, {"input": "x", "background": True}))
    assert (status, kind, param) == (400, "invalid_request_error", "background")
    assert "VLLM_ENABLE_RESPONSES_API_STORE=1" in message


def test_malformed_json(mock: MockVLLM) -> None:
    response = httpx2.post(
        f"{mock.url}/responses",
        content=b'{"input": "x",,}',
        headers={"content-type": "application/json"},
    )
    status, kind, param, message = error_of(response)
    assert (status, kind, param) == (400, "Bad Request", "body.14")
    assert "'type': 'json_invalid', 'loc': 'body.14', 'msg': 'JSON decode error'" in message
    assert "Expecting property name enclosed in double quotes" in message


def test_empty_body(mock: MockVLLM) -> None:
    response = httpx2.post(
        f"{mock.url}/responses", content=b"", headers={"content-type": "application/json"}
    )
    status, _, param, message = error_of(response)
    assert (status, param) == (400, "body")
    assert "'loc': 'body', 'msg': 'Field required', 'input': 'None'" in message


def test_non_json_content_type(mock: MockVLLM, mock_0_22: MockVLLM) -> None:
    problem = "Unsupported Media Type: Only 'application/json' is allowed"
    response = httpx2.post(f"{mock.url}/responses", content=b"input=x")
    assert error_of(response) == (400, "Bad Request", None, f"1 validation error:\n  {problem}")
    response = httpx2.post(f"{mock_0_22.url}/responses", content=b"input=x")
    assert error_of(response) == (
        400,
        "Bad Request",
        None,
        f'1 validation error:\n  {problem} ["{problem}"]',
    )


def test_prompt_longer_than_context() -> None:
    with MockVLLM(default=Reply(final="ok"), max_model_len=50) as mock:
        status, kind, param, message = error_of(responses(mock, {"input": "word " * 100}))
        assert (status, kind, param) == (400, "invalid_request_error", "input")
        assert message.endswith("exceeds the max_model_len 50. Please reduce prompt.")
        status, kind, _, message = error_of(
            chat(mock, {"messages": [{"role": "user", "content": "word " * 100}]})
        )
        assert (status, kind) == (400, "BadRequestError")
        assert message.endswith("exceeds model's maximum context length (50).")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            {"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "none"},
            (
                400,
                "BadRequestError",
                "reasoning_effort",
                "Harmony does not support reasoning_effort='none' (parameter=reasoning_effort)",
            ),
            id="effort-none",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "xhigh"},
            (
                400,
                "BadRequestError",
                "reasoning_effort",
                "reasoning_effort='xhigh' is not supported by Harmony. "
                "Supported values are: high, medium, low. (parameter=reasoning_effort)",
            ),
            id="effort-xhigh",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "x"}], "model": "llama"},
            (
                404,
                "NotFoundError",
                "model",
                "The model `llama` does not exist. Valid aliases: openai/gpt-oss-20b.",
            ),
            id="unknown-model",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "x"}], "tools": []},
            (
                400,
                "BadRequestError",
                "tools",
                "`tools` must not be an empty array. Either provide at least one tool or omit the "
                "field entirely. (parameter=tools)",
            ),
            id="empty-tools",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"},
            (
                400,
                "BadRequestError",
                "tool_choice",
                "When using `tool_choice`, `tools` must be set. (parameter=tool_choice)",
            ),
            id="tool-choice-without-tools",
        ),
        pytest.param(
            {
                "messages": [{"role": "user", "content": "x"}],
                "tools": [CHAT_TOOL],
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
            (
                400,
                "BadRequestError",
                "tool_choice",
                "The tool specified in `tool_choice` does not match any of the specified `tools` "
                "(parameter=tool_choice)",
            ),
            id="named-choice-not-in-tools",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "x"}], "stream_options": {}},
            (
                400,
                "BadRequestError",
                "stream_options",
                "Stream options can only be defined when `stream=True`. (parameter=stream_options)",
            ),
            id="stream-options-without-stream",
        ),
    ],
)
def test_chat_refusals(mock: MockVLLM, body: Any, expected: tuple[Any, ...]) -> None:
    assert error_of(chat(mock, body)) == expected


@pytest.mark.parametrize(
    ("body", "param", "line"),
    [
        pytest.param(
            {"messages": [{"role": "user", "content": "x"}], "stream": True, "stream_options": []},
            "body.stream_options",
            "{'type': 'model_type', 'loc': 'body.stream_options', 'msg': 'Input should be a "
            "valid dictionary or instance of StreamOptions', 'input': '<list of 0 items>', "
            "'ctx': {'class_name': 'StreamOptions'}}",
            id="stream-options-not-a-mapping",
        ),
        pytest.param(
            {},
            "body.messages",
            "{'type': 'missing', 'loc': 'body.messages', 'msg': 'Field required', "
            "'input': '<dict of 0 items>'}",
            id="no-messages",
        ),
        pytest.param(
            {"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "bogus"},
            "body.reasoning_effort",
            "{'type': 'literal_error', 'loc': 'body.reasoning_effort', 'msg': \"Input should be "
            "'none', 'minimal', 'low', 'medium', 'high', 'xhigh' or 'max'\", 'input': 'bogus', "
            "'ctx': {'expected': \"'none', 'minimal', 'low', 'medium', 'high', 'xhigh' or "
            "'max'\"}}",
            id="effort-not-a-chat-value",
        ),
    ],
)
def test_chat_schema_errors(mock: MockVLLM, body: dict[str, Any], param: str, line: str) -> None:
    assert error_of(chat(mock, body)) == (
        400,
        "Bad Request",
        param,
        f"1 validation error:\n  {line}",
    )


def test_chat_errors_of_0_22_name_no_parameter(mock_0_22: MockVLLM) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "tool_choice": "auto"}
    status, kind, param, message = error_of(chat(mock_0_22, body))
    assert (status, kind, param) == (400, "Bad Request", None)
    assert "'ctx': {'error': ValueError('When using `tool_choice`, `tools` must be set.')}" in (
        message
    )
    body = {"messages": [{"role": "user", "content": "x"}], "model": "llama"}
    assert error_of(chat(mock_0_22, body)) == (
        404,
        "NotFoundError",
        "model",
        "The model `llama` does not exist.",
    )


def test_tool_choice_none_without_tools_is_fine_on_chat(mock: MockVLLM) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "tool_choice": "none"}
    assert chat(mock, body).status_code == 200


def test_api_key_guards_v1_but_not_health() -> None:
    with MockVLLM(default=Reply(final="ok"), api_key="sekret") as mock:
        assert httpx2.get(f"{mock.root_url}/health").status_code == 200
        assert httpx2.get(f"{mock.root_url}/version").status_code == 200
        denied = httpx2.post(f"{mock.url}/responses", json={"input": "x"})
        assert (denied.status_code, denied.json()) == (401, {"error": "Unauthorized"})
        unknown = httpx2.get(f"{mock.url}/nope")
        assert unknown.status_code == 401
        with (
            OpenAI(base_url=mock.url, api_key="wrong", max_retries=0) as client,
            pytest.raises(openai.AuthenticationError),
        ):
            client.responses.create(model="openai/gpt-oss-20b", input="x")
        with OpenAI(base_url=mock.url, api_key="sekret") as client:
            assert (
                client.responses.create(model="openai/gpt-oss-20b", input="x").output_text == "ok"
            )


def test_other_endpoints() -> None:
    with MockVLLM(
        model="/models/gpt-oss-20b",
        served_model_names=["openai/gpt-oss-20b", "gpt-oss"],
        default=Reply(final="ok"),
    ) as mock:
        health = httpx2.get(f"{mock.root_url}/health")
        assert (health.status_code, health.content) == (200, b"")
        assert httpx2.get(f"{mock.root_url}/version").json() == {"version": "0.33.0"}
        models = httpx2.get(f"{mock.url}/models").json()
        assert [m["id"] for m in models["data"]] == ["openai/gpt-oss-20b", "gpt-oss"]
        assert {m["root"] for m in models["data"]} == {"/models/gpt-oss-20b"}
        assert models["data"][0]["max_model_len"] == 131072
        assert models["data"][0]["permission"][0]["object"] == "model_permission"
        # Every served name is accepted; answers report the first.
        answer = responses(mock, {"input": "x", "model": "gpt-oss"}).json()
        assert answer["model"] == "openai/gpt-oss-20b"
        assert httpx2.get(f"{mock.root_url}/nope").json() == {"detail": "Not Found"}
        assert httpx2.get(f"{mock.url}/responses").status_code == 405
        assert httpx2.post(f"{mock.root_url}/health").status_code == 405
