"""`POST /v1/responses` bodies → the conversation vLLM builds from them, with vLLM's validation.

The rules follow vLLM's harmony path (`responses/protocol.py`, `responses/harmony.py`,
`parser/harmony_utils.py`): the body is validated by vLLM's request model
(`request_models.ResponsesBody`), then refused by the serving checks with vLLM's status and
message, in vLLM's order, and each input item becomes a harmony message. What changed between
releases follows the `VLLMProfile`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from agent_runtime.testing.http_error import (
    VLLMHTTPError,
    VLLMValidationError,
    bad_request,
    parameter_error,
)
from agent_runtime.testing.profile import VLLMProfile
from agent_runtime.testing.recording import (
    Api,
    FunctionCallRecord,
    FunctionOutputRecord,
    PromptMessage,
)
from agent_runtime.testing.request import (
    FunctionTool,
    ParsedRequest,
    check_model,
    harmony_effort,
    missing_body,
    tool_description,
)

if TYPE_CHECKING:
    from agent_runtime.testing.request_models import ResponsesBody

__all__ = ["parse_responses_request"]

_BUILTIN_TOOL_TYPES = frozenset({"web_search_preview", "code_interpreter", "container"})


def parse_responses_request(
    body: Any, *, served_models: Sequence[str], profile: VLLMProfile
) -> ParsedRequest:
    """Validate a `POST /v1/responses` body and convert its input as `profile`'s vLLM does."""
    api: Api = "responses"
    if body is None:
        raise missing_body(api, profile)
    if not isinstance(body, dict):
        # vLLM's before-validator calls `data.get(...)` on whatever JSON arrived.
        raise VLLMHTTPError(
            500,
            f"'{type(body).__name__}' object has no attribute 'get'",
            type="InternalServerError",
        )
    from agent_runtime.testing.request_models import validate_body

    valid: ResponsesBody = validate_body(api, body, profile)
    model = check_model(valid.model, served_models, profile)
    _check_serving(valid)
    tools = body.get("tools") or []
    tool_choice = body.get("tool_choice", "auto")
    forced = tool_choice not in ("auto", "none")
    if tools and forced and not profile.responses_forced_tool_choice:
        raise VLLMHTTPError(
            501,
            "Only 'auto' or 'none' tool_choice is supported in response API with Harmony",
            type="NotImplementedError",
        )
    effort = valid.reasoning.effort if valid.reasoning is not None else None
    request = ParsedRequest(
        api=api,
        body=body,
        model=model,
        stream=bool(valid.stream),
        instructions=valid.instructions,
        reasoning_effort=harmony_effort(effort, profile) if effort is not None else None,
        tool_choice=tool_choice if tools else "none",
        max_tokens=valid.max_output_tokens,
        parallel_tool_calls=valid.parallel_tool_calls is not False,
    )
    _responses_tools(tools, request, profile)
    input_ = body["input"]
    items = list(zip(input_, valid.input, strict=True)) if isinstance(input_, list) else []
    try:
        _convert_responses_input(input_, items, request)
    except VLLMValidationError as exc:
        raise _input_error(exc, profile) from None
    return request


def _check_serving(valid: ResponsesBody) -> None:
    """The refusals of vLLM's Responses serving before it reads the input, in its order."""
    if "message.output_text.logprobs" in (valid.include or []):
        raise VLLMHTTPError(
            400,
            "logprobs are not supported with gpt-oss models",
            type="invalid_request_error",
            param="logprobs",
        )
    if valid.background:
        raise VLLMHTTPError(
            400,
            "This vLLM engine does not support `store=True` and therefore does not support "
            "the background mode. To enable these features, set the environment variable "
            "`VLLM_ENABLE_RESPONSES_API_STORE=1` when launching the vLLM server.",
            type="invalid_request_error",
            param="background",
        )
    previous = valid.previous_response_id
    if previous is not None and valid.previous_input_messages is not None:
        raise VLLMHTTPError(
            400,
            "Only one of `previous_input_messages` and `previous_response_id` can be set.",
            type="invalid_request_error",
            param="previous_response_id",
        )
    if previous is not None:
        raise VLLMHTTPError(
            404,
            f"Response with id '{previous}' not found.",
            type="invalid_request_error",
            param="response_id",
        )


def _input_error(exc: VLLMValidationError, profile: VLLMProfile) -> VLLMHTTPError:
    """An input item vLLM cannot convert: vLLM 0.33 answers an `invalid_request_error` about
    `input`, before a plain `BadRequestError`."""
    if profile.error_parameters:
        return VLLMHTTPError(400, str(exc), type="invalid_request_error", param="input")
    return bad_request(exc.message)


