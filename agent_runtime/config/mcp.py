"""`mcp_servers:` in agents.yaml: MCP servers whose tools agents can call, each by name.

```yaml
mcp_servers:
  files:
    command: [npx, -y, "@modelcontextprotocol/server-filesystem", ./data]   # stdio
    env: {LOG_LEVEL: warn}
    cwd: .                                   # relative to agents.yaml
    tools: [read_text_file, list_directory]  # only these (default: all)
  tickets:
    url: http://localhost:9000/mcp           # streamable HTTP
    headers: {Authorization: "Bearer ${TICKETS_TOKEN}"}
    prefix: tickets                          # the model sees tickets_search, ...
    approval: {always: [close_ticket]}       # a person approves these calls first
agents:
  helper:
    mcp_servers: [files, tickets]
```

`approval` says which calls of a server's tools a person approves before they run: `always`
(every tool), `never` (the default), `{always: [names]}` (only those tools) or
`{never: [names]}` (every tool but those); names are the tools' names on the server.

A server is either a command (stdio: started as a child process) or a `url` (streamable HTTP),
never both. The values of `headers`, the password in `url`, and the `env` values of variables
named like a secret (`*TOKEN*`, `*KEY*`, `*SECRET*`, `*PASSWORD*`, `*AUTH*`, ...) are secrets:
they never appear in errors, logs or traces. How the servers run is `agent_runtime.mcp`.

This module does not import `schema` at import time (`schema` imports it); its validators
borrow the URL and header checks from there when they run.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from agent_runtime.redact import redact_text

__all__ = ["McpApprovalSpec", "McpServerSpec", "is_secret_env_name", "mcp_tool_name"]

_TOOL_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
_SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD|PASSWD|PASS|AUTH|CREDENTIAL|COOKIE", re.I)


def is_secret_env_name(name: str) -> bool:
    """Whether an `env` variable of an MCP server holds a secret, judged by its name
    (`GITHUB_TOKEN`, `API_KEY`, `DB_PASSWORD`...): its value is then masked everywhere."""
    return bool(_SECRET_NAME.search(name))


def mcp_tool_name(prefix: str | None, name: str) -> str:
    """The name the model sees for tool `name` of a server with `prefix`: `prefix_name`."""
    return f"{prefix}_{name}" if prefix else name


class McpApprovalSpec(BaseModel):
    """Which tools of an MCP server need a person's approval: the tools listed in `always`,
    or every tool but those listed in `never` (one of the two)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    always: list[str] | None = Field(
        default=None,
        description="These tools (their names on the server) need approval; the others not.",
    )
    never: list[str] | None = Field(
        default=None,
        description="Every tool but these (their names on the server) needs approval.",
    )

    @model_validator(mode="after")
    def _one_list(self) -> McpApprovalSpec:
        if (self.always is None) == (self.never is None):
            raise PydanticCustomError(
                "mcp_approval",
                "give one of `always` (the tools that need approval) or `never` (the tools "
                "that do not), e.g. {always: [delete_file]}",
            )
        return self

    def needs_approval(self, name: str) -> bool:
        """Whether tool `name` (its name on the server) needs approval."""
        if self.always is not None:
            return name in self.always
        return name not in (self.never or [])


