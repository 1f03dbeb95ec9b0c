"""agents.yaml: the schema, loading, `${VAR}` interpolation and every check, reported at once.

```python
config = load_config("agents.yaml")          # raises ConfigError listing every problem
backend_name, backend = config.backend_of("weather-haiku")
```

The document is parsed with positions (`agent_runtime._yaml`), validated by the pydantic models
below, then cross-checked: names that refer to other entries, instruction files, output schemas
and tool imports. Every problem carries `file:line:col` and the dotted path of the value.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import re
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.machinery import ModuleSpec, PathFinder
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails, PydanticCustomError

from agent_runtime._yaml import (
    Document,
    Loc,
    compose,
    did_you_mean,
    format_loc,
    kind_of,
    report_validation_error,
    show,
)
from agent_runtime.errors import ConfigError, ConfigProblem, ToolResolutionError

__all__ = [
    "AgentSpec",
    "AgentToolSpec",
    "BackendSpec",
    "Config",
    "DefaultsSpec",
    "ModelSettingsSpec",
    "RuntimeConfig",
    "SessionsSpec",
    "ToolSpec",
    "TracingSpec",
    "config_json_schema",
    "import_function",
    "load_config",
    "parse_config",
]

logger = logging.getLogger(__name__)

_SUPPORTED_VERSIONS = (1,)
# gpt-oss renders tool names into harmony headers (`to=functions.NAME`); other characters break
# vLLM's parser ("unexpected tokens remaining in message header", vllm#23567).
_TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_REFERENCE = re.compile(rf"(?P<module>{_IDENTIFIER}(?:\.{_IDENTIFIER})*):(?P<attr>{_IDENTIFIER})")
_REFERENCE_FORM = "'package.module:function'"


class _Spec(BaseModel):
    # defer_build: the validators are built on first use, keeping `import` cheap for the CLI.
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class ModelSettingsSpec(_Spec):
    """Sampling and request settings, in the Agents SDK's `ModelSettings` vocabulary."""

    temperature: float | None = Field(default=None, ge=0, le=2, description="Sampling temperature.")
    top_p: float | None = Field(
        default=None, ge=0, le=1, description="Nucleus sampling probability."
    )
    max_tokens: int | None = Field(
        default=None, gt=0, description="Most tokens to generate per turn."
    )
    reasoning_effort: Literal["low", "medium", "high"] | None = Field(
        default=None, description="gpt-oss reasoning effort; vLLM accepts only low, medium or high."
    )
    tool_choice: Literal["auto", "none"] | None = Field(
        default=None,
        description="auto or none; vLLM's gpt-oss Responses API answers others with 501.",
    )
    parallel_tool_calls: bool | None = Field(
        default=None, description="Whether the model may call several tools in one turn."
    )
    truncation: Literal["auto", "disabled"] | None = Field(
        default=None, description="How the server treats an input longer than the context."
    )
    extra_body: dict[str, Any] | None = Field(
        default=None, description="Extra fields merged into the request body, passed through as is."
    )
    extra_headers: dict[str, str] | None = Field(
        default=None, repr=False, description="Extra HTTP headers for each request."
    )