def _responses_tools(tools: list[Any], request: ParsedRequest, profile: VLLMProfile) -> None:
    """vLLM builds the developer message when a custom (non built-in) tool is declared."""
    custom = [t for t in tools if t["type"] not in _BUILTIN_TOOL_TYPES and t["type"] != "mcp"]
    if not custom:
        return
    request.developer_message = True
    for tool in tools:
        kind = tool["type"]
        if kind in _BUILTIN_TOOL_TYPES:
            continue
        if kind != "function":
            if profile.error_parameters:
                raise parameter_error(profile, f"tool type {kind!r} is not supported.", "tools")
            raise bad_request(f"tool type {kind} not supported")
        description = tool_description(tool.get("description"), profile)
        request.tools.append(FunctionTool(tool["name"], description, tool.get("parameters")))


def _convert_responses_input(
    input_: str | list[Any], items: Iterable[tuple[Any, Any]], request: ParsedRequest
) -> None:
    """Each input item (as sent, and as validated) → harmony messages.

    Raises:
        VLLMValidationError: an item vLLM cannot convert.
    """
    if isinstance(input_, str):
        request.messages.append(PromptMessage("user", input_))
        return
    calls_by_id: dict[str, str] = {}
    for item, valid in items:
        kind = item.get("type", "message")
        if kind == "message":
            _convert_message_item(item, request)
        elif kind == "reasoning":
            parts = item.get("content")
            if not parts:
                continue  # summary-only reasoning is skipped silently
            text = "\n".join(str(p.get("text", "")) for p in parts if isinstance(p, dict))
            request.messages.append(PromptMessage("assistant", text, "analysis"))
        elif kind == "function_call":
            _convert_function_call(item, request, calls_by_id)
        elif kind == "function_call_output":
            _convert_function_output(item, valid, request, calls_by_id)
        else:
            raise VLLMValidationError(f"Unknown input type: {kind}", parameter="input")


def _convert_function_output(
    item: Mapping[str, Any], valid: Any, request: ParsedRequest, calls_by_id: dict[str, str]
) -> None:
    call_id = item["call_id"]
    name = calls_by_id.get(call_id)
    if name is None:
        raise VLLMValidationError(f"No call message found for {call_id}", parameter="input")
    output = item["output"]
    if not isinstance(output, str):
        # harmony's `Message` takes text only: a list of parts fails its validation.
        from openai_harmony import Message, Role
        from pydantic import ValidationError

        validated: Any = valid["output"] if isinstance(valid, dict) else valid.output
        try:
            Message.from_role_and_content(Role.TOOL, validated)
        except ValidationError as exc:
            raise VLLMValidationError(str(exc)) from None
        output = str(validated)
    request.function_outputs.append(FunctionOutputRecord(name, output, call_id))
    request.messages.append(
        PromptMessage("tool", output, "commentary", recipient="assistant", name=f"functions.{name}")
    )


def _convert_function_call(
    item: Mapping[str, Any], request: ParsedRequest, calls_by_id: dict[str, str]
) -> None:
    name, call_id, arguments = item["name"], item["call_id"], item["arguments"]
    calls_by_id[call_id] = name
    request.function_calls.append(FunctionCallRecord(name, arguments, call_id))
    request.messages.append(
        PromptMessage(
            "assistant", arguments, "commentary", recipient=f"functions.{name}", content_type="json"
        )
    )


def _part_texts(content: str | list[Any]) -> list[str]:
    """Texts of a Responses message's content; a part without text fails like in vLLM."""
    if isinstance(content, str):
        return [content]
    texts = []
    for part in content:
        if not isinstance(part, dict) or "text" not in part:
            raise VLLMHTTPError(500, "'text'", type="InternalServerError")
        texts.append(str(part["text"]))
    return texts


def _convert_message_item(item: Mapping[str, Any], request: ParsedRequest) -> None:
    if "role" not in item:  # an item the request model took for an `item_reference`
        raise VLLMHTTPError(500, "'role'", type="InternalServerError")
    role = item["role"]
    texts = _part_texts(item["content"])
    if role == "user":
        request.messages.append(PromptMessage("user", "".join(texts)))
    elif role == "assistant":
        request.messages.append(PromptMessage("assistant", "".join(texts), "final"))
    else:  # system and developer items: the prompt renderer places them by the vLLM version
        request.messages.append(PromptMessage(role, "".join(texts)))
