"""`agent-runtime doctor`: check a live model server and say what to fix.

Each backend of agents.yaml goes through seven checks, in order: reachable, health, version,
model, responses tool call, chat tool call, reasoning. A check passes (✓), fails (✗), warns (!:
it failed, but the backend does not depend on it) or is not run (-) because an earlier one makes
it pointless (no server, a rejected API key, a model the server does not serve).

This module runs the checks in that order and renders them (lines, summary, JSON, exit code);
the checks themselves are in `checks` (reachable, health, version, model: plain HTTP) and
`tool_call`
(the tool calls over both APIs, and the reasoning in the answers).

The OpenAI client and httpx2 are imported inside the command, so `agent-runtime --help` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import click

from agent_runtime.cli.common import (
    EXIT_BACKEND,
    EXIT_ERROR,
    EXIT_USAGE,
    Overrides,
    backend_options,
    config_option,
    configure_logging,
    debug_option,
    exit_with,
    handle_errors,
    load,
)
from agent_runtime.cli.doctor.checks import (
    CHECKS,
    Check,
    Need,
    Target,
    check_model,
    check_server,
    check_version,
)
from agent_runtime.cli.doctor.tool_call import (
    ask_chat,
    ask_responses,
    chat_check,
    reasoning_check,
    responses_check,
)
from agent_runtime.config import Config
from agent_runtime.text import unknown

__all__ = ["doctor_command"]


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
      version              GET /version: the vLLM release, new enough for agents.yaml
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
) -> list[Target]:
    backends = config.spec.backends
    if only is not None and only not in backends:
        exit_with(EXIT_USAGE, unknown("backend", only, backends))
    served = overrides["base_url"] is not None  # in-process backends then use that server
    in_process = [
        name
        for name, spec in backends.items()
        if spec.kind == "vllm-embedded" and not served and only in (None, name)
    ]
    if in_process and only is not None:
        exit_with(
            EXIT_USAGE,
            f"backend {only!r} runs vLLM in this process (kind vllm-embedded), so there is no "
            "server to check; pass --base-url to check a server for it instead",
        )
    if in_process and len(in_process) == len(backends):
        exit_with(
            EXIT_USAGE,
            "every backend runs vLLM in this process (kind vllm-embedded), so there is no "
            "server to check; pass --base-url to check a server instead",
        )
    for name in in_process:
        click.echo(f"Backend '{name}' runs vLLM in this process: not checked.", err=True)
    return [
        Target(
            name=name,
            kind=spec.kind,
            api=spec.api,
            base_url=overrides["base_url"] or spec.url,
            model=overrides["model"] or spec.model,
            api_key=overrides["api_key"] or spec.api_key.get_secret_value(),
            headers=spec.headers,
            reasoning_field=spec.reasoning_field,
            source=config.source,
            timeout_s=timeout,
            needs=_needs(config, name),
        )
        for name, spec in backends.items()
        if name not in in_process and only in (None, name)
    ]


def _needs(config: Config, backend: str) -> tuple[Need, ...]:
    """What the agents on `backend` ask of vLLM that older releases do not do."""
    needs = []
    for agent in config.spec.agents:
        name, spec = config.backend_of(agent)
        choice = config.model_settings_of(agent).tool_choice
        if name != backend or choice in (None, "auto", "none"):
            continue
        if spec.api == "responses":
            needs.append(
                Need(
                    release=(0, 27),
                    what=f"agent '{agent}' sets tool_choice {choice!r}, which vLLM's Responses "
                    "API answers with 501 before 0.27",
                )
            )
        else:
            needs.append(
                Need(
                    release=(0, 33),
                    what=f"agent '{agent}' sets tool_choice {choice!r}, which vLLM's Chat API "
                    "enforces from 0.33 (0.22.1 ignores it)",
                )
            )
    return tuple(needs)


async def _doctor(targets: list[Target], *, as_json: bool) -> int:
    reports: list[tuple[Target, list[Check]]] = []
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


def _header(target: Target) -> str:
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


def _report(reports: list[tuple[Target, list[Check]]]) -> dict[str, Any]:
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


async def _diagnose(target: Target) -> AsyncIterator[Check]:
    """Run the checks against one backend's server, yielding each outcome as it is known."""
    import httpx2
    from openai import AsyncOpenAI

    headers = {**target.headers, "Authorization": f"Bearer {target.api_key}"}
    async with httpx2.AsyncClient(timeout=target.timeout_s, headers=headers) as http:
        reachable, health = await check_server(http, target)
        yield reachable
        if reachable.blocks is not None:
            for name in CHECKS[1:]:
                yield _not_run(name, target, reachable.blocks)
            return
        assert health is not None
        yield health
        yield await check_version(http, target)
        model = await check_model(http, target)
    yield model
    if model.blocks is not None:
        for name in CHECKS[CHECKS.index("model") + 1 :]:
            yield _not_run(name, target, model.blocks)
        return
    async with AsyncOpenAI(
        base_url=target.base_url,
        api_key=target.api_key,
        timeout=target.timeout_s,
        max_retries=0,
        default_headers=dict(target.headers) or None,
    ) as client:
        responses = await ask_responses(client, target)
        yield responses_check(responses, target)
        chat = await ask_chat(client, target)
        yield chat_check(chat, target)
    yield reasoning_check(target, responses, chat)


def _not_run(name: str, target: Target, why: str) -> Check:
    return Check(name=name, ok=None, detail=f"not run: {why}", required=target.required(name))