class BackendSpec(_Spec):
    """A model server: vLLM serving gpt-oss, or any OpenAI-compatible server."""

    kind: Literal["vllm", "openai"] = Field(
        default="vllm", description="vllm or openai (compatible)."
    )
    api: Literal["responses", "chat_completions"] = Field(
        default="responses", description="The API to call: responses (default) or chat_completions."
    )
    base_url: str = Field(
        description="The API's base URL, e.g. http://localhost:8000/v1.",
        json_schema_extra={"pattern": r"^(https?://|\$\{)"},
    )
    api_key: SecretStr = Field(
        default=SecretStr("EMPTY"),
        description="API key; EMPTY for a vLLM server started without --api-key.",
        json_schema_extra={"default": "EMPTY"},
    )
    model: str = Field(description="Model name as the server knows it, e.g. openai/gpt-oss-20b.")
    timeout_s: float = Field(default=120, gt=0, description="Timeout of one request, in seconds.")
    max_retries: int = Field(default=2, ge=0, description="Retries of a failed request.")
    reasoning_field: Literal["reasoning", "reasoning_content"] = Field(
        default="reasoning",
        description="chat_completions only: the assistant field that carries reasoning back "
        "(reasoning_content for vLLM < 0.11.1).",
    )
    headers: dict[str, str] = Field(
        default_factory=dict, repr=False, description="Extra HTTP headers for every request."
    )

    @field_validator("base_url")
    @classmethod
    def _check_scheme(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise PydanticCustomError(
                "url_scheme", "expected an http:// or https:// URL, e.g. http://localhost:8000/v1"
            )
        return value


class ToolSpec(_Spec):
    """A Python function the model can call."""

    function: str = Field(
        description="Where the function is: package.module:function (relative to the YAML "
        "file's folder, else on sys.path).",
        json_schema_extra={"pattern": f"^{_REFERENCE.pattern}$"},
    )
    name: str | None = Field(
        default=None,
        description="The name the model sees (default: the function's name); letters, digits "
        "and _ only, as gpt-oss requires.",
        json_schema_extra={"pattern": f"^{_TOOL_NAME.pattern}$"},
    )
    description: str | None = Field(
        default=None, description="What the tool does (default: the function's docstring)."
    )
    timeout_s: float | None = Field(
        default=None, gt=0, description="Time limit of one call (default: defaults.tool_timeout_s)."
    )
    max_output_chars: int | None = Field(
        default=None,
        gt=0,
        description="Longest result sent back (default: defaults.tool_max_output_chars).",
    )
    strict: bool = Field(default=True, description="Use a strict JSON schema for the arguments.")


class AgentToolSpec(_Spec):
    """Another agent offered to this one as a tool."""

    agent: str = Field(description="The agent to call.")
    name: str | None = Field(
        default=None, description="Tool name (default: the agent's name with - replaced by _)."
    )
    description: str | None = Field(
        default=None, description="What the tool does (default: the agent's description)."
    )


def _agent_tool_kind(value: Any) -> str:
    return "agent-name" if isinstance(value, str) else "agent-tool"


_AgentToolEntry = Annotated[
    Annotated[str, Tag("agent-name")] | Annotated[AgentToolSpec, Tag("agent-tool")],
    Discriminator(_agent_tool_kind),
]
_UNION_TAGS = ("agent-name", "agent-tool")


class AgentSpec(_Spec):
    """An agent: instructions, a backend, tools, and the agents it can hand off to or call."""

    description: str | None = Field(
        default=None,
        description="What the agent does; shown to agents that hand off to it or call it.",
    )
    instructions: str | None = Field(default=None, description="The system prompt.")
    instructions_file: str | None = Field(
        default=None, description="A file holding the system prompt, relative to the YAML file."
    )
    backend: str | None = Field(
        default=None,
        description="The backend to use (default: defaults.backend, else the only one).",
    )
    model: str | None = Field(default=None, description="Model name, overriding the backend's.")
    model_settings: ModelSettingsSpec = Field(
        default_factory=ModelSettingsSpec,
        description="Settings over defaults.model_settings.",
    )
    tools: list[str] = Field(default_factory=list, description="Names of entries in `tools`.")
    agent_tools: list[_AgentToolEntry] = Field(
        default_factory=list, description="Agents this agent can call as tools."
    )
    handoffs: list[str] = Field(
        default_factory=list, description="Agents this agent can hand the conversation to."
    )
    output_schema: dict[str, Any] | None = Field(
        default=None, description="A JSON Schema the final answer must match (structured output)."
    )
    max_turns: int | None = Field(
        default=None, gt=0, description="Most model turns in one run (default: defaults.max_turns)."
    )

    @model_validator(mode="after")
    def _one_instructions_source(self) -> AgentSpec:
        if self.instructions is not None and self.instructions_file is not None:
            raise PydanticCustomError(
                "instructions_conflict", "`instructions` and `instructions_file` are both set"
            )
        return self


class DefaultsSpec(_Spec):
    """Values for every agent that does not set its own."""

    backend: str | None = Field(default=None, description="The backend of agents that name none.")
    model_settings: ModelSettingsSpec = Field(
        default_factory=ModelSettingsSpec, description="Settings under each agent's own."
    )
    max_turns: int = Field(default=10, gt=0, description="Most model turns in one run.")
    tool_timeout_s: float = Field(
        default=30, gt=0, description="Time limit of one tool call, in seconds."
    )
    tool_max_output_chars: int = Field(
        default=20000,
        gt=0,
        description="Longest tool result sent back to the model, in characters.",
    )


class SessionsSpec(_Spec):
    """Where conversation sessions are stored."""

    path: str = Field(
        default=".agent-runtime/sessions.sqlite3",
        description="SQLite file, relative to the YAML file.",
    )


class TracingSpec(_Spec):
    """Local tracing: nothing is sent to any cloud."""

    enabled: bool = Field(default=True, description="Write a trace of each run.")
    path: str = Field(
        default=".agent-runtime/traces.jsonl", description="JSONL file, relative to YAML."
    )
    include_sensitive_data: bool = Field(
        default=True, description="Include prompts, tool arguments and outputs in traces."
    )


class RuntimeConfig(_Spec):
    """agents.yaml: backends, tools and agents."""

    version: Literal[1] = Field(description="Version of this format; 1.")
    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec, description="Shared defaults.")
    backends: dict[str, BackendSpec] = Field(min_length=1, description="Model servers by name.")
    tools: dict[str, ToolSpec] = Field(default_factory=dict, description="Function tools by name.")
    agents: dict[str, AgentSpec] = Field(min_length=1, description="Agents by name.")
    sessions: SessionsSpec = Field(default_factory=SessionsSpec, description="Session storage.")
    tracing: TracingSpec = Field(default_factory=TracingSpec, description="Local tracing.")


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
    """

    spec: RuntimeConfig
    source: str
    base_dir: Path
    functions: Mapping[str, Callable[..., Any]]
    instructions: Mapping[str, str | None]
    tool_names: Mapping[str, str] = field(default_factory=dict)

    def _agent(self, agent: str) -> AgentSpec:
        try:
            return self.spec.agents[agent]
        except KeyError:
            raise KeyError(_unknown("agent", agent, self.spec.agents)) from None

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

    def agent_tools_of(self, agent: str) -> tuple[AgentToolSpec, ...]:
        """The agent's `agent_tools` as specs, each with its tool name filled in."""
        specs = []
        for entry in self._agent(agent).agent_tools:
            spec = AgentToolSpec(agent=entry) if isinstance(entry, str) else entry
            specs.append(spec.model_copy(update={"name": _agent_tool_name(spec)}))
        return tuple(specs)

    def resolve_path(self, path: str) -> Path:
        """`path` relative to the YAML file's folder (as `sessions.path` and `tracing.path` are)."""
        return self.base_dir / Path(path).expanduser()


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Load and check an agents.yaml file; relative paths and tool modules start at its folder.

    Args:
        path: the YAML file.
        environ: variables for `${VAR}` interpolation (default: `os.environ`).

    Raises:
        ConfigError: the file cannot be read or has problems; every problem is listed.
    """
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([_file_problem(source, f"cannot read {source}: {reason}")]) from None
    except UnicodeDecodeError as exc:
        message = f"cannot read {source}: not UTF-8 text ({exc.reason} at byte {exc.start})"
        raise ConfigError([_file_problem(source, message)]) from None
    base_dir = Path(os.path.abspath(path)).parent
    return parse_config(text, source=source, base_dir=base_dir, environ=environ)


def parse_config(
    text: str,
    *,
    source: str = "agents.yaml",
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Parse and check agents.yaml text.

    Args:
        text: the YAML document.
        source: the file name to show in problems.
        base_dir: where `instructions_file` and tool modules are looked up (default: the cwd).
        environ: variables for `${VAR}` interpolation (default: `os.environ`).

    Raises:
        ConfigError: the document has problems; every problem is listed, sorted by position.
    """
    base = Path(os.path.abspath(base_dir if base_dir is not None else Path.cwd()))
    doc = compose(
        text, source=source, environ=os.environ if environ is None else environ, is_secret=_secret
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
            _report_validation_error(doc, error)
    functions, tool_names = _import_tools(doc, data, base)
    instructions = _AgentChecker(doc, data, tool_names, base).check()
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
    )


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of agents.yaml, for editors and `agent-runtime schema`."""
    schema = _allow_interpolation(RuntimeConfig.model_json_schema())
    schema["title"] = "agents.yaml"
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


def import_function(reference: str, base_dir: Path) -> Callable[..., Any]:
    """Import `package.module:function`, looking first in `base_dir`, then on `sys.path`.

    When `base_dir` holds the top package (`base_dir/package/` or `base_dir/package.py`), it is
    imported from there without touching `sys.path`, so a `tools/` package next to agents.yaml
    works from any working directory. A module of that name imported earlier from elsewhere is a
    conflict, not silently reused.

    Raises:
        ToolResolutionError: the reference is malformed, cannot be imported, or is not callable.
    """
    match = _REFERENCE.fullmatch(reference)
    if match is None:
        raise ToolResolutionError(f"expected {_REFERENCE_FORM}, got {reference!r}")
    module_name, attribute = match["module"], match["attr"]
    base = Path(os.path.abspath(base_dir))
    top = module_name.partition(".")[0]
    try:
        local = PathFinder.find_spec(top, [str(base)])
        if local is not None:
            _import_top_from(top, local, module_name)
        module = importlib.import_module(module_name)
    except ToolResolutionError:
        raise
    except Exception as exc:
        raise ToolResolutionError(
            f"cannot import `{module_name}` (looked in {base} and on sys.path): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    try:
        function = getattr(module, attribute)
    except AttributeError:
        names = [name for name in dir(module) if not name.startswith("_")]
        raise ToolResolutionError(
            f"module `{module_name}` has no attribute `{attribute}`"
            + did_you_mean(attribute, names)
        ) from None
    except Exception as exc:  # a module-level __getattr__ may raise anything
        raise ToolResolutionError(
            f"getting `{attribute}` from module `{module_name}` failed: {type(exc).__name__}: {exc}"
        ) from exc
    if not callable(function):
        raise ToolResolutionError(f"`{reference}` is not callable")
    return function  # type: ignore[no-any-return]  # callable() narrows to Callable[..., object]


def _import_top_from(top: str, spec: ModuleSpec, module_name: str) -> None:
    """Put the top-level module found next to the YAML file into `sys.modules` (once)."""
    wanted = _spec_locations(spec)
    existing = sys.modules.get(top)
    if existing is not None:
        found = _module_locations(existing)
        if wanted & found:
            return
        elsewhere = ", ".join(sorted(str(p) for p in found)) or "built in"
        raise ToolResolutionError(
            f"cannot import `{module_name}` from {', '.join(sorted(str(p) for p in wanted))}: "
            f"another module `{top}` is already imported (from {elsewhere}); rename one of them"
        )
    module = importlib.util.module_from_spec(spec)
    if spec.origin is None and spec.submodule_search_locations is not None:
        # A namespace package would re-scan sys.path for its parts; pin it to this folder.
        module.__path__ = list(spec.submodule_search_locations)
    sys.modules[top] = module
    try:
        assert spec.loader is not None  # module_from_spec sets one for namespace packages
        spec.loader.exec_module(module)
    except BaseException:
        if sys.modules.get(top) is module:
            del sys.modules[top]
        raise


def _spec_locations(spec: ModuleSpec) -> set[Path]:
    if spec.origin is not None and spec.has_location:
        return {Path(spec.origin).resolve()}
    return {Path(p).resolve() for p in spec.submodule_search_locations or ()}


def _module_locations(module: types.ModuleType) -> set[Path]:
    file = getattr(module, "__file__", None)
    if isinstance(file, str):
        return {Path(file).resolve()}
    return {Path(p).resolve() for p in getattr(module, "__path__", None) or ()}


# --- checks -------------------------------------------------------------------------------------


def _secret(loc: Loc) -> bool:
    """Whether the value at `loc` may hold a secret, so that no message may quote it."""
    if not loc:
        return False
    return loc[-1] == "api_key" or any(p in ("headers", "extra_headers") for p in loc[:-1])


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


def _report_validation_error(doc: Document, error: ErrorDetails) -> None:
    """Place one pydantic error; the messages specific to agents.yaml are made here."""
    raw = error["loc"]
    loc = tuple(  # drop the union tags pydantic puts after an `agent_tools` index
        part
        for i, part in enumerate(raw)
        if not (part in _UNION_TAGS and i >= 2 and raw[i - 2] == "agent_tools")
    )
    kind, value = error["type"], error["input"]
    field_name = loc[-1] if loc else ""
    if doc.is_tainted(loc) or kind == "instructions_conflict":  # see _read_instructions
        return
    if kind == "literal_error" and field_name == "reasoning_effort" and isinstance(value, str):
        doc.report(
            loc,
            f"reasoning_effort {value!r} is not supported: "
            "vLLM's gpt-oss accepts only 'low', 'medium' or 'high'",
        )
    elif kind == "literal_error" and field_name == "tool_choice" and isinstance(value, str):
        doc.report(
            loc,
            f"tool_choice {value!r} is not supported: vLLM's gpt-oss Responses API answers "
            "anything but 'auto' or 'none' with 501 Not Implemented",
        )
    elif kind == "model_type" and "agent_tools" in loc:
        doc.report(loc, f"expected an agent name or a mapping with `agent:`, got {kind_of(value)}")
    elif kind == "too_short" and loc in (("backends",), ("agents",)):
        doc.report(loc, f"declare at least one entry under `{loc[0]}`")
    else:
        report_validation_error(doc, loc, error, root=RuntimeConfig, is_secret=_secret)


def _import_tools(
    doc: Document, data: dict[str, Any], base_dir: Path
) -> tuple[dict[str, Callable[..., Any]], dict[str, str]]:
    """Import every tool's function; the names the model will see, checked for harmony."""
    functions: dict[str, Callable[..., Any]] = {}
    names: dict[str, str] = {}
    for key, tool in _entries(data.get("tools")):
        loc: Loc = ("tools", key)
        name = tool.get("name")
        if isinstance(name, str) and not doc.is_tainted((*loc, "name")):
            if _TOOL_NAME.fullmatch(name):
                names[key] = name
            else:
                doc.report((*loc, "name"), _bad_tool_name(name))
        reference = tool.get("function")
        if not isinstance(reference, str) or doc.is_tainted((*loc, "function")):
            continue
        try:
            functions[key] = function = import_function(reference, base_dir)
        except ToolResolutionError as exc:
            doc.report((*loc, "function"), str(exc))
            continue
        if name is None:
            own_name = getattr(function, "__name__", "")
            if isinstance(own_name, str) and _TOOL_NAME.fullmatch(own_name):
                names[key] = own_name
            else:
                doc.report((*loc, "function"), _bad_tool_name(own_name, " (the function's name)"))
    return functions, names


