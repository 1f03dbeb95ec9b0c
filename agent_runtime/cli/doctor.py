"""`agent-runtime doctor`: check a live model server and say what to fix.

Each backend of agents.yaml goes through six checks, in order: reachable, health, model,
responses tool call, chat tool call, reasoning. A check passes (✓), fails (✗), warns (!: it
failed, but the backend does not depend on it) or is not run (-) because an earlier one makes it
pointless (no server, a rejected API key, a model the server does not serve).

The OpenAI client and httpx are imported inside the command, so `agent-runtime --help` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import click

from agent_runtime._yaml import did_you_mean
from agent_runtime.cli.common import (
    EXIT_BACKEND,
    EXIT_ERROR,
    EXIT_USAGE,
    config_option,
    debug_option,
    exit_with,
    handle_errors,
    load,
)
from agent_runtime.cli.run import Overrides, backend_options, configure_logging
from agent_runtime.config import Config

if TYPE_CHECKING:
    import httpx
    from openai import APIError, AsyncOpenAI

__all__ = ["doctor_command"]

Api = Literal["responses", "chat_completions"]

CHECKS = ("reachable", "health", "model", "responses tool call", "chat tool call", "reasoning")

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
_SERVE_FLAGS = (
    "--tool-call-parser openai --enable-auto-tool-choice --reasoning-parser openai_gptoss"
)
_CHAT_PARSER_FIX = "start vLLM with --tool-call-parser openai --enable-auto-tool-choice"
_REASONING_FIX = (
    "gpt-oss on vLLM always returns its reasoning: start vLLM with --reasoning-parser "
    "openai_gptoss and upgrade vLLM (>= 0.10.2)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """The outcome of one check.

    Attributes:
        name: one of `CHECKS`.
        ok: True passed, False failed, None not run.
        detail: what was seen (or why the check was not run).
        fix: what to do about a failure.
        required: whether a failure fails the command (False: a warning).
        blocks: set when the later checks cannot run; says why.
    """

    name: str
    ok: bool | None
    detail: str
    fix: str | None = None
    required: bool = True
    blocks: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The check as JSON: name, ok, required, detail, fix."""
        return {
            "name": self.name,
            "ok": self.ok,
            "required": self.required,
            "detail": self.detail,
            "fix": self.fix,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class _Target:
    """A backend with the command-line overrides applied."""

    name: str
    kind: str
    api: Api
    base_url: str
    model: str
    api_key: str
    headers: Mapping[str, str]
    reasoning_field: str
    source: str
    timeout_s: float

    @property
    def root(self) -> str:
        """The server root (vLLM serves `/health` there, not under `/v1`)."""
        return self.base_url.rstrip("/").removesuffix("/v1")

    def path(self, suffix: str) -> str:
        """`suffix` under base_url, as a path for messages (`/v1/models`)."""
        return urlsplit(self.base_url).path.rstrip("/") + suffix

    def required(self, check: str) -> bool:
        """Whether a failure of `check` fails the command for this backend."""
        if check == "health":
            return self.kind == "vllm"
        if check == "responses tool call":
            return self.api == "responses"
        if check == "chat tool call":
            return self.api == "chat_completions"
        return True

    def base_url_fix(self) -> str:
        base = self.base_url.rstrip("/")
        if not base.endswith("/v1"):
            return (
                f"set `base_url:` of backend '{self.name}' to {base}/v1 "
                "(vLLM serves the API under /v1)"
            )
        return "point `base_url:` at vLLM's root URL plus /v1, e.g. http://localhost:8000/v1"

    def serve_command(self) -> str:
        if self.model.startswith("openai/gpt-oss-"):
            return f"vllm serve {self.model} {_SERVE_FLAGS}"
        return f"vllm serve openai/gpt-oss-20b --served-model-name {self.model} {_SERVE_FLAGS}"

    def key_fix(self) -> str:
        return (
            f"set `api_key:` of backend '{self.name}' in {self.source} (or pass --api-key) to a "
            "key vLLM was started with (vllm serve ... --api-key KEY)"
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Answer:
    """What one round trip gave: its calls, text and reasoning, or why there was none."""

    failure: tuple[str, str] | None = None
    calls: tuple[tuple[str, str], ...] = ()
    text: str | None = None
    finish: str | None = None
    reasoning: bool = False
    reasoning_fields: tuple[str, ...] = ()


@click.command(name="doctor")
@config_option
@click.option(
    "--backend", "backend", metavar="NAME", help="Check only this backend (default: every one)."
)
@backend_options
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    metavar="SECONDS",
    help="Timeout of each request (real models can be slow).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object with every check.")
@debug_option
def doctor_command(
    config_path: Path,
    backend: str | None,
    base_url: str | None,
    model: str | None,
    api_key: str | None,
    timeout: float,
    as_json: bool,
    debug: bool,
) -> None:
    """Check a live model server and say what to fix.

    For each backend in agents.yaml (or only --backend NAME) it checks, in order:

    \b
      reachable            the server accepts connections at base_url
      health               GET /health (at the server root) answers 200
      model                GET /v1/models lists the backend's model
      responses tool call  POST /v1/responses with a trivial tool gives a function_call
      chat tool call       POST /v1/chat/completions with that tool gives tool_calls
      reasoning            the answers carry gpt-oss's reasoning

    Each line is ✓ passed, ✗ failed, ! warning or - not run; failures and warnings come with
    a fix. Both APIs are tried, but only the tool call of the API the backend uses (`api:`) is
    required: the other one's failure is a warning, since it needs server flags this backend
    does not depend on. When the server is unreachable, rejects the API key or does not serve
    the model, the later checks are not run. Requests are not retried.

    Exit codes: 0 every required check passed; 1 a check failed; 3 a server is unreachable;
    2 bad config or usage.

    \b
    Example:
      agent-runtime doctor --backend local
    """
    configure_logging(debug)
    with handle_errors(debug):
        config = load(config_path)
        overrides = Overrides(base_url=base_url, model=model, api_key=api_key)
        targets = _targets(config, backend, overrides, timeout)
        code = asyncio.run(_doctor(targets, as_json=as_json))
    sys.exit(code)


def _targets(
    config: Config, only: str | None, overrides: Overrides, timeout: float
) -> list[_Target]:
    backends = config.spec.backends
    if only is not None and only not in backends:
        hint = did_you_mean(only, list(backends), quote="'")
        if not hint:
            hint = f" (declared: {', '.join(repr(name) for name in backends)})"
        exit_with(EXIT_USAGE, f"unknown backend {only!r}{hint}")
    return [
        _Target(
            name=name,
            kind=spec.kind,
            api=spec.api,
            base_url=overrides["base_url"] or spec.base_url,
            model=overrides["model"] or spec.model,
            api_key=overrides["api_key"] or spec.api_key.get_secret_value(),
            headers=spec.headers,
            reasoning_field=spec.reasoning_field,
            source=config.source,
            timeout_s=timeout,
        )
        for name, spec in backends.items()
        if only is None or name == only
    ]


async def _doctor(targets: list[_Target], *, as_json: bool) -> int:
    reports: list[tuple[_Target, list[Check]]] = []
    for index, target in enumerate(targets):
        if not as_json:
            if index:
                click.echo()
            click.echo(click.style(_header(target), bold=True))
        checks: list[Check] = []
        async for check in _diagnose(target):
            checks.append(check)
            if not as_json:
                click.echo(_render(check))
        if not as_json:
            click.echo(_summary(checks))
        reports.append((target, checks))
    if as_json:
        click.echo(json.dumps(_report(reports), indent=2, ensure_ascii=False))
    if any(check.name == "reachable" and check.ok is False for _, cs in reports for check in cs):
        return EXIT_BACKEND
    if any(_failed(check) for _, checks in reports for check in checks):
        return EXIT_ERROR
    return 0


def _failed(check: Check) -> bool:
    return check.ok is False and check.required


def _header(target: _Target) -> str:
    return (
        f"Backend '{target.name}' (api: {target.api}, model: {target.model}) at {target.base_url}"
    )


def _render(check: Check) -> str:
    if check.ok:
        mark = click.style(f"✓ {check.name}", fg="green")
    elif check.ok is None:
        mark = click.style(f"- {check.name}", dim=True)
    elif check.required:
        mark = click.style(f"✗ {check.name}", fg="red", bold=True)
    else:
        mark = click.style(f"! {check.name}", fg="yellow")
    line = f"{mark} — {check.detail}"
    if check.ok is False and check.fix:
        line += f"\n  fix: {check.fix}"
    return line


def _summary(checks: list[Check]) -> str:
    failed = sum(_failed(check) for check in checks)
    warned = sum(check.ok is False and not check.required for check in checks)
    skipped = sum(check.ok is None for check in checks)
    if not (failed or warned or skipped):
        return f"All {len(checks)} checks passed."
    parts = [f"{failed} check{'s' if failed != 1 else ''} failed"] if failed else []
    if warned:
        parts.append(f"{warned} warning{'s' if warned != 1 else ''}")
    if skipped:
        parts.append(f"{skipped} not run")
    if not failed:
        return "Required checks passed; " + ", ".join(parts) + "."
    return ", ".join(parts) + "."


def _report(reports: list[tuple[_Target, list[Check]]]) -> dict[str, Any]:
    backends = [
        {
            "backend": target.name,
            "api": target.api,
            "base_url": target.base_url,
            "model": target.model,
            "ok": not any(_failed(check) for check in checks),
            "checks": [check.to_dict() for check in checks],
        }
        for target, checks in reports
    ]
    return {"ok": all(entry["ok"] for entry in backends), "backends": backends}


# -- the checks -----------------------------------------------------------------------------


async def _diagnose(target: _Target) -> AsyncIterator[Check]:
    """Run the checks against one backend's server, yielding each outcome as it is known."""
    import httpx
    from openai import AsyncOpenAI

    headers = {**target.headers, "Authorization": f"Bearer {target.api_key}"}
    async with httpx.AsyncClient(timeout=target.timeout_s, headers=headers) as http:
        reachable, health = await _health(http, target)
        yield reachable
        if reachable.blocks is not None:
            for name in CHECKS[1:]:
                yield _not_run(name, target, reachable.blocks)
            return
        assert health is not None
        yield health
        model = await _model(http, target)
    yield model
    if model.blocks is not None:
        for name in CHECKS[3:]:
            yield _not_run(name, target, model.blocks)
        return
    async with AsyncOpenAI(
        base_url=target.base_url,
        api_key=target.api_key,
        timeout=target.timeout_s,
        max_retries=0,
        default_headers=dict(target.headers) or None,
    ) as client:
        responses = await _ask_responses(client, target)
        yield _responses_check(responses, target)
        chat = await _ask_chat(client, target)
        yield _chat_check(chat, target)
    yield _reasoning_check(target, responses, chat)


def _not_run(name: str, target: _Target, why: str) -> Check:
    return Check(name=name, ok=None, detail=f"not run: {why}", required=target.required(name))


async def _health(http: httpx.AsyncClient, target: _Target) -> tuple[Check, Check | None]:
    import httpx

    where = f"GET {urlsplit(target.root).path}/health"
    try:
        response = await http.get(f"{target.root}/health")
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.UnsupportedProtocol) as exc:
        why = _why(exc, target, "no connection")
        fix = (
            f"start vLLM ({target.serve_command()}), or point backend '{target.name}' at a "
            f"running server (`base_url:` in {target.source}, or --base-url)"
        )
        return Check(
            name="reachable",
            ok=False,
            detail=f"cannot connect to {target.base_url}: {why}",
            fix=fix,
            blocks="server unreachable",
        ), None
    except httpx.HTTPError as exc:
        reachable = Check(name="reachable", ok=True, detail=f"connected to {target.root}")
        fix = "the server accepts connections but does not answer: see its log, restart it"
        detail = f"{where}: {_why(exc, target)}"
        health = Check(
            name="health", ok=False, detail=detail, fix=fix, required=target.required("health")
        )
        return reachable, health
    reachable = Check(name="reachable", ok=True, detail=f"connected to {target.root}")
    required = target.required("health")
    status = response.status_code
    if status == 200:
        return reachable, Check(name="health", ok=True, detail=f"{where} → 200", required=required)
    if status == 404:
        detail = f"{where} → 404: this server has no /health; is it vLLM?"
        fix = target.base_url_fix()
    elif status == 503:
        detail = f"{where} → 503: the engine is not ready or has died"
        fix = "wait until vLLM's log says it is ready; if it stays 503, see the log and restart"
    else:
        detail = f"{where} → {status}"
        fix = "see the server's log"
    return reachable, Check(name="health", ok=False, detail=detail, fix=fix, required=required)


