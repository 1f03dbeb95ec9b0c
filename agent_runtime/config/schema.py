"""The agents.yaml schema: pydantic models with `extra="forbid"`, each field described, so that
the JSON Schema (`agent-runtime schema`) documents itself; plus the URL checks they use.

Values are validated once here; nothing downstream re-validates them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from agent_runtime.config.durability import DurabilitySpec
from agent_runtime.config.mcp import McpServerSpec
from agent_runtime.redact import redact_text
from agent_runtime.text import kind_of

__all__ = [
    "REFERENCE",
    "TOOL_CHOICES",
    "TOOL_NAME",
    "AgentSpec",
    "AgentToolSpec",
    "BackendSpec",
    "DefaultsSpec",
    "EngineSpec",
    "ModelSettingsSpec",
    "RuntimeConfig",
    "ServeSpec",
    "SessionsSpec",
    "ToolSpec",
    "TracingSpec",
    "agent_tool_name",
    "clean_secret",
    "is_loopback",
    "is_secret",
    "launch_problem",
    "url_problem",
]

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
REFERENCE = re.compile(rf"(?P<module>{_IDENTIFIER}(?:\.{_IDENTIFIER})*):(?P<attr>{_IDENTIFIER})")
"""A tool reference: `package.module:function`."""

# gpt-oss renders tool names into harmony headers (`to=functions.NAME`); other characters break
# vLLM's parser ("unexpected tokens remaining in message header", vllm#23567).
TOOL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def clean_secret(value: str, *, what: str = "the API key") -> str:
    """`value` (an API key or a header value) without surrounding whitespace and line breaks
    (a `.env` file saved with CRLF line ends leaves a `\\r`).

    Raises:
        ValueError: a control character or a character that is not ASCII is inside it; the
            message says which and where, never the value.
    """
    value = value.strip()
    for index, char in enumerate(value):
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            kind = "a line break" if char in "\r\n" else "a control character"
            raise ValueError(
                f"{what} has {kind} (U+{code:04X}) inside it, at character "
                f"{index + 1}; it must be one line of printable text. Check where "
                "it comes from (a .env file, an environment variable)"
            )
        if code > 0x7E:
            raise ValueError(
                f"{what} has a character that is not ASCII (U+{code:04X}) at "
                f"character {index + 1}; HTTP headers carry ASCII only. Check where "
                "it comes from (a .env file, an environment variable)"
            )
    return value


def _clean_key(value: SecretStr) -> SecretStr:
    return SecretStr(_checked(value.get_secret_value(), "the API key"))


def _clean_header_value(value: str) -> str:
    return _checked(value, "the header value")


def _checked(value: str, what: str) -> str:
    try:
        return clean_secret(value, what=what)
    except ValueError as exc:
        raise PydanticCustomError("secret_value", str(exc)) from None


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def _check_header_names(headers: dict[str, str]) -> dict[str, str]:
    for name in headers:
        if not _HEADER_NAME.fullmatch(name):
            raise PydanticCustomError(
                "header_name",
                "{name} is not a valid HTTP header name (letters, digits and !#$%&'*+-.^_`|~ "
                "only, no spaces)",
                {"name": repr(name) if len(name) <= 60 else repr(name[:56]) + "..."},
            )
    return headers


_HeaderValue = Annotated[str, AfterValidator(_clean_header_value)]
_Headers = Annotated[dict[str, _HeaderValue], AfterValidator(_check_header_names)]


def _check_base_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise PydanticCustomError(
            "url_scheme", "expected an http:// or https:// URL, e.g. http://localhost:8000/v1"
        )
    problem = url_problem(value)
    if problem is not None:
        raise PydanticCustomError("url_invalid", problem)
    return value


_URL_PATTERN = r"^(https?://|\$\{)"
_BaseUrl = Annotated[
    str, AfterValidator(_check_base_url), Field(json_schema_extra={"pattern": _URL_PATTERN})
]


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
    tool_choice: str | None = Field(
        default=None,
        description="auto (the model decides), none (no tool calls), required (a tool call, "
        "any tool) or the name of one of the agent's tools (a call to it). required and a name "
        "need vLLM >= 0.27 (the Responses API answered them with 501 before), and vLLM's tool "
        "parser flags to be enforced.",
        json_schema_extra={"pattern": f"^{TOOL_NAME.pattern}$"},
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
    extra_headers: _Headers | None = Field(
        default=None,
        repr=False,
        description="Extra HTTP headers for each request (surrounding whitespace is removed).",
    )

    @field_validator("tool_choice")
    @classmethod
    def _check_tool_choice(cls, value: str | None) -> str | None:
        return _check_tool_choice(value)


TOOL_CHOICES = ("auto", "none", "required")
"""The `tool_choice` words; anything else names a tool."""


def _check_tool_choice(value: str | None) -> str | None:
    if value is None or value in TOOL_CHOICES or TOOL_NAME.fullmatch(value):
        return value
    raise PydanticCustomError(
        "tool_choice",
        "expected auto, none, required or the name of one of the agent's tools, got {value}",
        {"value": repr(value) if len(value) <= 60 else repr(value[:56]) + "..."},
    )


class EngineSpec(_Spec):
    """vLLM's engine in this process (`kind: vllm-embedded`)."""

    tensor_parallel_size: int = Field(default=1, ge=1, description="GPUs to shard the model on.")
    gpu_memory_utilization: float = Field(
        default=0.9, gt=0, le=1, description="Share of GPU memory vLLM may use."
    )
    max_model_len: int | None = Field(
        default=None, gt=0, description="Context length (default: the model's, 131072)."
    )
    prefix_reuse: Literal["exact", "rerender"] = Field(
        default="exact",
        description="exact: continue a tool loop from the exact tokens generated (the prefix "
        "cache keeps the whole conversation); rerender: render every turn as vLLM's server does.",
    )


