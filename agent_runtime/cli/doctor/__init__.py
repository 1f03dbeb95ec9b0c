"""`agent-runtime doctor`: check a live model server and say what to fix.

Each backend of agents.yaml goes through seven checks, in order: reachable, health, version,
model, responses tool call, chat tool call, reasoning. A check passes (✓), fails (✗), warns (!:
it failed, but the backend does not depend on it) or is not run (-) because an earlier one makes
it pointless (no server, a rejected API key, a model the server does not serve).

This module runs the checks in that order and renders them (lines, summary, JSON, exit code);
the checks themselves are in `checks` (reachable, health, version, model: plain HTTP) and
`tool_call` (the tool calls over both APIs, and the reasoning in the answers).

Each request may take `--timeout` seconds in all (a server that trickles its answer byte by
byte is cut off too), and the whole command `--deadline` seconds: the checks it leaves are
reported as not run and the command fails. Every line is redacted (the configured secrets, URL
passwords, `Authorization` values) and made `visible` (what a server sends is data: its
control characters and escape sequences are shown, not obeyed).

The OpenAI client and httpx2 are imported inside the command, so `agent-runtime --help` stays fast.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from agent_runtime.cli.common import (
    EXIT_BACKEND,
    EXIT_ERROR,
    EXIT_USAGE,
    Overrides,
    Secrets,
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
from agent_runtime.cli.doctor.mcp import check_mcp_servers, render_mcp
from agent_runtime.cli.doctor.tool_call import (
    ask_chat,
    ask_responses,
    chat_check,
    reasoning_check,
    responses_check,
)
from agent_runtime.config import Config
from agent_runtime.redact import Redactor
from agent_runtime.text import unknown, visible

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
    help="The longest one request may take, in all (real models can be slow).",
)
@click.option(
    "--deadline",
    type=click.FloatRange(min=0, min_open=True),
    default=120.0,
    show_default=True,
    metavar="SECONDS",
    help="The longest the whole command may take; checks it leaves are not run.",
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
    deadline: float,
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

    Then (without --backend) each MCP server in agents.yaml is started (or connected to)
    and its tools are listed; one that cannot be used fails the command.

    Each line is ✓ passed, ✗ failed, ! warning or - not run; failures and warnings come with
    a fix. Both APIs are tried, but only the tool call of the API the backend uses (`api:`) is
    required: the other one's failure is a warning, since it needs server flags this backend
    does not depend on. When the server is unreachable, rejects the API key or does not serve
    the model, the later checks are not run. Requests are not retried.

    Each request may take --timeout seconds in all, the whole command --deadline seconds:
    the checks left when the deadline passes are not run, and the command fails.

    Exit codes: 0 every required check passed; 1 a check failed; 3 a server is unreachable;
    2 bad config or usage.

    \b
    Example:
      agent-runtime doctor --backend local
    """
    ends = time.monotonic() + deadline
    secrets = Secrets()
    secrets.add(api_key)
    configure_logging(debug, secrets)
    with handle_errors(debug, secrets):
        config = load(config_path, secrets=secrets)
        overrides = Overrides(base_url=base_url, model=model, api_key=api_key)
        targets = _targets(config, backend, overrides, timeout, (ends, deadline))
        keys = [key for key in (api_key,) if key is not None and key != "EMPTY"]
        redactor = Redactor(config.secrets()).with_secrets(keys)
        mcp = config if backend is None and config.spec.mcp_servers else None
        code = asyncio.run(_doctor(targets, as_json=as_json, redact=redactor.text, mcp=mcp))
    sys.exit(code)


def _targets(
    config: Config,
    only: str | None,
    overrides: Overrides,
    timeout: float,
    deadline: tuple[float, float],
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
    return [  # one target per server: each replica of a backend with base_urls
        Target(
            name=name,
            kind=spec.kind,
            api=spec.api,
            base_url=url,
            model=overrides["model"] or spec.model,
            api_key=overrides["api_key"] or spec.api_key.get_secret_value(),
            headers=spec.headers,
            reasoning_field=spec.reasoning_field,
            source=config.source,
            timeout_s=timeout,
            needs=_needs(config, name),
            deadline=deadline[0],
            deadline_s=deadline[1],
        )
        for name, spec in backends.items()
        if name not in in_process and only in (None, name)
        for url in ([overrides["base_url"]] if overrides["base_url"] else spec.urls)
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


async def _doctor(
    targets: list[Target],
    *,
    as_json: bool,
    redact: Callable[[str], str],
    mcp: Config | None = None,
) -> int:
    def safe(text: str) -> str:
        return visible(redact(text), lines=False)

    reports: list[tuple[Target, list[Check]]] = []
    for index, target in enumerate(targets):
        if not as_json:
            if index:
                click.echo()
            click.echo(click.style(safe(_header(target)), bold=True))
        checks: list[Check] = []
        async for check in _checks(target):
            checks.append(_safe(check, safe))
            if not as_json:
                click.echo(_render(checks[-1]))
        if not as_json:
            click.echo(_summary(checks))
        reports.append((target, checks))
    stopped = any(check.detail.endswith(_DEADLINE_PASSED) for _, cs in reports for check in cs)
    servers = await check_mcp_servers(mcp) if mcp is not None else []
    if as_json:
        report = _report(reports, stopped, safe)
        if mcp is not None:
            report["mcp_servers"] = [
                {key: safe(value) if isinstance(value, str) else value
                 for key, value in server.to_dict().items()}
                for server in servers
            ]  # fmt: skip
            report["ok"] = report["ok"] and all(server.ok for server in servers)
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    elif stopped:
        seconds = targets[0].deadline_s
        click.echo(f"Stopped: doctor's deadline of {seconds:g} s (--deadline) passed.")
    if not as_json:
        for server in servers:
            click.echo()
            click.echo(render_mcp(server, lambda text: visible(redact(text))))
    if any(check.name == "reachable" and check.ok is False for _, cs in reports for check in cs):
        return EXIT_BACKEND
    if not all(server.ok for server in servers):
        return EXIT_ERROR
    if stopped or any(_failed(check) for _, checks in reports for check in checks):
        return EXIT_ERROR
    return 0


async def _checks(target: Target) -> AsyncIterator[Check]:
    """Every check of `target` in order: those the deadline leaves are not run."""
    done = 0
    if not target.overdue():
        async with aclosing(_diagnose(target)) as diagnose:
            async for check in diagnose:
                done += 1
                yield check
                if target.overdue():
                    break
    for name in CHECKS[done:]:
        yield _not_run(name, target, _DEADLINE_PASSED)


_DEADLINE_PASSED = "doctor's deadline passed"


def _safe(check: Check, safe: Callable[[str], str]) -> Check:
    """`check` with its words redacted and made visible (they quote what servers sent)."""
    fix = None if check.fix is None else safe(check.fix)
    return replace(check, detail=safe(check.detail), fix=fix)


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


def _report(
    reports: list[tuple[Target, list[Check]]], stopped: bool, safe: Callable[[str], str]
) -> dict[str, Any]:
    backends = [
        {
            "backend": target.name,
            "api": target.api,
            "base_url": safe(target.base_url),
            "model": safe(target.model),
            "ok": not any(_failed(check) for check in checks),
            "checks": [check.to_dict() for check in checks],
        }
        for target, checks in reports
    ]
    return {"ok": not stopped and all(entry["ok"] for entry in backends), "backends": backends}


async def _diagnose(target: Target) -> AsyncGenerator[Check, None]:
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
