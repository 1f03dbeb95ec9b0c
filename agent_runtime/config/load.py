"""Loading agents.yaml: parse with positions, validate, cross-check, and report every problem.

```python
config = load_config("agents.yaml")          # raises ConfigError listing every problem
backend_name, backend = config.backend_of("weather-haiku")
```

The document is parsed with positions and `${VAR}` interpolation (`document`), validated by the
models of `schema` (errors placed by `problems`), then cross-checked (`checks`): names that refer
to other entries, instruction files, output schemas and tool imports (`imports`). Every problem
carries `file:line:col` and the dotted path of the value.
"""

from __future__ import annotations

import base64
import itertools
import os
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ValidationError

from agent_runtime.config.checks import check_agents, check_output_types, check_tools
from agent_runtime.config.document import Document, compose
from agent_runtime.config.durability import database_url_secrets
from agent_runtime.config.problems import report_schema_error
from agent_runtime.config.schema import (
    AgentSpec,
    AgentToolSpec,
    BackendSpec,
    ModelSettingsSpec,
    RuntimeConfig,
    agent_tool_name,
    is_secret,
)
from agent_runtime.errors import ConfigError, ConfigProblem
from agent_runtime.redact import own_logger
from agent_runtime.text import kind_of, show, unknown

__all__ = [
    "MAX_CONFIG_BYTES",
    "Config",
    "config_json_schema",
    "load_config",
    "parse_config",
    "yaml_json_schema",
]

logger = own_logger(__name__)

_SUPPORTED_VERSIONS = (1,)

MAX_CONFIG_BYTES = 4 * 1024 * 1024
"""The largest agents.yaml `load_config` reads (4 MiB); more is refused, not read."""

