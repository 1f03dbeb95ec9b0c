"""The `doctor` checks that ask the model for a tool call, and what its answers tell.

`ask_responses` and `ask_chat` offer the model one trivial tool over `/v1/responses` and
`/v1/chat/completions`; `responses_check` and `chat_check` judge each answer, and
`reasoning_check` looks for gpt-oss's reasoning in both. Only the backend's own API is required:
a failure of the other one is a warning whose fix says which backends need it.

The OpenAI client is passed in and its errors imported inside the functions, so that importing
this module costs nothing. Its raw answer is read here, not parsed into the SDK's types: an
answer that is not what vLLM sends (HTML, invalid JSON, an error object with status 200, items
of the wrong shape) becomes a failure that says what came back, never an exception.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from agent_runtime.cli.doctor.checks import Api, Check, Target
from agent_runtime.text import json_problem, kind_of, one_line

if TYPE_CHECKING:
    from collections.abc import Mapping

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
_NOT_VLLM_FIX = (
    "is base_url a vLLM server? A proxy or web server in front of it may answer instead: "
    "point base_url at vLLM itself, and see the vLLM log"
)


class _Raw(Protocol):
    """The SDK's raw answer (`with_raw_response`), as far as it is read here."""

    @property
    def status_code(self) -> int: ...
    @property
    def headers(self) -> Mapping[str, str]: ...
    @property
    def text(self) -> str: ...


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
    where = f"POST {target.path('/responses')}"
    answer = await _ask(
        client.responses.with_raw_response.create(
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
        ),
        where,
        target,
        "output",
    )
    if isinstance(answer, Answer):
        return answer
    calls: list[tuple[str, str]] = []
    texts: list[str] = []
    reasoning = False
    for item in _dicts(answer["output"]):
        if item.get("type") == "function_call":
            calls.append((str(item.get("name")), str(item.get("arguments"))))
        elif item.get("type") == "message":
            texts += [
                part["text"]
                for part in _dicts(item.get("content"))
                if part.get("type") == "output_text" and isinstance(part.get("text"), str)
            ]
        elif item.get("type") == "reasoning":
            reasoning = reasoning or any(part.get("text") for part in _dicts(item.get("content")))
    status = answer.get("status")
    return Answer(
        calls=tuple(calls),
        text="\n".join(texts) if texts else None,
        finish=status if isinstance(status, str) else None,
        reasoning=reasoning,
    )


async def ask_chat(client: AsyncOpenAI, target: Target) -> Answer:
    """Offer the tool over `POST /v1/chat/completions`."""
    where = f"POST {target.path('/chat/completions')}"
    answer = await _ask(
        client.chat.completions.with_raw_response.create(
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
        ),
        where,
        target,
        "choices",
    )
    if isinstance(answer, Answer):
        return answer
    choices = _dicts(answer["choices"])
    if not choices:
        return Answer(failure=(f"{where} → 200: an answer with no choices", _LOG_FIX))
    choice = choices[0]
    message = choice.get("message")
    message = message if isinstance(message, dict) else {}
    calls = tuple(
        (str(call["function"].get("name")), str(call["function"].get("arguments")))
        for call in _dicts(message.get("tool_calls"))
        if isinstance(call.get("function"), dict)
    )
    fields = tuple(name for name in ("reasoning", "reasoning_content") if message.get(name))
    content = message.get("content")
    finish = choice.get("finish_reason")
    return Answer(
        calls=calls,
        text=content if isinstance(content, str) else None,
        finish=finish if isinstance(finish, str) else None,
        reasoning=bool(fields),
        reasoning_fields=fields,
    )


async def _ask(request: Any, where: str, target: Target, items: str) -> dict[str, Any] | Answer:
    """Make `request` (an SDK call for the raw answer) within the time allowed, and read its
    answer: the JSON object with a list under `items`, or an `Answer` that says what failed."""
    from openai import APIError

    try:
        async with asyncio.timeout(target.budget()):
            raw: _Raw = await request
    except TimeoutError:
        return Answer(failure=_too_slow(where, target))
    except APIError as exc:
        return Answer(failure=_api_failure(exc, where, target))
    return _read(raw, where, items)


def _read(raw: _Raw, where: str, items: str) -> dict[str, Any] | Answer:
    """The JSON object of an answer with a list under `items`, or what is wrong with it."""
    status = f"{where} → {raw.status_code}"
    kind = raw.headers.get("content-type", "")
    text = raw.text
    if "json" not in kind.lower():
        what = f"content type {kind!r}" if kind else "no content type"
        return _fails(f"{status} with {what}, not JSON: {_quote(text, 100)}", _NOT_VLLM_FIX)
    try:
        body = json.loads(text)
    except ValueError as exc:
        problem = json_problem(exc) if isinstance(exc, json.JSONDecodeError) else str(exc)
        return _fails(f"{status} with invalid JSON ({problem}): {_quote(text, 100)}", _LOG_FIX)
    if not isinstance(body, dict):
        return _fails(f"{status} with {kind_of(body)}, not a JSON object", _NOT_VLLM_FIX)
    error = body.get("error")
    if error:
        message = error.get("message") if isinstance(error, dict) else error
        shown = message if isinstance(message, str) else json.dumps(error, ensure_ascii=False)
        return _fails(f"{status} with an error: {one_line(shown, 200)}", _LOG_FIX)
    if not isinstance(body.get(items), list):
        return _fails(f"{status} without a list of `{items}`: {_quote(text, 100)}", _NOT_VLLM_FIX)
    return body


def _fails(detail: str, fix: str) -> Answer:
    return Answer(failure=(detail, fix))


def _dicts(value: object) -> list[dict[str, Any]]:
    """The objects in a JSON list (nothing when it is not a list)."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _too_slow(where: str, target: Target) -> tuple[str, str]:
    return (
        f"{where}: {target.late()}",
        "the model may be loading or the GPUs busy: see the vLLM log, or allow more "
        "time with --timeout (each request) and --deadline (the whole command)",
    )


def _api_failure(exc: APIError, where: str, target: Target) -> tuple[str, str]:
    """What went wrong with a model request, and what to do about it."""
    from openai import APIConnectionError, APIStatusError, APITimeoutError

    if isinstance(exc, APITimeoutError):
        return _too_slow(where, target)
    if isinstance(exc, APIConnectionError):
        cause = one_line(str(exc.__cause__ or exc), 200)
        return f"{where}: connection failed ({cause})", "see the vLLM log: did the server stop?"
    if not isinstance(exc, APIStatusError):
        return f"{where}: unexpected answer ({exc})", "is base_url a vLLM server?"
    status = exc.status_code
    body = exc.body
    message = body.get("message") if isinstance(body, dict) else body
    shown = one_line(message if isinstance(message, str) else exc.message, 200)
    detail = f"{where} → {status}: {shown}"
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
    """`text` quoted (control characters escaped), cut to `limit` characters with a `…`."""
    if text is None:
        return "null"
    shown = repr(text[:limit])
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
