"""Scripted replies for the mock vLLM server: one reply per model call, in order.

A script is a list of `Reply` values (or responder functions of the request). It can be written
in Python with `Reply`, `call` and `fault`, or loaded from a YAML/JSON file with `load_script`:

```yaml
- reasoning: "User asks for Tokyo's weather; call the tool."
  calls: [{name: get_weather, arguments: {city: Tokyo}}]
- reasoning: "It is sunny. Write the haiku."
  final: "Tokyo wakes in light..."
- harmony: "<|channel|>final<|message|>Hello!<|return|>"
- {reasoning: "A long thought that runs out of tokens", cut_at: 4}
- fault: {status: 503}
```

An entry may also say what its model call must ask, under `request:` (a cassette recorded by
`Recorder` has it on every entry): the user messages, the function calls in the history with
their arguments, the names of the tools offered. A request that does not match is answered with
an error that shows the difference (see `MockVLLM.divergences`).

```yaml
- request:
    user: ["What's the weather in Tokyo?"]
    function_calls: [{name: get_weather, arguments: {city: Tokyo}}]
    tools: [get_weather]
  final: "Tokyo wakes in light..."
```
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import pydantic
import yaml

if TYPE_CHECKING:
    from agent_runtime.testing.recording import RecordedRequest

__all__ = [
    "Call",
    "ExpectedRequest",
    "Fault",
    "Reply",
    "Responder",
    "ScriptEntry",
    "ScriptError",
    "call",
    "fault",
    "load_script",
    "parse_script",
]


@dataclass(frozen=True, slots=True)
class Call:
    """A function call the model makes.

    `arguments` is a mapping (sent as compact JSON) or a string sent as is, which may be invalid
    JSON on purpose. `channel` is where the model puts the call: gpt-oss normally uses
    `commentary`, but sometimes calls tools from `analysis` (vLLM accepts both).
    """

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    channel: Literal["commentary", "analysis"] = "commentary"

    @property
    def arguments_json(self) -> str:
        """The arguments as the model writes them (compact JSON unless given as text)."""
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(dict(self.arguments), separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Fault:
    """A failure the mock injects instead of, or on top of, a normal reply.

    Attributes:
        status: answer with this HTTP status and vLLM's error envelope instead of a reply.
        message: the error message for `status` (a vLLM-like default otherwise).
        delay_s: wait this long before answering (the reply itself is still served).
        drop_connection: close the TCP connection without sending anything.
        cut_stream: send this many SSE events (streaming) or this many body bytes
            (non-streaming) after the headers, then abort the connection, as vLLM does when
            harmony parsing fails mid-generation.
        invalid_arguments: make the arguments of every call in the reply invalid JSON.
        empty_incomplete: answer with no output: Responses `status: "incomplete"` with
            `output: []`; Chat `content: null, reasoning: null`.
    """

    status: int | None = None
    message: str | None = None
    delay_s: float = 0.0
    drop_connection: bool = False
    cut_stream: int | None = None
    invalid_arguments: bool = False
    empty_incomplete: bool = False

    @property
    def replaces_reply(self) -> bool:
        """True when the fault answers instead of the reply (not just alongside it)."""
        return self.status is not None or self.drop_connection or self.empty_incomplete


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectedRequest:
    """What a model call must ask for its scripted reply; None leaves a part unchecked.

    Attributes:
        user: the texts of the request's user messages, in order.
        function_calls: the function calls in the request's history, in order, with their
            arguments (compared parsed, so spacing and key order do not matter).
        tools: the names of the function tools the request offers, in order.

    Ids, timestamps, instructions and tool outputs are not compared.
    """

    user: tuple[str, ...] | None = None
    function_calls: tuple[Call, ...] | None = None
    tools: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("user", "function_calls", "tools"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))


@dataclass(frozen=True, slots=True, kw_only=True)
class Reply:
    """What the model generates for one model call.

    Either structured parts (`reasoning`, `preamble`, `calls`, `final`), rendered in that order
    as harmony messages, or `harmony`: a raw completion in the harmony format, parsed like vLLM
    parses model output. A `fault` may replace or accompany the reply.

    A turn can end cut short, as when generation reaches `max_output_tokens` / `max_tokens`
    (vLLM's `length` finish: a Responses `incomplete` status with
    `incomplete_details.reason: "max_output_tokens"`, a Chat `finish_reason: "length"`):
    `cut_at=N` stops after the first N generated tokens; `incomplete=True` stops where the
    reply's text ends, without its closing token (for a raw `harmony` reply written up to
    where it breaks off).

    `request`, when given, is what the model call must ask (see `ExpectedRequest`); it is not
    part of the reply.
    """

    reasoning: str | None = None
    preamble: str | None = None
    calls: tuple[Call, ...] = ()
    final: str | None = None
    harmony: str | None = None
    fault: Fault | None = None
    cut_at: int | None = None
    incomplete: bool = False
    request: ExpectedRequest | None = None

    def __post_init__(self) -> None:
        if self.cut_at is not None and self.cut_at < 0:
            raise ValueError(f"cut_at must be 0 or more generated tokens, not {self.cut_at}")
        if not isinstance(self.calls, tuple):
            object.__setattr__(self, "calls", tuple(self.calls))
        structured = (
            self.reasoning is not None
            or self.preamble is not None
            or bool(self.calls)
            or self.final is not None
        )
        if self.harmony is not None and structured:
            raise ValueError(
                "a reply has either `harmony` (raw model output) or `reasoning`/`preamble`/"
                "`calls`/`final`, not both"
            )
        if not structured and self.harmony is None and self.fault is None:
            raise ValueError(
                "an empty reply: give `reasoning`, `preamble`, `calls`, `final`, `harmony` "
                "or `fault`"
            )
        if (
            self.fault is not None
            and not self.fault.replaces_reply
            and not structured
            and self.harmony is None
        ):
            raise ValueError(
                "this fault does not replace the reply (it only delays, cuts or corrupts it), "
                "so the reply needs content too"
            )


Responder = Callable[["RecordedRequest"], "Reply | Awaitable[Reply]"]
"""A reply computed from the request (its parsed conversation, body, prompt)."""

ScriptEntry = Reply | Responder


def call(
    name: str,
    arguments: Mapping[str, Any] | str | None = None,
    /,
    *,
    channel: Literal["commentary", "analysis"] = "commentary",
    **kwargs: Any,
) -> Call:
    """Build a `Call`: `call("get_weather", city="Tokyo")` or `call("f", '{"broken"')`."""
    if arguments is not None and kwargs:
        raise TypeError("give the arguments either as a mapping/string or as keywords")
    return Call(name, kwargs if arguments is None else arguments, channel)


def fault(**kwargs: Any) -> Reply:
    """A reply that is only a fault: `fault(status=503)`, `fault(drop_connection=True)`."""
    return Reply(fault=Fault(**kwargs))


# -- script files ---------------------------------------------------------------------------


class ScriptError(ValueError):
    """A script file or document that cannot be used; the message says where and what."""


class _CallDoc(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    name: str = pydantic.Field(min_length=1)
    arguments: dict[str, Any] | str = pydantic.Field(default_factory=dict)
    channel: Literal["commentary", "analysis"] = "commentary"


class _FaultDoc(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    status: int | None = pydantic.Field(default=None, ge=400, le=599)
    message: str | None = None
    delay_s: float = pydantic.Field(default=0.0, ge=0)
    drop_connection: bool = False
    cut_stream: int | None = pydantic.Field(default=None, ge=0)
    invalid_arguments: bool = False
    empty_incomplete: bool = False


class _RequestDoc(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    user: list[str] | None = None
    function_calls: list[_CallDoc] | None = None
    tools: list[str] | None = None


class _ReplyDoc(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    reasoning: str | None = None
    preamble: str | None = None
    calls: list[_CallDoc] = pydantic.Field(default_factory=list)
    final: str | None = None
    harmony: str | None = None
    fault: _FaultDoc | None = None
    cut_at: int | None = pydantic.Field(default=None, ge=0)
    incomplete: bool = False
    request: _RequestDoc | None = None


_script_adapter = pydantic.TypeAdapter(list[_ReplyDoc])


def parse_script(document: Any, *, source: str = "<script>") -> list[Reply]:
    """Turn a decoded YAML/JSON document (a list of reply mappings) into replies."""
    try:
        docs = _script_adapter.validate_python(document)
    except pydantic.ValidationError as exc:
        problems = []
        for error in exc.errors():
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
            problems.append(f"  {source}: reply{where}: {error['msg']}")
        raise ScriptError(
            f"{source} is not a valid mock script ({len(problems)} problem"
            f"{'s' if len(problems) != 1 else ''}):\n" + "\n".join(problems)
        ) from None
    replies = []
    for index, doc in enumerate(docs):
        try:
            replies.append(
                Reply(
                    reasoning=doc.reasoning,
                    preamble=doc.preamble,
                    calls=tuple(Call(c.name, c.arguments, c.channel) for c in doc.calls),
                    final=doc.final,
                    harmony=doc.harmony,
                    fault=Fault(**doc.fault.model_dump()) if doc.fault else None,
                    cut_at=doc.cut_at,
                    incomplete=doc.incomplete,
                    request=_expected_request(doc.request),
                )
            )
        except ValueError as exc:
            raise ScriptError(f"{source}: reply[{index}]: {exc}") from None
    return replies


def _expected_request(doc: _RequestDoc | None) -> ExpectedRequest | None:
    if doc is None:
        return None
    calls = doc.function_calls
    return ExpectedRequest(
        user=None if doc.user is None else tuple(doc.user),
        function_calls=None if calls is None else tuple(Call(c.name, c.arguments) for c in calls),
        tools=None if doc.tools is None else tuple(doc.tools),
    )


def load_script(path: str | Path) -> list[Reply]:
    """Load replies from a YAML or JSON file (JSON is valid YAML)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScriptError(f"cannot read mock script {str(path)!r}: {exc.strerror}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScriptError(f"{where}: invalid YAML: {problem}") from None
    if document is None:
        document = []
    return parse_script(document, source=str(path))


def as_entries(script: Sequence[ScriptEntry] | str | Path | None) -> list[ScriptEntry]:
    """Normalise what `MockVLLM(script=...)` accepts into a list of entries."""
    if script is None:
        return []
    if isinstance(script, str | Path):
        return list(load_script(script))
    return list(script)