_DUMMY_KEYS = frozenset({"EMPTY"})
"""API keys that are placeholders, not secrets (vLLM's usual dummy key)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """A loaded, checked agents.yaml, with its tools imported and instructions read.

    Attributes:
        spec: the validated document.
        source: the file name as given (or the `source` passed to `parse_config`).
        base_dir: the folder of the YAML file (absolute); relative paths start there.
        functions: tool key in `tools:` -> the imported callable.
        instructions: agent name -> instructions text (inline or read from `instructions_file`).
        tool_names: tool key in `tools:` -> the name the model sees (`name` or `__name__`).
        output_types: agent name -> the imported type its `output_schema` names (agents whose
            `output_schema` is a JSON Schema are not in it).
    """

    spec: RuntimeConfig
    source: str
    base_dir: Path
    functions: Mapping[str, Callable[..., Any]]
    instructions: Mapping[str, str | None]
    tool_names: Mapping[str, str] = field(default_factory=dict)
    output_types: Mapping[str, type[Any]] = field(default_factory=dict)

    def error(self, path: str, message: str) -> ConfigError:
        """A `ConfigError` for a problem found after loading, at `path` of this document."""
        return ConfigError(
            [ConfigProblem(file=self.source, line=None, column=None, path=path, message=message)]
        )

    def _agent(self, agent: str) -> AgentSpec:
        try:
            return self.spec.agents[agent]
        except KeyError:
            raise KeyError(unknown("agent", agent, self.spec.agents)) from None

    def backend_of(self, agent: str) -> tuple[str, BackendSpec]:
        """The backend of `agent`: its own, else `defaults.backend`, else the only one.

        Raises:
            KeyError: `agent` is not declared.
        """
        name = self._agent(agent).backend or self.spec.defaults.backend
        if name is None:
            (name,) = self.spec.backends  # checked when loading: exactly one backend here
        return name, self.spec.backends[name]

    def model_settings_of(self, agent: str) -> ModelSettingsSpec:
        """`defaults.model_settings` overlaid with the agent's own (fields it sets win whole)."""
        own = self._agent(agent).model_settings.model_dump(exclude_none=True)
        return self.spec.defaults.model_settings.model_copy(update=own)

    def max_turns_of(self, agent: str) -> int:
        """The agent's `max_turns`, else `defaults.max_turns`."""
        return self._agent(agent).max_turns or self.spec.defaults.max_turns

    def output_retries_of(self, agent: str) -> int:
        """The agent's `output_retries`, else `defaults.output_retries`."""
        own = self._agent(agent).output_retries
        return own if own is not None else self.spec.defaults.output_retries

    def run_timeout_of(self, agent: str) -> float | None:
        """The agent's `run_timeout_s`, else `defaults.run_timeout_s` (None: no limit)."""
        own = self._agent(agent).run_timeout_s
        return own if own is not None else self.spec.defaults.run_timeout_s

    def guard_limits_of(self, agent: str) -> tuple[int, int]:
        """`(max_repeated_calls, max_invalid_calls)` of the agent, defaults filled in."""
        spec, defaults = self._agent(agent), self.spec.defaults
        repeated = spec.max_repeated_calls
        invalid = spec.max_invalid_calls
        return (
            repeated if repeated is not None else defaults.max_repeated_calls,
            invalid if invalid is not None else defaults.max_invalid_calls,
        )

    def agent_tools_of(self, agent: str) -> tuple[AgentToolSpec, ...]:
        """The agent's `agent_tools` as specs, each with its tool name filled in."""
        specs = []
        for entry in self._agent(agent).agent_tools:
            spec = AgentToolSpec(agent=entry) if isinstance(entry, str) else entry
            specs.append(spec.model_copy(update={"name": agent_tool_name(spec)}))
        return tuple(specs)

    def secrets(self) -> tuple[str, ...]:
        """Every secret value in this configuration, for `agent_runtime.redact.Redactor`: each
        backend's API key (except the placeholder `EMPTY`), header values (`headers`, and
        `extra_headers` of every `model_settings`), the password (or token) in a `base_url`
        (and the `Basic` credentials made of it), and the value after `--api-key` in
        `serve_args` and `launch_command`, and the keys clients of `agent-runtime serve` bring
        (`serve.api_keys`), and the password in `durability.database_url`, and of each MCP
        server its header values, the password in its `url` and the `env` values of variables
        named like secrets, and the OTLP collector's header values and URL password (`tracing`).
        Values come as loaded, `${VAR}` interpolated."""
        found: list[str] = []
        settings = [self.spec.defaults.model_settings]
        settings += [agent.model_settings for agent in self.spec.agents.values()]
        for backend in self.spec.backends.values():
            key = backend.api_key.get_secret_value()
            if key not in _DUMMY_KEYS:
                found.append(key)
            found += backend.headers.values()
            for url in backend.urls:
                found += _url_secrets(url)
            found += _flag_values(backend.serve_args)
            found += _flag_values(backend.launch_command or [])
        for each in settings:
            found += (each.extra_headers or {}).values()
        found += (key.get_secret_value() for key in self.spec.serve.api_keys)
        if self.spec.durability is not None:
            found += database_url_secrets(self.spec.durability.database_url)
        for server in self.spec.mcp_servers.values():
            found += server.secret_values()
            found += _url_secrets(server.url or "")
        found += self.spec.tracing.otlp_headers.values()
        found += _url_secrets(self.spec.tracing.otlp_endpoint or "")
        return tuple(dict.fromkeys(value for value in found if value))

    def resolve_path(self, path: str) -> Path:
        """`path` relative to the YAML file's folder (as `sessions.path` and `tracing.path` are);
        `~` is the home folder, `~user` only for a user that exists (else it stays as written)."""
        try:
            return self.base_dir / Path(path).expanduser()
        except RuntimeError:
            return self.base_dir / path


def load_config(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    import_tools: bool = True,
) -> Config:
    """Load and check an agents.yaml file; relative paths and tool modules start at its folder.

    Args:
        path: the YAML file.
        environ: variables for `${VAR}` interpolation (default: `os.environ`).
        import_tools: import (and so check) every tool function and output type; without it
            `functions` and `output_types` are empty, for callers that only describe the agents.

    The file may be at most `MAX_CONFIG_BYTES` (4 MiB) long; it may be a pipe (`-c <(...)`),
    of which no more than that is read.

    Raises:
        ConfigError: the file cannot be read, is too large, or has problems; every problem is
            listed.
    """
    source = str(path)
    try:
        with Path(path).open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([_file_problem(source, f"cannot read {source}: {reason}")]) from None
    if len(data) > MAX_CONFIG_BYTES:
        message = (
            f"cannot read {source}: it is larger than {MAX_CONFIG_BYTES // (1024 * 1024)} MiB, "
            "the most an agents.yaml may be. Is it the right file? Put long instructions in "
            "files of their own (`instructions_file`)."
        )
        raise ConfigError([_file_problem(source, message)])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        message = f"cannot read {source}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ConfigError([_file_problem(source, message)]) from None
    base_dir = Path(os.path.abspath(path)).parent
    return parse_config(
        text, source=source, base_dir=base_dir, environ=environ, import_tools=import_tools
    )