def _why(exc: httpx.HTTPError, target: _Target, timed_out: str = "no answer") -> str:
    """An httpx failure in words; a timeout says how long it waited."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return f"{timed_out} within {target.timeout_s:g} s"
    return str(exc) or type(exc).__name__


async def _model(http: httpx.AsyncClient, target: _Target) -> Check:
    import httpx

    where = f"GET {target.path('/models')}"
    try:
        response = await http.get(target.base_url.rstrip("/") + "/models")
    except httpx.HTTPError as exc:
        return Check(
            name="model",
            ok=False,
            detail=f"{where}: {_why(exc, target)}",
            fix="see the server's log",
            blocks=f"{where} failed",
        )
    status = response.status_code
    if status in (401, 403):
        sent = (
            "the server wants an API key (api_key is EMPTY)"
            if target.api_key == "EMPTY"
            else "the API key was rejected"
        )
        return Check(
            name="model",
            ok=False,
            detail=f"{where} → {status}: {sent}",
            fix=target.key_fix(),
            blocks="the API key was rejected",
        )
    names = _model_names(response) if status == 200 else None
    if names is None:
        what = f"{status}" if status != 200 else "200, but not a list of models"
        return Check(
            name="model",
            ok=False,
            detail=f"{where} → {what}",
            fix=target.base_url_fix(),
            blocks=f"{where} failed",
        )
    if target.model not in names:
        served = ", ".join(repr(name) for name in names) or "nothing"
        return Check(
            name="model",
            ok=False,
            detail=f"{target.model!r} is not served; the server serves {served}",
            fix=(
                f"set `model:` of backend '{target.name}' to {' or '.join(map(repr, names))} "
                f"(or pass --model), or start vLLM with --served-model-name {target.model}"
            ),
            blocks="the model is not served",
        )
    length = names[target.model]
    extra = f" (max_model_len {length})" if length is not None else ""
    return Check(name="model", ok=True, detail=f"{target.model} is served{extra}")


def _model_names(response: httpx.Response) -> dict[str, int | None] | None:
    """Served model name -> its max_model_len, or None when the body is no model list."""
    try:
        body = response.json()
    except ValueError:
        return None
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        return None
    names: dict[str, int | None] = {}
    for entry in data:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            length = entry.get("max_model_len")
            names[entry["id"]] = length if isinstance(length, int) else None
    return names


async def _ask_responses(client: AsyncOpenAI, target: _Target) -> _Answer:
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
        return _Answer(failure=_api_failure(exc, where, target))
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
    return _Answer(
        calls=tuple(calls),
        text="\n".join(texts) if texts else None,
        finish=response.status,
        reasoning=reasoning,
    )


async def _ask_chat(client: AsyncOpenAI, target: _Target) -> _Answer:
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
        return _Answer(failure=_api_failure(exc, where, target))
    if not completion.choices:
        return _Answer(failure=("an answer with no choices", _LOG_FIX))
    choice = completion.choices[0]
    message = choice.message.model_dump()
    calls = tuple(
        (str(call["function"]["name"]), str(call["function"]["arguments"]))
        for call in message.get("tool_calls") or []
        if isinstance(call.get("function"), dict)
    )
    fields = tuple(name for name in ("reasoning", "reasoning_content") if message.get(name))
    return _Answer(
        calls=calls,
        text=message.get("content"),
        finish=choice.finish_reason,
        reasoning=bool(fields),
        reasoning_fields=fields,
    )


_LOG_FIX = "see the vLLM log"


def _api_failure(exc: APIError, where: str, target: _Target) -> tuple[str, str]:
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


def _only_for(api: Api, target: _Target, fix: str) -> str:
    if target.api == api:
        return fix
    return f"{fix} (needed only by backends with api: {api})"


def _responses_check(answer: _Answer, target: _Target) -> Check:
    name = "responses tool call"
    required = target.required(name)
    if answer.failure is not None:
        detail, fix = answer.failure
    elif any(call == TOOL for call, _ in answer.calls):
        detail = f"function_call {_calls(answer.calls)}"
        return Check(name=name, ok=True, detail=detail, required=required)
    elif answer.calls:
        detail = f"a function_call to a tool that was not offered: {_calls(answer.calls)}"
        fix = "make sure the server runs gpt-oss; upgrade vLLM (>= 0.21 is known to work)"
    elif _looks_like_call(answer.text):
        detail = f"no function_call; the call is in the answer text: {_quote(answer.text)}"
        fix = (
            "the server did not parse the model's tool call: serve gpt-oss on vLLM >= 0.10.2 "
            "(its Responses API parses gpt-oss calls with no extra flags)"
        )
    elif answer.text is not None:
        detail = f"no function_call; the model answered in text: {_quote(answer.text)}"
        fix = (
            "gpt-oss calls a tool it is told to call: make sure the server runs gpt-oss, "
            "and run doctor again (a sampled model may skip a call now and then)"
        )
    else:
        detail = f"no function_call and no text (status {answer.finish!r})"
        fix = "the model produced nothing usable: see the vLLM log"
    fix = _only_for("responses", target, fix)
    return Check(name=name, ok=False, detail=detail, fix=fix, required=required)


def _chat_check(answer: _Answer, target: _Target) -> Check:
    name = "chat tool call"
    required = target.required(name)
    if answer.failure is not None:
        detail, fix = answer.failure
    elif any(call == TOOL for call, _ in answer.calls):
        detail = f"tool_calls {_calls(answer.calls)}"
        return Check(name=name, ok=True, detail=detail, required=required)
    elif answer.calls:
        detail = f"tool_calls for a tool that was not offered: {_calls(answer.calls)}"
        fix = "make sure the server runs gpt-oss; upgrade vLLM (>= 0.21 is known to work)"
    elif _looks_like_call(answer.text):
        detail = f"no tool_calls; the call is in the content: {_quote(answer.text)}"
        fix = _CHAT_PARSER_FIX
    elif answer.finish == "stop":
        detail = f"no tool_calls (finish_reason 'stop', content {_quote(answer.text)})"
        fix = _CHAT_PARSER_FIX
    else:
        detail = f"no tool_calls (finish_reason {answer.finish!r})"
        fix = "the model stopped before calling the tool: see the vLLM log"
    fix = _only_for("chat_completions", target, fix)
    return Check(name=name, ok=False, detail=detail, fix=fix, required=required)


def _reasoning_check(target: _Target, responses: _Answer, chat: _Answer) -> Check:
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
