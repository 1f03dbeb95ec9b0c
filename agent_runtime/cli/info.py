"""`list`, `validate` and `schema`: fast commands that read agents.yaml but run nothing.

They import neither the Agents SDK nor the OpenAI client.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import click

from agent_runtime.cli.common import EXIT_USAGE, config_option, exit_with, load
from agent_runtime.config import Config, config_json_schema, load_config
from agent_runtime.errors import ConfigError, ConfigProblem

__all__ = ["list_command", "schema_command", "validate_command"]


def _agent_rows(config: Config) -> list[dict[str, Any]]:
    rows = []
    for name, agent in config.spec.agents.items():
        backend_name, backend = config.backend_of(name)
        rows.append(
            {
                "name": name,
                "description": agent.description,
                "backend": backend_name,
                "api": backend.api,
                "base_url": backend.base_url,
                **({"base_urls": backend.base_urls} if backend.base_urls is not None else {}),
                "model": agent.model or backend.model,
                "tools": [config.tool_names.get(key, key) for key in agent.tool_keys],
                "agent_tools": [tool.name for tool in config.agent_tools_of(name)],
                "handoffs": list(agent.handoffs),
                "mcp_servers": [_mcp_row(config, server) for server in agent.mcp_servers],
            }
        )
    return rows


def _mcp_row(config: Config, server: str) -> dict[str, Any]:
    """An MCP server an agent uses, as `list` shows it (its tools are known once it runs:
    `agent-runtime doctor` lists them)."""
    spec = config.spec.mcp_servers[server]
    return {
        "name": server,
        "transport": spec.transport,
        "tools": spec.tools,
        "exclude_tools": spec.exclude_tools,
        "prefix": spec.prefix,
    }


def _mcp_offer(row: dict[str, Any]) -> str:
    """`mcp:files` (every tool), `mcp:files[read_file, list_directory]` (those listed)."""
    tools = row["tools"]
    if tools is not None:
        names = [f"{row['prefix']}_{t}" if row["prefix"] else t for t in tools]
        return f"mcp:{row['name']}[{', '.join(n for n in names if n not in row['exclude_tools'])}]"
    return f"mcp:{row['name']}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


@click.command(name="list")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def list_command(config_path: Path, as_json: bool) -> None:
    """List the agents with their backend, model and tools.

    An agent's MCP servers show as `mcp:NAME` (with the tools it offers, when agents.yaml
    lists them); `agent-runtime doctor` connects to them and lists their tools.
    """
    try:
        config = load(config_path, import_tools=False)  # describing needs no tool imports
    except ConfigError as error:
        exit_with(EXIT_USAGE, str(error))
    rows = _agent_rows(config)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    table = [["AGENT", "BACKEND", "MODEL", "TOOLS"]]
    for row in rows:
        offers = [*row["tools"], *row["agent_tools"]]
        offers += [_mcp_offer(server) for server in row["mcp_servers"]]
        offers += [f"→ {target}" for target in row["handoffs"]]
        table.append([row["name"], row["backend"], row["model"], ", ".join(offers) or "-"])
    click.echo(_table(table))


@click.command(name="validate")
@config_option
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object.")
def validate_command(config_path: Path, as_json: bool) -> None:
    """Check agents.yaml: every problem at once (exit 2), or a one-line OK.

    Checks the schema, names and references, environment variables, instruction files and
    output schemas, and imports every tool function. What loads but will not work as meant (a
    vLLM base_url that does not end in /v1) is a warning on stderr; the exit code stays 0.
    """
    if not config_path.exists() and not as_json:
        load(config_path)  # exits with the missing-file message
    try:
        config = load_config(config_path)
    except ConfigError as error:
        if as_json:
            problems = [dataclasses.asdict(problem) for problem in error.problems]
            click.echo(json.dumps({"ok": False, "problems": problems}, indent=2))
            raise SystemExit(EXIT_USAGE) from None
        exit_with(EXIT_USAGE, str(error))
    spec = config.spec
    counts = {"agents": len(spec.agents), "tools": len(spec.tools), "backends": len(spec.backends)}
    if spec.mcp_servers:
        counts["mcp_servers"] = len(spec.mcp_servers)
    warnings = _warnings(config)
    if as_json:
        report = {
            "ok": True,
            "file": config.source,
            **counts,
            "warnings": [dataclasses.asdict(warning) for warning in warnings],
        }
        click.echo(json.dumps(report, indent=2))
        return
    for warning in warnings:
        click.echo(f"Warning: {warning}", err=True)
    summary = ", ".join(
        f"{n} {(kind if n != 1 else kind[:-1]).replace('mcp_server', 'MCP server')}"
        for kind, n in counts.items()
    )
    click.echo(f"{config.source}: OK ({summary})")


def _warnings(config: Config) -> list[ConfigProblem]:
    """What loads but will not work as meant: a vLLM `base_url` whose path does not end in
    /v1 (vLLM answers 404 everywhere else)."""
    warnings = []
    for name, backend in config.spec.backends.items():
        if backend.kind != "vllm":
            continue
        several = backend.base_urls is not None
        for index, url in enumerate(backend.urls):
            parts = urlsplit(url)
            path = parts.path.rstrip("/")
            if path.endswith("/v1"):
                continue
            fixed = urlunsplit((parts.scheme, parts.netloc, f"{path}/v1", "", ""))
            message = f"{url!r} does not end in /v1, where vLLM serves its API; set it to {fixed}."
            field = f"base_urls[{index}]" if several else "base_url"
            warnings.append(
                ConfigProblem(
                    file=config.source,
                    line=None,
                    column=None,
                    path=f"backends.{name}.{field}",
                    message=message,
                )
            )
    return warnings


@click.command(name="schema")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to this file instead of stdout.",
)
@click.option(
    "--eval",
    "of_evals",
    is_flag=True,
    help="The schema of eval files (`agent-runtime eval`) instead of agents.yaml's.",
)
def schema_command(output: Path | None, of_evals: bool) -> None:
    """Print the JSON Schema of agents.yaml (for editors and CI checks).

    Point your editor at it with a first line in agents.yaml:
    `# yaml-language-server: $schema=agents.schema.json`
    (likewise in an eval file, with the schema `--eval` prints).
    """
    if of_evals:
        from agent_runtime.evals.spec import eval_json_schema

        schema = eval_json_schema()
    else:
        schema = config_json_schema()
    text = json.dumps(schema, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