class BackendSpec(_Spec):
    """A model server: vLLM serving gpt-oss, any OpenAI-compatible server, or vLLM in process."""

    kind: Literal["vllm", "openai", "vllm-embedded"] = Field(
        default="vllm",
        description="vllm, openai (compatible), or vllm-embedded (vLLM's engine in this process: "
        "the `vllm` extra and a CUDA GPU).",
    )
    api: Literal["responses", "chat_completions"] = Field(
        default="responses", description="The API to call: responses (default) or chat_completions."
    )
    base_url: str | None = Field(
        default=None,
        description="The API's base URL, e.g. http://localhost:8000/v1 (not for vllm-embedded).",
        json_schema_extra={"pattern": _URL_PATTERN},
    )
    base_urls: list[_BaseUrl] | None = Field(
        default=None,
        description="Several replicas of one model server, instead of base_url: each call goes "
        "to the replica with the fewest requests in flight; a replica that refuses connections "
        "or answers 5xx is skipped for down_for_s, and the call retried on another (within "
        "max_retries and retry_budget_s).",
    )
    affinity: Literal["none", "session"] = Field(
        default="none",
        description="base_urls only: session keeps the model calls of one session on one "
        "replica (vLLM's prefix cache keeps the conversation), moving only when it is down; "
        "none balances every call.",
    )
    health_check_s: float | None = Field(
        default=5,
        gt=0,
        description="base_urls only: how often a replica marked down is asked `GET /models`, "
        "in seconds; it is used again once it answers 200. null: no health checks.",
    )
    down_for_s: float = Field(
        default=30,
        gt=0,
        description="base_urls only: how long a replica that failed is skipped before a call "
        "tries it again, in seconds.",
    )
    engine: EngineSpec | None = Field(
        default=None, description="vllm-embedded only: the engine's settings."
    )
    api_key: Annotated[SecretStr, AfterValidator(_clean_key)] = Field(
        default=SecretStr("EMPTY"),
        description="API key; EMPTY for a vLLM server started without --api-key. Surrounding "
        "whitespace and line breaks are removed; it never appears in errors, logs or traces.",
        json_schema_extra={"default": "EMPTY"},
    )
    model: str = Field(description="Model name as the server knows it, e.g. openai/gpt-oss-20b.")
    timeout_s: float = Field(
        default=120,
        gt=0,
        description="Time limit of one model call (one attempt), in seconds, streaming included.",
    )
    max_retries: int = Field(
        default=2,
        ge=0,
        description="Retries of a failed model call: connection errors, time-outs, 429, 5xx, "
        "a stream cut before its end, an empty answer or one with only reasoning, an HTTP 200 "
        "whose body is not an answer (HTML, empty, invalid JSON, an error body). Never "
        "400/401/404/501.",
    )
    retry_budget_s: float = Field(
        default=120,
        ge=0,
        description="Most time one model call may spend on failed attempts and waits before "
        "retrying, in seconds.",
    )
    retry_delay_s: float = Field(
        default=0.5,
        ge=0,
        description="Wait before the first retry; it doubles each time (with jitter).",
    )
    retry_max_delay_s: float = Field(
        default=10, ge=0, description="Longest wait between retries, in seconds."
    )
    max_response_bytes: int = Field(
        default=64 * 1024 * 1024,
        gt=0,
        description="Most bytes one answer of the server may have: a whole body, or all the "
        "events of a stream together, counted as they arrive. Past it the call ends with an "
        "error (not retried). Default 64 MiB.",
    )
    reasoning_field: Literal["reasoning", "reasoning_content"] = Field(
        default="reasoning",
        description="chat_completions only: the assistant field that carries reasoning back "
        "(reasoning_content for vLLM < 0.11.1).",
    )
    headers: _Headers = Field(
        default_factory=dict,
        repr=False,
        description="Extra HTTP headers for every request (surrounding whitespace is removed); "
        "their values never appear in errors, logs or traces.",
    )
    launch: Literal["never", "auto"] = Field(
        default="never",
        description="auto: when nothing answers at base_url (a local address), start `vllm "
        "serve MODEL` with gpt-oss's tool-calling flags, wait until it is ready, and stop it on "
        "exit; a server already running there is used as it is. never: only connect.",
    )
    serve_args: list[str] = Field(
        default_factory=list,
        description="Extra arguments appended to the launch command (launch: auto), e.g. "
        "[--max-model-len, '32768', --gpu-memory-utilization, '0.95'].",
    )
    launch_command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="The whole command that starts the server, instead of `vllm serve {model} "
        "--host {host} --port {port}` plus gpt-oss's flags; {model}, {host} and {port} are "
        "filled in and serve_args appended.",
    )
    startup_timeout_s: float = Field(
        default=900,
        gt=0,
        description="How long a launched server may take to become ready (downloading and "
        "loading the model), in seconds.",
    )

    @field_validator("base_url")
    @classmethod
    def _check_url(cls, value: str | None) -> str | None:
        return None if value is None else _check_base_url(value)

    @field_validator("base_urls")
    @classmethod
    def _check_urls(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise PydanticCustomError(
                "base_urls_empty",
                "expected at least one URL, e.g. [http://gpu-1:8000/v1, http://gpu-2:8000/v1]",
            )
        seen: set[str] = set()
        for url in value:
            key = url.rstrip("/")
            if key in seen:
                raise PydanticCustomError(
                    "base_urls_duplicate",
                    "{url} is listed twice; list each replica once",
                    {"url": _shown(url)},
                )
            seen.add(key)
        return value

    @field_validator("launch")
    @classmethod
    def _check_launch(cls, value: str, info: ValidationInfo) -> str:
        if value == "auto" and info.data.get("base_urls"):
            raise PydanticCustomError(
                "launch_replicas",
                "launch: auto starts one server, but this backend has several replicas "
                "(base_urls); start them yourself and set `launch: never`, or use base_url",
            )
        base_url = info.data.get("base_url")
        if value == "auto" and isinstance(base_url, str):
            problem = launch_problem(base_url)
            if problem is not None:
                raise PydanticCustomError("launch_url", problem)
        return value

    @model_validator(mode="after")
    def _check_kind(self) -> BackendSpec:
        if self.kind == "vllm-embedded":
            server_fields = [
                f"`{name}`"
                for name, unset in (
                    ("base_url", self.base_url is None),
                    ("base_urls", self.base_urls is None),
                    ("launch", self.launch == "never"),
                )
                if not unset
            ]
            if server_fields:
                raise PydanticCustomError(
                    "embedded_url",
                    "{fields} cannot be used with kind vllm-embedded, which runs vLLM in this "
                    "process: remove {them}, or use kind vllm for a server",
                    {
                        "fields": " and ".join(server_fields),
                        "them": "them" if len(server_fields) > 1 else "it",
                    },
                )
        elif self.base_url is not None and self.base_urls is not None:
            raise PydanticCustomError(
                "base_urls_conflict",
                "`base_url` and `base_urls` are both set; use base_url for one server, or "
                "base_urls for several replicas of it",
            )
        elif self.base_url is None and self.base_urls is None:
            raise PydanticCustomError(
                "base_url_missing",
                "missing required field `base_url` (only kind vllm-embedded needs no server)",
            )
        elif self.engine is not None:
            raise PydanticCustomError(
                "engine_kind", "`engine` is for kind vllm-embedded only (vLLM in this process)"
            )
        return self

    @property
    def urls(self) -> tuple[str, ...]:
        """The base URL of each server: `base_urls`, or `base_url` alone; none in process."""
        if self.base_urls is not None:
            return tuple(self.base_urls)
        return () if self.base_url is None else (self.base_url,)

    @property
    def url(self) -> str:
        """Where this backend's model runs, for messages: its base URL, its replicas' joined
        with `, `, or `in-process vLLM`."""
        return ", ".join(self.urls) or "in-process vLLM"


class ToolSpec(_Spec):
    """A Python function the model can call."""

    function: str = Field(
        description="Where the function is: package.module:function (relative to the YAML "
        "file's folder, else on sys.path).",
        json_schema_extra={"pattern": f"^{REFERENCE.pattern}$"},
    )
    name: str | None = Field(
        default=None,
        description="The name the model sees (default: the function's name); letters, digits "
        "and _ only, as gpt-oss requires.",
        json_schema_extra={"pattern": f"^{TOOL_NAME.pattern}$"},
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
    idempotent: bool = Field(
        default=True,
        description="Durable runs: a call interrupted by a crash may run again when the run "
        "is recovered. false: it is not run again; the model is told it was interrupted.",
    )
    approval: Literal["always", "never"] = Field(
        default="never",
        description="always: a person approves each call before it runs (the run stops with "
        "the call pending; the CLI asks). never: calls run at once.",
    )


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


def _tool_kind(value: Any) -> str:
    return "tool-name" if isinstance(value, str) else "agent-tool"


_ToolEntry = Annotated[
    Annotated[str, Tag("tool-name")] | Annotated[AgentToolSpec, Tag("agent-tool")],
    Discriminator(_tool_kind),
]
AGENT_TOOL_TAGS = ("agent-name", "agent-tool", "tool-name")
"""The union tags pydantic puts in error locations after an index of `agent_tools` or `tools`."""


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
    tools: list[_ToolEntry] = Field(
        default_factory=list,
        description="Names of entries in `tools`; or another agent to call as a tool, "
        "`{agent: NAME, name: ..., description: ...}` (as in `agent_tools`, where it goes).",
    )
    agent_tools: list[_AgentToolEntry] = Field(
        default_factory=list, description="Agents this agent can call as tools."
    )
    handoffs: list[str] = Field(
        default_factory=list, description="Agents this agent can hand the conversation to."
    )
    mcp_servers: list[str] = Field(
        default_factory=list,
        description="Names of entries in `mcp_servers` whose tools this agent can call.",
    )
    output_schema: (
        dict[str, Any] | Annotated[str, Field(pattern=f"^{REFERENCE.pattern}$")] | None
    ) = Field(
        default=None,
        description="What the final answer must be (structured output): a JSON Schema "
        "(final_output is the parsed JSON), or package.module:Type naming a pydantic model, "
        "dataclass or TypedDict (final_output is an instance), found as tool functions are.",
    )
    output_retries: int | None = Field(
        default=None,
        ge=0,
        description="Times a final answer that does not match output_schema is sent back to the "
        "model with what is wrong (default: defaults.output_retries).",
    )
    max_turns: int | None = Field(
        default=None, gt=0, description="Most model turns in one run (default: defaults.max_turns)."
    )
    run_timeout_s: float | None = Field(
        default=None,
        gt=0,
        description="Wall-clock limit of a whole run, in seconds (default: the defaults').",
    )
    max_repeated_calls: int | None = Field(
        default=None,
        ge=0,
        description="Loop guard: the same tool call this many times in a row is refused (default: "
        "defaults.max_repeated_calls).",
    )
    max_invalid_calls: int | None = Field(
        default=None,
        ge=0,
        description="Invalid tool calls in a row before the run ends (default: "
        "defaults.max_invalid_calls).",
    )

    @field_validator("output_schema", mode="before")
    @classmethod
    def _schema_or_reference(cls, value: Any) -> Any:
        if value is None or isinstance(value, dict):
            return value
        if not isinstance(value, str):
            raise PydanticCustomError(
                "output_schema_type",
                "expected a JSON Schema mapping or a 'package.module:Type' reference, got {kind}",
                {"kind": kind_of(value)},
            )
        if not REFERENCE.fullmatch(value):
            raise PydanticCustomError(
                "output_schema_reference",
                "expected a 'package.module:Type' reference (or a JSON Schema mapping), "
                "got {value}",
                {"value": repr(value)},
            )
        return value

    @model_validator(mode="after")
    def _agents_among_tools(self) -> AgentSpec:
        """Agents listed under `tools` join `agent_tools` (after its own entries): `tools`
        keeps the names of function tools only."""
        agents = [entry for entry in self.tools if isinstance(entry, AgentToolSpec)]
        if agents:  # the model is frozen: set once, while it is being made
            object.__setattr__(self, "tools", [e for e in self.tools if isinstance(e, str)])
            object.__setattr__(self, "agent_tools", [*self.agent_tools, *agents])
        return self

    @property
    def tool_keys(self) -> list[str]:
        """The names of the function tools of `tools` (agents given there are in
        `agent_tools`)."""
        return [entry for entry in self.tools if isinstance(entry, str)]

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
    tool_threads: int = Field(
        default=32,
        gt=0,
        description="Most threads running sync tool calls at once, for all agents of a runtime; "
        "more calls wait (within their time limit). A call abandoned at its time limit keeps its "
        "thread until the function returns.",
    )
    run_timeout_s: float | None = Field(
        default=None, gt=0, description="Wall-clock limit of a whole run, in seconds (none)."
    )
    output_retries: int = Field(
        default=1,
        ge=0,
        description="Times a final answer that does not match the agent's output_schema is sent "
        "back to the model with what is wrong, before the run fails.",
    )
    max_repeated_calls: int = Field(
        default=3,
        ge=0,
        description="Loop guard: the same tool with the same arguments this many times in a row "
        "is refused and the model told it repeats itself; twice as many ends the run. 0: off.",
    )
    max_invalid_calls: int = Field(
        default=5,
        ge=0,
        description="Invalid tool calls in a row (bad JSON, bad arguments, unknown tools, a tool "
        "raising ToolRetry) before the run ends. 0: no limit.",
    )


class SessionsSpec(_Spec):
    """Where conversation sessions are stored."""

    path: str = Field(
        default=".agent-runtime/sessions.sqlite3",
        description="SQLite file, relative to the YAML file.",
    )
    keep_days: float | None = Field(
        default=None,
        gt=0,
        description="Forget sessions not used for this many days (checked when a runtime opens "
        "the store, at most once an hour); default: keep them.",
    )


class TracingSpec(_Spec):
    """Local tracing, and OpenTelemetry export when a collector is set: nothing is sent to any
    cloud unless you configure it."""

    enabled: bool = Field(default=True, description="Write a trace of each run.")
    path: str = Field(
        default=".agent-runtime/runs.sqlite3",
        description="Where runs are logged, relative to the YAML file: a SQLite run log "
        "(read by `agent-runtime logs`) when the name ends in .sqlite3, .sqlite or .db, "
        "otherwise a JSON-lines file.",
    )
    include_sensitive_data: bool = Field(
        default=False,
        description="Include prompts, tool arguments, outputs and the run's input in traces "
        "(off by default: they may hold personal data or secrets).",
    )
    keep_days: float | None = Field(
        default=30,
        gt=0,
        description="Remove runs older than this many days from the run log (checked when a "
        "runtime opens it, at most once an hour); null keeps them. JSON-lines files are not "
        "cut.",
    )
    max_field_chars: int = Field(
        default=100_000,
        gt=0,
        description="Longest text kept in one field of a trace record (a tool's output, the "
        "model's output, arguments), in characters; longer text is cut, with a note "
        "`…[truncated N chars]`.",
    )
    otlp_endpoint: str | None = Field(
        default=None,
        description="Also export each run as OpenTelemetry spans (GenAI semantic conventions) "
        "over OTLP/HTTP to this collector, e.g. http://localhost:4318 (`/v1/traces` is added "
        "unless the path ends in it). Default: $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, else "
        "$OTEL_EXPORTER_OTLP_ENDPOINT; with none of them nothing is exported. Needs `pip "
        "install 'agent-runtime[otel]'`.",
        json_schema_extra={"pattern": _URL_PATTERN},
    )
    otlp_headers: _Headers = Field(
        default_factory=dict,
        description="HTTP headers sent to the OTLP collector (an API key...); default: "
        "$OTEL_EXPORTER_OTLP_TRACES_HEADERS, else $OTEL_EXPORTER_OTLP_HEADERS.",
    )
    service_name: str | None = Field(
        default=None,
        min_length=1,
        description="`service.name` of the exported spans (default: $OTEL_SERVICE_NAME, else "
        "`agent-runtime`).",
    )

    @field_validator("otlp_endpoint")
    @classmethod
    def _check_otlp_endpoint(cls, value: str | None) -> str | None:
        if not value:  # `${OTEL_COLLECTOR:-}` left empty: nothing is exported
            return None
        if not value.startswith(("http://", "https://")):
            raise PydanticCustomError(
                "url_scheme",
                "expected the http:// or https:// URL of an OTLP/HTTP collector, e.g. "
                "http://localhost:4318",
            )
        problem = url_problem(value)
        if problem is not None:
            raise PydanticCustomError("url_invalid", problem)
        return value


def _clean_serve_key(value: SecretStr) -> SecretStr:
    key = _checked(value.get_secret_value(), "the API key")
    if not key:
        raise PydanticCustomError(
            "empty_key",
            "the API key is empty, which would let anyone in; set the variable it comes from, "
            "or remove the entry",
        )
    return SecretStr(key)


class ServeSpec(_Spec):
    """`agent-runtime serve`: every agent as an OpenAI-compatible model over HTTP."""

    host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Address to listen on: 127.0.0.1 for this machine only, 0.0.0.0 (or ::) for "
        "every interface.",
    )
    port: int = Field(
        default=8080, ge=0, le=65535, description="Port to listen on; 0 picks a free one."
    )
    api_keys: list[Annotated[SecretStr, AfterValidator(_clean_serve_key)]] = Field(
        default_factory=list,
        description="Keys a client must send as `Authorization: Bearer KEY` (use ${VAR}); none: "
        "no check. They never appear in errors, logs or traces.",
    )
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        gt=0,
        description="Largest request body accepted, in bytes (413 past it). Default 4 MiB.",
    )
    max_runs_per_key: int = Field(
        default=64,
        gt=0,
        description="Runs one API key (without keys: all clients together) may have in flight; "
        "past it 429 with Retry-After.",
    )
    drain_grace_s: float = Field(
        default=30,
        ge=0,
        description="On SIGTERM or Ctrl-C, how long runs in flight may go on, in seconds, while "
        "new requests get 503; runs still going then are cancelled (their input kept in the "
        "session).",
    )
    cors_origins: list[str] = Field(
        default_factory=list,
        description="Origins allowed to call the API from a browser (CORS), e.g. "
        "https://app.example.com, or * for any; none: CORS off.",
    )
    ui: bool | None = Field(
        default=None,
        description="Serve the dev UI at / (default: on when host is a loopback address, off "
        "otherwise).",
    )
    store_limit: int = Field(
        default=10_000,
        gt=0,
        description="Responses kept for GET /v1/responses/{id} and previous_response_id; the "
        "oldest are dropped first.",
    )