def _bad_tool_name(name: object, origin: str = "") -> str:
    fix = "set `name:` to" if origin else "use"
    return (
        f"tool name {name!r}{origin} is not valid for gpt-oss: {fix} letters, digits and _ only, "
        f"e.g. {_sanitize(str(name))!r} (other characters break vLLM's harmony parser, vllm#23567)"
    )


def _sanitize(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "tool"
    return cleaned if _TOOL_NAME.fullmatch(cleaned) else f"_{cleaned}"


def _agent_tool_name(spec: AgentToolSpec) -> str:
    return spec.name or spec.agent.replace("-", "_")


class _AgentChecker:
    """Cross-checks agents against backends, tools and each other, and reads instruction files.

    Works on the raw document, so that these problems are reported together with the schema's.
    """

    def __init__(
        self, doc: Document, data: dict[str, Any], tool_names: Mapping[str, str], base_dir: Path
    ) -> None:
        self.doc, self.tool_names, self.base_dir = doc, tool_names, base_dir
        self.backends, self.tools = _names(data.get("backends")), _names(data.get("tools"))
        self.agents = _names(data.get("agents"))
        defaults = data.get("defaults")
        self.default_backend = defaults.get("backend") if isinstance(defaults, dict) else None
        self.graph: dict[str, list[tuple[str, Loc]]] = {}  # agents-as-tools edges
        self.instructions: dict[str, str | None] = {}

    def check(self) -> dict[str, str | None]:
        self.refers(("defaults", "backend"), self.default_backend, "backend", self.backends)
        for name, agent in _entries(self.agents):
            self.check_agent(name, agent)
        _check_agent_tool_cycles(self.doc, self.graph)
        _check_output_schemas(self.doc, self.agents)
        return self.instructions

    def refers(self, loc: Loc, value: Any, kind: str, names: Mapping[str, Any]) -> bool:
        """Report `value` at `loc` when it names no entry in `names`; True when it does."""
        if not isinstance(value, str) or self.doc.is_tainted(loc) or not names:
            return False
        if value not in names:
            self.doc.report(loc, _unknown(kind, value, names))
            return False
        return True

    def check_agent(self, agent_name: str, agent: dict[str, Any]) -> None:
        doc, loc = self.doc, ("agents", agent_name)
        backend = agent.get("backend")
        self.refers((*loc, "backend"), backend, "backend", self.backends)
        if backend is None and not isinstance(self.default_backend, str) and len(self.backends) > 1:
            doc.report(
                loc,
                "no backend for this agent: set `backend:` on the agent or `defaults.backend` "
                f"(declared: {', '.join(repr(name) for name in self.backends)})",
                at="key",
            )
        self.instructions[agent_name] = _read_instructions(doc, loc, agent, self.base_dir)
        used: dict[str, Loc] = {}  # tool names the model will see -> where they come from
        seen: dict[tuple[str, str | None], int] = {}  # (agent, name) of agent_tools entries
        for i, key in _unique_names(doc, (*loc, "tools"), agent.get("tools"), "tool"):
            if self.refers((*loc, "tools", i), key, "tool", self.tools) and key in self.tool_names:
                self.use(used, self.tool_names[key], (*loc, "tools", i))
        self.graph[agent_name] = []
        for i, entry in _list(agent.get("agent_tools")):
            spec = entry if isinstance(entry, dict) else {"agent": entry}
            target, name = spec.get("agent"), spec.get("name")
            if isinstance(target, str) and isinstance(name, str | None):
                if (target, name) in seen:
                    first = f"agent_tools[{seen[target, name]}]"
                    message = f"duplicate agent tool {target!r} (already at {first})"
                    doc.report((*loc, "agent_tools", i), message)
                    continue
                seen[target, name] = i
            self.check_agent_tool(agent_name, (*loc, "agent_tools", i), entry, used)
        # Handoffs between different agents may form cycles (triage -> billing -> triage is a
        # common pattern): each handoff ends the current agent's turn and runs are bounded by
        # max_turns. Only an agent handing off to itself is certainly a mistake.
        for i, target in _unique_names(doc, (*loc, "handoffs"), agent.get("handoffs"), "handoff"):
            where = (*loc, "handoffs", i)
            if self.refers(where, target, "agent", self.agents) and target == agent_name:
                doc.report(where, "an agent cannot hand off to itself")

    def check_agent_tool(self, agent_name: str, loc: Loc, entry: Any, used: dict[str, Loc]) -> None:
        spec = entry if isinstance(entry, dict) else {"agent": entry}
        target, name = spec.get("agent"), spec.get("name")
        target_loc = loc if isinstance(entry, str) else (*loc, "agent")
        if not isinstance(target, str) or not self.refers(target_loc, target, "agent", self.agents):
            return
        self.graph[agent_name].append((target, loc))
        if name is None:
            name = target.replace("-", "_")
            if not _TOOL_NAME.fullmatch(name):
                self.doc.report(target_loc, _bad_tool_name(name, " (from the agent's name)"))
                return
        elif not isinstance(name, str) or self.doc.is_tainted((*loc, "name")):
            return
        elif not _TOOL_NAME.fullmatch(name):
            self.doc.report((*loc, "name"), _bad_tool_name(name))
            return
        self.use(used, name, loc)

    def use(self, used: dict[str, Loc], name: str, where: Loc) -> None:
        if name in used:
            self.doc.report(
                where,
                f"tool name {name!r} is already used by {format_loc(used[name][2:])}; "
                "give one of them another `name:`",
            )
        else:
            used[name] = where


def _unique_names(doc: Document, loc: Loc, value: Any, what: str) -> list[tuple[int, str]]:
    """The string entries of a list of names, reporting repeated ones."""
    seen: dict[str, int] = {}
    unique = []
    for i, name in _list(value):
        if not isinstance(name, str):
            continue
        if name in seen:
            doc.report((*loc, i), f"duplicate {what} {name!r} (already at {loc[-1]}[{seen[name]}])")
            continue
        seen[name] = i
        unique.append((i, name))
    return unique


def _read_instructions(doc: Document, loc: Loc, agent: dict[str, Any], base: Path) -> str | None:
    inline, file = agent.get("instructions"), agent.get("instructions_file")
    if inline is not None and file is not None:
        doc.report(
            (*loc, "instructions_file"),
            "`instructions` and `instructions_file` are both set; keep one",
            at="key",
        )
        return None
    if not isinstance(file, str) or doc.is_tainted((*loc, "instructions_file")):
        return inline if isinstance(inline, str) else None
    path = base / Path(file).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        doc.report((*loc, "instructions_file"), f"cannot read instructions file {path}: {reason}")
    except UnicodeDecodeError:
        doc.report((*loc, "instructions_file"), f"instructions file {path} is not UTF-8 text")
    return None


def _check_agent_tool_cycles(doc: Document, graph: Mapping[str, list[tuple[str, Loc]]]) -> None:
    """Agents calling each other as tools (a -> b -> a) would nest calls forever."""
    done: set[str] = set()
    stack: list[str] = []

    def visit(agent: str) -> None:
        stack.append(agent)
        for target, where in graph.get(agent, ()):
            if target in stack:
                cycle = " -> ".join([*stack[stack.index(target) :], target])
                doc.report(
                    where,
                    f"agents used as tools form a cycle that can never finish: {cycle}; "
                    "remove one of these `agent_tools` entries",
                )
            elif target not in done:
                visit(target)
        stack.pop()
        done.add(agent)

    for agent in graph:
        if agent not in done:
            visit(agent)


def _check_output_schemas(doc: Document, agents: Mapping[str, Any]) -> None:
    schemas = {
        name: agent["output_schema"]
        for name, agent in _entries(agents)
        if isinstance(agent.get("output_schema"), dict)
    }
    if not schemas:
        return
    # jsonschema is slow to import; only documents with output schemas pay for it.
    from jsonschema import (
        Draft202012Validator,
        SchemaError,
        validators,
    )

    for name, schema in schemas.items():
        loc: Loc = ("agents", name, "output_schema")
        if doc.is_tainted(loc):
            continue
        try:
            validators.validator_for(schema, default=Draft202012Validator).check_schema(schema)
        except SchemaError as exc:
            doc.report((*loc, *exc.path), f"invalid JSON Schema: {exc.message}")


def _entries(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """The (name, mapping) entries of a section, skipping what the schema check reports."""
    if not isinstance(value, dict):
        return []
    return [(name, entry) for name, entry in value.items() if isinstance(entry, dict)]


def _names(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []


def _unknown(kind: str, value: str, names: Mapping[str, Any]) -> str:
    hint = did_you_mean(value, list(names), quote="'")
    if hint:
        return f"unknown {kind} {value!r}{hint}"
    return f"unknown {kind} {value!r} (declared: {', '.join(repr(n) for n in names)})"


def _file_problem(source: str, message: str) -> ConfigProblem:
    return ConfigProblem(file=source, line=None, column=None, path="", message=message)
