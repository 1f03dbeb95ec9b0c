"""The `doctor` checks that ask the model for a tool call, and what its answers tell.

`ask_responses` and `ask_chat` offer the model one trivial tool over `/v1/responses` and
`/v1/chat/completions`; `responses_check` and `chat_check` judge each answer, and
`reasoning_check` looks for gpt-oss's reasoning in both. Only the backend's own API is required:
a failure of the other one is a warning whose fix says which backends need it.

The OpenAI client is passed in and its errors imported inside the functions, so that importing
this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_runtime.cli.doctor.checks import Api, Check, Target

if TYPE_CHECKING:
    from openai import APIError, AsyncOpenAI

__all__ = [
    "Answer",
    "ask_chat",
    "ask_responses",
    "chat_check",
    "reasoning_check",
    "responses_check",
]

TOOL = "get_time"
_DESCRIPTION = "Get the current time."
_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {},
    "required": [],
    "additionalProperties": False,
}
_INSTRUCTIONS = "This is a connectivity check. Call the get_time tool once; do not answer in text."
_PROMPT = "What time is it? Use the get_time tool."
_MAX_TOKENS = 2048
_CHAT_PARSER_FIX = "start vLLM with --tool-call-parser openai --enable-auto-tool-choice"
_REASONING_FIX = (
    "gpt-oss on vLLM always returns its reasoning: start vLLM with --reasoning-parser "
    "openai_gptoss and upgrade vLLM (>= 0.10.2)"
)
_LOG_FIX = "see the vLLM log"


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """What one round trip gave: its calls, text and reasoning, or why there was none."""

    failure: tuple[str, str] | None = None
    calls: tuple[tuple[str, str], ...] = ()
    text: str | None = None
    finish: str | None = None
    reasoning: bool = False
    reasoning_fields: tuple[str, ...] = ()


async def ask_responses(client: AsyncOpenAI, target: Target) -> Answer:
    """Offer the tool over `POST /v1/responses`."""
    from openai import APIError

    try:
        response = await client.responses.create(
            model=target.model,
            instructions=_INSTRUCTIONS,
            input=_PROMPT,
            tools=[
                {
                    "type": "function",
                    "name": TOOL,
                    "description": _DESCRIPTION,
                    "parameters": _PARAMETERS,
                    "strict": True,
                }
            ],
            reasoning={"effort": "low"},
            max_output_tokens=_MAX_TOKENS,
            store=False,
        )
    except APIError as exc:
        where = f"POST {target.path('/responses')}"
        return Answer(failure=_api_failure(exc, where, target))
    calls: list[tuple[str, str]] = []
    texts: list[str] = []
    reasoning = False
    for item in response.output:
        if item.type == "function_call":
            calls.append((item.name, item.arguments))
        elif item.type == "message":
            texts += [part.text for part in item.content if part.type == "output_text"]
        elif item.type == "reasoning":
            reasoning = reasoning or any(part.text for part in item.content or [])
    return Answer(
        calls=tuple(calls),
        text="\n".join(texts) if texts else None,
        finish=response.status,
        reasoning=reasoning,
    )


async def ask_chat(client: AsyncOpenAI, target: Target) -> Answer:
    """Offer the tool over `POST /v1/chat/completions`."""
    from openai import APIError

    try:
        completion = await client.chat.completions.create(
            model=target.model,
            messages=[
                {"role": "system", "content": _INSTRUCTIONS},
                {"role": "user", "content": _PROMPT},
            ],
            tools=[
                {
                    "type": "function",
                    "function": {
                        "name": TOOL,
                        "description": _DESCRIPTION,
                        "parameters": _PARAMETERS,
                    },
                }
            ],
            reasoning_effort="low",
            max_completion_tokens=_MAX_TOKENS,
        )
    except APIError as exc:
        where = f"POST {target.path('/chat/completions')}"
        return Answer(failure=_api_failure(exc, where, target))
    if not completion.choices:
        return Answer(failure=("an answer with no choices", _LOG_FIX))
    choice = completion.choices[0]
    message = choice.message.model_dump()
    calls = tuple(
        (str(call["function"]["name"]), str(call["function"]["arguments"]))
        for call in message.get("tool_calls") or []
        if isinstance(call.get("function"), dict)
    )
    fields = tuple(name for name in ("reasoning", "reasoning_content") if message.get(name))
    return Answer(
        calls=calls,
        text=message.get("content"),
        finish=choice.finish_reason,
        reasoning=bool(fields),
        reasoning_fields=fields,
    )


def _api_failure(exc: APIError, where: str, target: Target) -> tuple[str, str]:
    """What went wrong with a model request, and what to do about it."""
    from openai import APIConnectionError, APIStatusError, APITimeoutError

    if isinstance(exc, APITimeoutError):
        return (
            f"{where}: no answer within {target.timeout_s:g} s",
            "the model may be loading or the GPUs busy: see the vLLM log, or allow more "
            "time with --timeout",
        )
    if isinstance(exc, APIConnectionError):
        cause = exc.__cause__ or exc
        return f"{where}: connection failed ({cause})", "see the vLLM log: did the server stop?"
    if not isinstance(exc, APIStatusError):
        return f"{where}: unexpected answer ({exc})", "is base_url a vLLM server?"
    status = exc.status_code
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else body
    detail = f"{where} → {status}: {message if isinstance(message, str) else exc.message}"
    if status in (401, 403):
        return detail, target.key_fix()
    if status == 404:
        return detail, (
            "a router or proxy in front of vLLM may not pass this endpoint on (vllm#22403): "
            "point base_url at vLLM itself"
        )
    if status == 400:
        return detail, "vLLM refused the request: upgrade vLLM (>= 0.21 is known to work)"
    if status >= 500:
        return detail, (
            "the server failed: see the vLLM log (a HarmonyError there is vllm#23567: retry, "
            "keep vLLM and openai-harmony current)"
        )
    return detail, _LOG_FIX


def _looks_like_call(text: str | None) -> bool:
    """The tool call written out as text (the classic misparse), not made as a call."""
    return text is not None and TOOL in text and "{" in text


def _quote(text: str | None, limit: int = 80) -> str:
    if text is None:
        return "null"
    shown = repr(text)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _calls(calls: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{name}({arguments})" for name, arguments in calls)


def _only_for(api: Api, target: Target, fix: str) -> str:
    if target.api == api:
        return fix
    return f"{fix} (needed only by backends with api: {api})"


def responses_check(answer: Answer, target: Target) -> Check:
    """The responses tool call check: the answer has a function_call item for the tool."""
    return _tool_call_check(
        answer,
        target,
        api="responses",
        made="function_call",
        stray="a function_call to a tool that was not offered",
        written="the answer text",
        written_fix=(
            "the server did not parse the model's tool call: serve gpt-oss on vLLM >= 0.10.2 "
            "(its Responses API parses gpt-oss calls with no extra flags)"
        ),
        no_call=_no_function_call,
    )


def _no_function_call(answer: Answer) -> tuple[str, str]:
    if answer.text is not None:
        return (
            f"no function_call; the model answered in text: {_quote(answer.text)}",
            "gpt-oss calls a tool it is told to call: make sure the server runs gpt-oss, "
            "and run doctor again (a sampled model may skip a call now and then)",
        )
    return (
        f"no function_call and no text (status {answer.finish!r})",
        "the model produced nothing usable: see the vLLM log",
    )


def chat_check(answer: Answer, target: Target) -> Check:
    """The chat tool call check: the message has tool_calls for the tool."""
    return _tool_call_check(
        answer,
        target,
        api="chat_completions",
        made="tool_calls",
        stray="tool_calls for a tool that was not offered",
        written="the content",
        written_fix=_CHAT_PARSER_FIX,
        no_call=_no_tool_calls,
    )


def _no_tool_calls(answer: Answer) -> tuple[str, str]:
    if answer.finish == "stop":
        detail = f"no tool_calls (finish_reason 'stop', content {_quote(answer.text)})"
        return detail, _CHAT_PARSER_FIX
    return (
        f"no tool_calls (finish_reason {answer.finish!r})",
        "the model stopped before calling the tool: see the vLLM log",
    )


def _tool_call_check(
    answer: Answer,
    target: Target,
    *,
    api: Api,
    made: str,
    stray: str,
    written: str,
    written_fix: str,
    no_call: Callable[[Answer], tuple[str, str]],
) -> Check:
    """Judge a tool-call answer of `api`, in the words of that API.

    Args:
        made: what the API calls a call it made (`function_call`, `tool_calls`).
        stray: how a call to a tool that was not offered reads.
        written: where a call written out as text stands, and `written_fix` what to do about it.
        no_call: the detail and fix when there is no call at all, from the rest of the answer.
    """
    name = "responses tool call" if api == "responses" else "chat tool call"
    required = target.required(name)
    if answer.failure is not None:
        detail, fix = answer.failure
    elif any(call == TOOL for call, _ in answer.calls):
        detail = f"{made} {_calls(answer.calls)}"
        return Check(name=name, ok=True, detail=detail, required=required)
    elif answer.calls:
        detail = f"{stray}: {_calls(answer.calls)}"
        fix = "make sure the server runs gpt-oss; upgrade vLLM (>= 0.21 is known to work)"
    elif _looks_like_call(answer.text):
        detail = f"no {made}; the call is in {written}: {_quote(answer.text)}"
        fix = written_fix
    else:
        detail, fix = no_call(answer)
    fix = _only_for(api, target, fix)
    return Check(name=name, ok=False, detail=detail, fix=fix, required=required)


def reasoning_check(target: Target, responses: Answer, chat: Answer) -> Check:
    """Reasoning in both answers; only a problem with the backend's own API is required."""
    seen: list[str] = []
    problems: list[tuple[Api, str]] = []
    if responses.failure is not None:
        seen.append("responses: no answer")
    elif responses.reasoning:
        seen.append("responses: a reasoning item with reasoning_text")
    else:
        seen.append("responses: no reasoning item with reasoning_text")
        problems.append(("responses", _REASONING_FIX))
    legacy = chat.reasoning_fields == ("reasoning_content",)
    if chat.failure is not None:
        seen.append("chat: no answer")
    elif not chat.reasoning:
        seen.append("chat: no reasoning in the message")
        problems.append(("chat_completions", _REASONING_FIX))
    elif legacy:
        seen.append("chat: message.reasoning_content (vLLM < 0.11.1)")
        if target.reasoning_field != "reasoning_content":
            problems.append(
                (
                    "chat_completions",
                    f"set `reasoning_field: reasoning_content` on backend '{target.name}' "
                    "so reasoning goes back where this vLLM reads it, or upgrade vLLM",
                )
            )
    else:
        seen.append("chat: message.reasoning")
        if "reasoning_content" not in chat.reasoning_fields and (
            target.reasoning_field == "reasoning_content"
        ):
            problems.append(
                (
                    "chat_completions",
                    f"remove `reasoning_field: reasoning_content` from backend '{target.name}': "
                    "this vLLM reads `reasoning`",
                )
            )
    detail = "; ".join(seen)
    if responses.failure is not None and chat.failure is not None:
        return Check(name="reasoning", ok=None, detail="not run: no answer to look at")
    if not problems:
        return Check(name="reasoning", ok=True, detail=detail)
    apis: dict[str, set[Api]] = {}
    for api, fix in problems:
        apis.setdefault(fix, set()).add(api)
    fixes = [
        fix if target.api in where else _only_for(next(iter(where)), target, fix)
        for fix, where in apis.items()
    ]
    required = any(api == target.api for api, _ in problems)
    return Check(name="reasoning", ok=False, detail=detail, fix="; ".join(fixes), required=required)