def is_loopback(host: str) -> bool:
    """Whether `host` is `localhost` or a loopback address (127.0.0.0/8, ::1): reachable from
    this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class RuntimeConfig(_Spec):
    """agents.yaml: backends, tools and agents."""

    version: Literal[1] = Field(description="Version of this format; 1.")
    defaults: DefaultsSpec = Field(default_factory=DefaultsSpec, description="Shared defaults.")
    backends: dict[str, BackendSpec] = Field(min_length=1, description="Model servers by name.")
    tools: dict[str, ToolSpec] = Field(default_factory=dict, description="Function tools by name.")
    agents: dict[str, AgentSpec] = Field(min_length=1, description="Agents by name.")
    sessions: SessionsSpec = Field(default_factory=SessionsSpec, description="Session storage.")
    tracing: TracingSpec = Field(default_factory=TracingSpec, description="Local tracing.")
    serve: ServeSpec = Field(
        default_factory=ServeSpec, description="`agent-runtime serve`: the HTTP server."
    )
    mcp_servers: dict[str, McpServerSpec] = Field(
        default_factory=dict,
        description="MCP servers by name (stdio commands or streamable HTTP URLs); agents use "
        "their tools by listing them in `mcp_servers`.",
    )
    durability: DurabilitySpec | None = Field(
        default=None,
        description="Durable runs on a database (queued, executed by workers, survive a crash).",
    )


def url_problem(url: str) -> str | None:
    """What is wrong with an http(s) URL that HTTP clients cannot use (None: nothing)."""
    example = "e.g. http://localhost:8000/v1"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"{_shown(url)} is not a valid URL ({redact_text(str(exc))}); {example}"
    host = parts.hostname
    if not host:
        return f"{_shown(url)} has no host; {example}"
    if any(char.isspace() or not char.isprintable() for char in url):
        return f"{_shown(url)} has spaces or control characters; {example}"
    if port == 0:
        return f"{_shown(url)} has port 0; {example}"
    return None


def _shown(url: str) -> str:
    """`url` quoted for a message, its user-info (`user:password@`) masked."""
    return repr(redact_text(url))


def launch_problem(base_url: str) -> str | None:
    """Why a server for `base_url` cannot be started on this machine (None: it can).

    `launch: auto` needs a plain http:// URL on a local address (localhost, a loopback address,
    or 0.0.0.0 / :: for every interface) ending in /v1, where vLLM serves its API.
    """
    parts = urlsplit(base_url)
    fix = "or set `launch: never` and start the server yourself"
    if parts.scheme != "http":
        return (
            f"launch: auto needs an http:// base_url, got {_shown(base_url)}; use http://, {fix}."
        )
    host = parts.hostname or ""
    if not _is_local(host):
        return (
            f"launch: auto starts the server on this machine, but the host of base_url "
            f"{host!r} is not local; use localhost, 127.0.0.1 or 0.0.0.0, {fix}."
        )
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        return f"launch: auto needs a valid port in base_url, got {_shown(base_url)}."
    if parts.path.rstrip("/") != "/v1":
        return (
            f"launch: auto starts vLLM, which serves its API under /v1, but base_url is "
            f"{_shown(base_url)}; end it in /v1, e.g. http://localhost:8000/v1."
        )
    return None


def _is_local(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def is_secret(loc: tuple[str | int, ...]) -> bool:
    """Whether the value at `loc` may hold a secret, so that no message may quote it."""
    if not loc:
        return False
    if loc[-1] in ("api_key", "api_keys"):
        return True
    if loc[0] == "mcp_servers" and "env" in loc[:-1]:
        return True
    return any(p in ("headers", "extra_headers", "api_keys") for p in loc[:-1])


def agent_tool_name(spec: AgentToolSpec) -> str:
    """The tool name the model sees for an agent used as a tool."""
    return spec.name or spec.agent.replace("-", "_")