def parse_config(
    text: str,
    *,
    source: str = "agents.yaml",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    import_tools: bool = True,
) -> Config:
    """Parse and check agents.yaml text.

    Args:
        text: the YAML document.
        source: the file name to show in problems.
        base_dir: where `instructions_file` and tool modules are looked up (default: the cwd).
        environ: variables for `${VAR}` interpolation (default: `os.environ`).
        import_tools: import (and so check) every tool function (see `load_config`).

    Raises:
        ConfigError: the document has problems; every problem is listed, sorted by position.
    """
    base = Path(os.path.abspath(base_dir if base_dir is not None else Path.cwd()))
    doc = compose(
        text, source=source, environ=os.environ if environ is None else environ, is_secret=is_secret
    )
    data = doc.data
    if not isinstance(data, dict):
        if data is None and not doc.problems:
            message = (
                "the file is empty; expected a mapping with `version: 1`, `backends` and `agents`"
            )
        else:
            message = (
                f"expected a mapping with `version`, `backends` and `agents`, got {kind_of(data)}"
            )
        doc.report((), message)
        raise ConfigError(doc.problems, source=source)
    if not _check_version(doc, data):
        raise ConfigError(doc.problems, source=source)
    spec: RuntimeConfig | None = None
    try:
        spec = RuntimeConfig.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            report_schema_error(doc, error)
    functions, tool_names = check_tools(doc, data, base, load=import_tools)
    instructions = check_agents(doc, data, tool_names, base)
    output_types = check_output_types(doc, data, base, load=import_tools)
    if doc.problems or spec is None:
        raise ConfigError(doc.problems, source=source)
    logger.debug(
        "loaded %s: %d backends, %d tools, %d agents",
        source,
        len(spec.backends),
        len(spec.tools),
        len(spec.agents),
    )
    return Config(
        spec=spec,
        source=source,
        base_dir=base,
        functions=types.MappingProxyType(functions),
        instructions=types.MappingProxyType(instructions),
        tool_names=types.MappingProxyType(tool_names),
        output_types=types.MappingProxyType(output_types),
    )


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of agents.yaml, for editors and `agent-runtime schema`."""
    return yaml_json_schema(RuntimeConfig, title="agents.yaml")


def yaml_json_schema(model: type[BaseModel], *, title: str) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a YAML file read into `model` with `${VAR}`
    interpolation (numbers and booleans may be written as `${VAR}` text too)."""
    schema = _allow_interpolation(model.model_json_schema())
    schema["title"] = title
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def _allow_interpolation(node: Any) -> Any:
    """Let numbers and booleans also be written as `${VAR}` text, as the loader allows."""
    if isinstance(node, list):
        return [_allow_interpolation(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _allow_interpolation(value) for key, value in node.items()}
    if node.get("type") not in ("integer", "number", "boolean") or "const" in node:
        return node
    notes = {key: node.pop(key) for key in ("title", "description", "default") if key in node}
    return {**notes, "anyOf": [node, {"type": "string", "pattern": r"\$\{"}]}


# --- checks -------------------------------------------------------------------------------------


def _check_version(doc: Document, data: dict[str, Any]) -> bool:
    """Report a missing or unsupported `version`; False when the rest cannot be read as v1."""
    supported = " or ".join(f"`version: {v}`" for v in _SUPPORTED_VERSIONS)
    if "version" not in data:
        doc.report((), f"missing required field `version`; add {supported}", at="key")
        doc.tainted.add(("version",))
        return True
    version = data["version"]
    if (
        isinstance(version, int)
        and not isinstance(version, bool)
        and version in _SUPPORTED_VERSIONS
    ):
        return True
    if not doc.is_tainted(("version",)):
        shown = show(version, secret=False)
        doc.report(
            ("version",), f"unsupported version {shown}; this agent-runtime reads {supported}"
        )
    return False


def _url_secrets(url: str) -> list[str]:
    """The password of `url` (as written and decoded), or its user name when it has no
    password (`https://TOKEN@host`)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    if "@" not in parts.netloc:
        return []
    userinfo = parts.netloc.rpartition("@")[0]
    user, colon, password = userinfo.partition(":")
    secret = password if colon else user
    # HTTP clients send user-info as `Authorization: Basic base64(user:password)`.
    basic = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode()
    return [secret, unquote(secret), basic]


def _flag_values(args: list[str]) -> list[str]:
    """The values of `--api-key VALUE` and `--api-key=VALUE` in a command line."""
    values = [arg.partition("=")[2] for arg in args if arg.startswith("--api-key=")]
    values += [after for flag, after in itertools.pairwise(args) if flag == "--api-key"]
    return values


def _file_problem(source: str, message: str) -> ConfigProblem:
    return ConfigProblem(file=source, line=None, column=None, path="", message=message)