class McpServerSpec(BaseModel):
    """An MCP server: a command started as a child process (stdio), or a URL (streamable
    HTTP). Its tools are offered to the agents that list it in their `mcp_servers`."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="stdio: the program and its arguments, e.g. [npx, -y, "
        "'@modelcontextprotocol/server-filesystem', ./data]. It is started with the runtime "
        "and stopped with it (its whole process group).",
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="stdio: environment variables for the command (${VAR} allowed). Only HOME, "
        "LOGNAME, PATH, SHELL, TERM and USER are passed on from agent-runtime's own "
        "environment; values of variables named like a secret (*TOKEN*, *KEY*, *SECRET*, "
        "*PASSWORD*, *AUTH*...) never appear in errors, logs or traces.",
    )
    cwd: str | None = Field(
        default=None,
        description="stdio: the folder the command runs in, relative to agents.yaml "
        "(default: the folder of agents.yaml).",
    )
    url: str | None = Field(
        default=None,
        description="Streamable HTTP: the server's endpoint, e.g. http://localhost:9000/mcp.",
        json_schema_extra={"pattern": r"^(https?://|\$\{)"},
    )
    headers: dict[str, str] = Field(
        default_factory=dict,
        repr=False,
        description="Streamable HTTP: headers sent with every request, e.g. {Authorization: "
        "'Bearer ${TOKEN}'}; their values never appear in errors, logs or traces.",
    )
    tools: list[str] | None = Field(
        default=None,
        description="Offer only these tools of the server (their names on the server, before "
        "`prefix`); default: all.",
    )
    exclude_tools: list[str] = Field(
        default_factory=list,
        description="Never offer these tools of the server (their names on the server).",
    )
    prefix: str | None = Field(
        default=None,
        description="Rename the server's tools to PREFIX_NAME, for tools whose names clash "
        "with another server's or with the agent's own tools (letters, digits and _).",
        json_schema_extra={"pattern": _TOOL_NAME_PATTERN},
    )
    timeout_s: float = Field(
        default=60,
        gt=0,
        description="Time limit of one tool call, in seconds; past it the model is told the "
        "call did not finish.",
    )
    startup_timeout_s: float = Field(
        default=30,
        gt=0,
        description="How long starting (or connecting to) the server and listing its tools "
        "may take, in seconds.",
    )
    max_restarts: int = Field(
        default=3,
        ge=0,
        description="Times a server that stopped (its process exited, its connection broke) "
        "is restarted without a successful call in between; past it the run fails with an "
        "error naming the server.",
    )

    approval: Literal["always", "never"] | McpApprovalSpec = Field(
        default="never",
        description="Which calls of the server's tools a person approves before they run: "
        "always, never (the default), {always: [names]} (only those tools) or {never: [names]} "
        "(all tools but those).",
    )

    @field_validator("approval", mode="before")
    @classmethod
    def _check_approval(cls, value: object) -> object:
        # One message at `approval` instead of one per member of the union.
        if value in ("always", "never") or isinstance(value, McpApprovalSpec):
            return value
        if isinstance(value, dict):
            try:
                return McpApprovalSpec.model_validate(value)
            except ValidationError as exc:
                error = exc.errors()[0]
                where = ".".join(str(part) for part in error["loc"])
                message = error["msg"].removeprefix("Value error, ")
                raise PydanticCustomError(
                    "mcp_approval",
                    "{where}{message}",
                    {"where": f"{where}: " if where else "", "message": message},
                ) from None
        raise PydanticCustomError(
            "mcp_approval",
            "expected always, never, {lists}, got {value}",
            {"lists": "{always: [tool names]} or {never: [tool names]}", "value": repr(value)},
        )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from agent_runtime.config.schema import url_problem

        if not value.startswith(("http://", "https://")):
            raise PydanticCustomError(
                "url_scheme", "expected an http:// or https:// URL, e.g. http://localhost:9000/mcp"
            )
        problem = url_problem(value)
        if problem is not None:
            raise PydanticCustomError("url_invalid", problem.replace("/v1", "/mcp"))
        return value

    @field_validator("headers")
    @classmethod
    def _check_headers(cls, value: dict[str, str]) -> dict[str, str]:
        from agent_runtime.config.schema import _check_header_names, _clean_header_value

        return _check_header_names({name: _clean_header_value(v) for name, v in value.items()})

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(_TOOL_NAME_PATTERN, value):
            raise PydanticCustomError(
                "prefix",
                "a prefix is part of tool names, which gpt-oss allows letters, digits and _ in "
                "only (other characters break vLLM's harmony parser), e.g. 'files'",
            )
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerSpec:
        if self.command is not None and self.url is not None:
            raise PydanticCustomError(
                "mcp_transport",
                "`command` and `url` are both set; use command for a server started here "
                "(stdio), or url for one that runs already (streamable HTTP)",
            )
        if self.command is None and self.url is None:
            raise PydanticCustomError(
                "mcp_transport_missing",
                "missing `command` (a server started here, over stdio) or `url` (a server "
                "reached over streamable HTTP)",
            )
        wrong = (
            [name for name in ("env", "cwd") if self.model_fields_set & {name}]
            if self.url is not None
            else [name for name in ("headers",) if self.model_fields_set & {name}]
        )
        if wrong:
            kind = "url (streamable HTTP)" if self.url is not None else "command (stdio)"
            raise PydanticCustomError(
                "mcp_field",
                "{fields} cannot be used with {kind}: remove {them}",
                {
                    "fields": " and ".join(f"`{name}`" for name in wrong),
                    "kind": kind,
                    "them": "them" if len(wrong) > 1 else "it",
                },
            )
        if self.tools is not None:
            both = sorted(set(self.tools) & set(self.exclude_tools))
            if both:
                raise PydanticCustomError(
                    "mcp_filter",
                    "{names} in both `tools` and `exclude_tools`; keep each in one of them",
                    {"names": ", ".join(repr(name) for name in both)},
                )
        return self

    @property
    def transport(self) -> str:
        """How the server is shown in messages: `stdio: npx -y ...` or `http: URL`."""
        if self.command is not None:
            return "stdio: " + " ".join(self.command)
        return f"streamable HTTP: {redact_text(self.url or '')}"

    def secret_values(self) -> list[str]:
        """The secrets of this server: header values and secret-named `env` values."""
        found = list(self.headers.values())
        found += [value for name, value in self.env.items() if is_secret_env_name(name)]
        return found

    def needs_approval(self, name: str) -> bool:
        """Whether calls of tool `name` (its name on the server) need a person's approval."""
        if isinstance(self.approval, McpApprovalSpec):
            return self.approval.needs_approval(name)
        return self.approval == "always"

    def offers(self, name: str) -> bool:
        """Whether tool `name` (its name on the server) passes `tools` and `exclude_tools`."""
        allowed = self.tools is None or name in self.tools
        return allowed and name not in self.exclude_tools
