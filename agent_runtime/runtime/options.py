"""What one call of `run` / `stream` / `run_sync` asks for beyond agents.yaml, checked before
anything starts: its options, model settings, `tool_choice`, session id; and what each model call
of a run sends (`_model_input`)."""

from __future__ import annotations

import dataclasses
from collections.abc import (
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any

from agent_runtime.config import BackendSpec, Config, ModelSettingsSpec
from agent_runtime.config.schema import TOOL_CHOICES
from agent_runtime.errors import (
    ConfigError,
    ConfigProblem,
)
from agent_runtime.text import did_you_mean, kind_of, show
from agent_runtime.tracing import (
    current_trace,
    in_nested_run,
)

if TYPE_CHECKING:
    from agents import (
        FunctionTool,
    )
    from agents.run_config import CallModelData, ModelInputData


Input = str | Sequence[Mapping[str, Any]]
"""A user message, or Responses-API input items (`{"role": "user", "content": "..."}`, ...)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class _RunOptions:
    """What one call of `run` / `stream` / `run_sync` asks for beyond agents.yaml."""

    max_turns: int
    context: object
    instructions: str | None
    model_settings: ModelSettingsSpec | None
    client_tools: tuple[FunctionTool, ...] = ()


def _with_overrides(
    config: Config, *, base_url: str | None, model: str | None, api_key: str | None
) -> Config:
    changes: dict[str, Any] = {}
    if base_url is not None:
        changes["base_url"] = base_url
        changes["base_urls"] = None  # that server instead of the replicas
        changes["launch"] = "never"  # use that server: start none
    if model is not None:
        changes["model"] = model
    if api_key is not None:
        from pydantic import SecretStr

        from agent_runtime.config import clean_secret

        try:
            changes["api_key"] = SecretStr(clean_secret(api_key, what="the api_key argument"))
        except ValueError as exc:
            raise config.error("api_key", str(exc)) from None
    if not changes:
        return config
    backends = {
        name: backend.model_copy(update=changes | _served(backend, base_url))
        for name, backend in config.spec.backends.items()
    }
    spec = config.spec.model_copy(update={"backends": backends})
    return dataclasses.replace(config, spec=spec)


def _served(backend: BackendSpec, base_url: str | None) -> dict[str, Any]:
    """A base_url given for an in-process backend means: use the vLLM server there instead."""
    if base_url is None or backend.kind != "vllm-embedded":
        return {}
    return {"kind": "vllm", "engine": None}


def _as_items(input: Input) -> list[Any]:
    if isinstance(input, str):
        return [{"role": "user", "content": input}]
    return [dict(item) for item in input]


def _is_user_message(item: Any) -> bool:
    return (
        isinstance(item, dict)
        and item.get("role") == "user"
        and item.get("type", "message") == "message"
    )


def _model_input(data: CallModelData[Any], *, instructions: str | None) -> ModelInputData:
    """What each model call of a run sends: finished reasoning dropped, the run's own
    `instructions` added to the agent's."""
    from agents.run_config import ModelInputData

    prepared = _drop_finished_reasoning(data)
    if not instructions:
        return prepared
    own = prepared.instructions
    return ModelInputData(
        input=prepared.input, instructions=f"{own}\n\n{instructions}" if own else instructions
    )


def _drop_finished_reasoning(data: CallModelData[Any]) -> ModelInputData:
    """Resend reasoning of the running turn only, as harmony drops finished turns' reasoning."""
    from agents.run_config import ModelInputData

    items = data.model_data.input
    trace = current_trace.get()
    if trace is not None:
        trace.guard.raise_if_tripped()
        if not in_nested_run.get():
            trace.last_input = items  # what a failed run had produced, up to this model call
    last_user = max((i for i, item in enumerate(items) if _is_user_message(item)), default=0)
    if not any(
        isinstance(item, dict) and item.get("type") == "reasoning" for item in items[:last_user]
    ):
        return data.model_data
    kept = [
        item
        for index, item in enumerate(items)
        if index >= last_user or not (isinstance(item, dict) and item.get("type") == "reasoning")
    ]
    return ModelInputData(input=kept, instructions=data.model_data.instructions)


def _run_model_settings(
    value: ModelSettingsSpec | Mapping[str, Any] | None, call: str
) -> ModelSettingsSpec | None:
    """A run's `model_settings=` checked as agents.yaml's are (`ConfigError` naming each
    problem)."""
    if value is None or isinstance(value, ModelSettingsSpec):
        return value
    if not isinstance(value, Mapping):
        raise _settings_error(
            call,
            {"": f"expected a mapping of settings or a `ModelSettingsSpec`, got {kind_of(value)}"},
        )
    import pydantic

    try:
        return ModelSettingsSpec.model_validate(dict(value))
    except pydantic.ValidationError as exc:
        problems = {
            ".".join(str(part) for part in error["loc"]): _setting_problem(error)
            for error in exc.errors(include_url=False)
        }
        raise _settings_error(call, problems) from None


def _setting_problem(error: Any) -> str:
    """One pydantic error of a run's `model_settings`, in words."""
    loc = error["loc"]
    if error["type"] == "extra_forbidden":
        names = list(ModelSettingsSpec.model_fields)
        hint = did_you_mean(str(loc[-1]), names)
        if hint:
            return "unknown setting" + hint
        return "unknown setting (settings: " + ", ".join(f"`{name}`" for name in names) + ")"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message[:1].lower() + message[1:]
    if "got " not in message:
        message += f", got {show(error['input'], secret=loc[:1] == ('extra_headers',))}"
    return message


def _settings_error(call: str, problems: Mapping[str, str]) -> ConfigError:
    """`ConfigError` for a run's `model_settings=`: `run(): model_settings.KEY: problem`."""
    return ConfigError(
        [
            ConfigProblem(
                file=f"{call}()",
                line=None,
                column=None,
                path=f"model_settings.{key}" if key else "model_settings",
                message=message,
            )
            for key, message in problems.items()
        ]
    )


def _check_tool_choice(
    own_tools: Sequence[str],
    agent: str,
    tool_choice: str | None,
    call: str,
    client_tools: Sequence[str] = (),
) -> None:
    """A run's `tool_choice` naming a tool names one of the agent's (or a client tool)."""
    if tool_choice is None or tool_choice in TOOL_CHOICES:
        return
    tools = (*own_tools, *client_tools)
    if tool_choice not in tools:
        hint = did_you_mean(tool_choice, list(tools)) or "."
        listing = ", ".join(f"`{tool}`" for tool in tools) or "none"
        raise _settings_error(
            call,
            {
                "tool_choice": f"agent `{agent}` has no tool named `{tool_choice}`{hint} "
                f"Its tools: {listing}."
            },
        )


def _check_session(session: str | None, call: str) -> None:
    """A run's session id: an empty or blank one is refused (it would silently run without
    memory)."""
    if session is not None and not session.strip():
        raise ConfigError(
            [
                ConfigProblem(
                    file=f"{call}()",
                    line=None,
                    column=None,
                    path="session",
                    message=f"the session id is empty ({session!r}). Pass a non-empty id, "
                    "or session=None for a run without memory.",
                )
            ]
        )
