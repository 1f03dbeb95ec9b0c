"""Cassettes: model calls recorded once (against a real vLLM, or from a run's trace) and replayed
by `MockVLLM` in CI.

A cassette is a mock script file: a YAML list of entries that `load_script` reads, one per
model call, each the reply that came back (`reasoning`, `preamble`, `calls`, `final`, or a
`fault` for an error answer) and, under `request:`, what the call asked that must not change
between runs (see `ExpectedRequest`). Ids, timestamps, usage and tool outputs are left out;
so are HTTP headers, so no key is ever written.

```yaml
- request:
    user: ["What's the weather in Tokyo?"]
    function_calls: []
    tools: [get_weather]
  reasoning: The user wants Tokyo's weather; call the tool.
  calls:
  - name: get_weather
    arguments: {city: Tokyo}
```

`Recorder` (in `agent_runtime.testing.proxy`) writes cassettes from live traffic;
`script_from_records` makes one from the trace records of a run.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from agent_runtime.testing.divergence import parsed_arguments
from agent_runtime.testing.script import ExpectedRequest

__all__ = [
    "dump_cassette",
    "entry_from_answer",
    "entry_from_chat",
    "entry_from_output",
    "entry_from_response",
    "entry_from_stream",
    "request_document",
    "save_cassette",
    "script_from_records",
]

_HEADER = (
    "# A cassette of agent-runtime: one entry per model call, in order. Replay it with\n"
    "# `MockVLLM(script=...)` or `agent-runtime mock --script FILE`; an entry's `request:` is\n"
    "# what the call must ask (the replay answers a request that differs with an error).\n"
)


# -- from answers to entries ---------------------------------------------------------------


def entry_from_output(
    output: Sequence[Mapping[str, Any]], *, incomplete: bool = False
) -> dict[str, Any]:
    """A script entry from Responses output items (`reasoning`, `function_call`, `message`).

    Reasoning texts join into one `reasoning`; a message before a function call is a
    `preamble`, the others make the `final` answer. `incomplete` marks an answer cut short by
    the token limit. An answer with nothing in it becomes an `empty_incomplete` fault.
    """
    reasoning: list[str] = []
    calls: list[dict[str, Any]] = []
    messages: list[tuple[int, str]] = []
    first_call: int | None = None
    for position, item in enumerate(output):
        kind = item.get("type")
        if kind == "reasoning":
            texts = [part.get("text") for part in item.get("content") or ()]
            texts = texts or [part.get("text") for part in item.get("summary") or ()]
            reasoning += [text for text in texts if isinstance(text, str)]
        elif kind == "function_call":
            calls.append(_call(str(item.get("name", "")), str(item.get("arguments", ""))))
            first_call = position if first_call is None else first_call
        elif kind == "message":
            parts = item.get("content") or ()
            text = "".join(p.get("text", "") for p in parts if isinstance(p.get("text"), str))
            messages.append((position, text))
    preamble = [t for p, t in messages if first_call is not None and p < first_call]
    final = [t for p, t in messages if first_call is None or p > first_call]
    return _entry(
        reasoning="\n".join(reasoning) if reasoning else None,
        preamble="\n".join(preamble) if preamble else None,
        calls=calls,
        final="\n".join(final) if final else None,
        incomplete=incomplete,
    )


def entry_from_response(response: Mapping[str, Any]) -> dict[str, Any]:
    """A script entry from a whole `/v1/responses` answer (a `response` object)."""
    output = response.get("output")
    return entry_from_output(
        output if isinstance(output, list) else [],
        incomplete=response.get("status") == "incomplete",
    )


def entry_from_chat(completion: Mapping[str, Any]) -> dict[str, Any]:
    """A script entry from a whole `/v1/chat/completions` answer (its first choice)."""
    choices = completion.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else {}
    message = choice.get("message") or {}
    reasoning = message.get("reasoning") or message.get("reasoning_content")
    calls = [
        _call(str(c["function"].get("name", "")), str(c["function"].get("arguments", "")))
        for c in message.get("tool_calls") or ()
        if isinstance(c.get("function"), Mapping)
    ]
    content = message.get("content")
    return _entry(
        reasoning=reasoning if isinstance(reasoning, str) else None,
        preamble=None,
        calls=calls,
        final=content if isinstance(content, str) and (content or not calls) else None,
        incomplete=choice.get("finish_reason") == "length",
    )


def entry_from_stream(api: str, body: bytes) -> dict[str, Any] | None:
    """A script entry from a streamed answer (the server-sent events as received); None when
    the stream holds no answer (it broke off before one)."""
    events = list(_sse_data(body))
    if api == "responses":
        for event in reversed(events):
            if event.get("type") in ("response.completed", "response.incomplete"):
                response = event.get("response")
                if isinstance(response, Mapping):
                    return entry_from_response(response)
        return None
    return _entry_from_chunks(events)


def entry_from_answer(
    api: str, status: int, content_type: str, body: bytes
) -> dict[str, Any] | None:
    """A script entry from an HTTP answer to a model call (`api` is `responses` or
    `chat_completions`): the reply, or a `fault` with the status and message of an error.

    Raises:
        ValueError: a successful answer that is neither a stream nor a JSON object.
    """
    if status >= 400:
        fault: dict[str, Any] = {"status": status}
        message = _error_message(body)
        if message:
            fault["message"] = message
        return {"fault": fault}
    if content_type.startswith("text/event-stream"):
        return entry_from_stream(api, body)
    try:
        document = json.loads(body)
    except ValueError:
        raise ValueError("the answer is not JSON") from None
    if not isinstance(document, dict):
        raise ValueError("the answer is not a JSON object")
    return entry_from_response(document) if api == "responses" else entry_from_chat(document)


def _error_message(body: bytes) -> str | None:
    """The message of an error answer: vLLM's envelope, FastAPI's `detail`, or the text."""
    try:
        document = json.loads(body)
    except ValueError:
        return body.decode("utf-8", errors="replace").strip() or None
    error = document.get("error", document) if isinstance(document, dict) else None
    if isinstance(error, dict):
        message = error.get("message", error.get("detail"))
        return message if isinstance(message, str) else None
    return error if isinstance(error, str) else None


def _entry_from_chunks(chunks: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    reasoning: list[str] = []
    content: list[str] = []
    calls: dict[int, dict[str, str]] = {}
    finish = None
    seen = False
    for chunk in chunks:
        choices = chunk.get("choices")
        if not isinstance(choices, list) or not choices:
            continue
        seen = True
        choice = choices[0]
        finish = choice.get("finish_reason") or finish
        delta = choice.get("delta") or {}
        text = delta.get("reasoning") or delta.get("reasoning_content")
        if isinstance(text, str):
            reasoning.append(text)
        if isinstance(delta.get("content"), str):
            content.append(delta["content"])
        for call in delta.get("tool_calls") or ():
            slot = calls.setdefault(int(call.get("index", len(calls))), {"name": "", "args": ""})
            function = call.get("function") or {}
            slot["name"] += function.get("name") or ""
            slot["args"] += function.get("arguments") or ""
    if not seen or finish is None:
        return None
    made = [_call(c["name"], c["args"]) for _, c in sorted(calls.items())]
    text = "".join(content)
    return _entry(
        reasoning="".join(reasoning) if reasoning else None,
        preamble=None,
        calls=made,
        final=text if content and (text or not made) else None,
        incomplete=finish == "length",
    )


def _sse_data(body: bytes) -> Iterable[dict[str, Any]]:
    """The JSON objects in the `data:` lines of a server-sent event stream."""
    for line in body.decode("utf-8", errors="replace").splitlines():
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            continue
        try:
            value = json.loads(data)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


def _call(name: str, arguments: str) -> dict[str, Any]:
    parsed = parsed_arguments(arguments)
    return {"name": name, "arguments": parsed if isinstance(parsed, dict) else arguments}


def _entry(
    *,
    reasoning: str | None,
    preamble: str | None,
    calls: list[dict[str, Any]],
    final: str | None,
    incomplete: bool,
) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if reasoning is not None:
        entry["reasoning"] = reasoning
    if preamble is not None:
        entry["preamble"] = preamble
    if calls:
        entry["calls"] = calls
    if final is not None:
        entry["final"] = final
    if not entry:
        return {"fault": {"empty_incomplete": True}}
    if incomplete:
        entry["incomplete"] = True
    return entry


def request_document(request: ExpectedRequest) -> dict[str, Any]:
    """An entry's `request:` mapping, as `load_script` reads it back."""
    document: dict[str, Any] = {}
    if request.user is not None:
        document["user"] = list(request.user)
    if request.function_calls is not None:
        document["function_calls"] = [
            {
                "name": c.name,
                "arguments": c.arguments if isinstance(c.arguments, str) else dict(c.arguments),
            }
            for c in request.function_calls
        ]
    if request.tools is not None:
        document["tools"] = list(request.tools)
    return document


# -- from a run's trace ----------------------------------------------------------------------


def script_from_records(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Cassette entries from a run's trace records: one per `model_call` record, its `output`
    (the Responses output items) made into a reply; the other records are skipped.

    The entries have no `request:` (a trace does not hold what each call asked), so a replay
    gives the same answers without checking the requests.

    Raises:
        ValueError: a `model_call` record without `output`: the trace was written with
            `include_sensitive_data: false`.
    """
    entries = []
    for number, record in enumerate(records):
        if record.get("type") != "model_call":
            continue
        output = record.get("output")
        if not isinstance(output, list):
            raise ValueError(
                f"trace record {number} (model_call of agent {record.get('agent')!r}) has no "
                "`output`: the run was traced without its texts. Set `tracing: "
                "{include_sensitive_data: true}` in agents.yaml and run it again."
            )
        entries.append(entry_from_output(output))
    return entries


# -- files -----------------------------------------------------------------------------------


# A list or mapping of short one-line values is written on one line (`tools: [get_weather]`,
# `arguments: {city: Tokyo}`) when it is at most this long as JSON.
_FLOW_CHARS = 60


class _Dumper(yaml.SafeDumper):
    """Writes texts that span lines as `|` block scalars and short lists and mappings of plain
    values on one line, so a cassette reads like the conversation."""


class _FlowList(list[Any]):
    pass


class _FlowDict(dict[str, Any]):
    pass


def _text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


def _flow_list(dumper: yaml.SafeDumper, value: _FlowList) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


def _flow_dict(dumper: yaml.SafeDumper, value: _FlowDict) -> yaml.MappingNode:
    return dumper.represent_mapping("tag:yaml.org,2002:map", value, flow_style=True)


_Dumper.add_representer(str, _text)
_Dumper.add_representer(_FlowList, _flow_list)
_Dumper.add_representer(_FlowDict, _flow_dict)


def _shaped(value: Any) -> Any:
    """`value` with its short containers of one-line scalars marked to be written on one line."""
    if isinstance(value, Mapping):
        items = {str(k): _shaped(v) for k, v in value.items()}
        return _FlowDict(items) if _flat(items.values(), value) else items
    if isinstance(value, list | tuple):
        elements = [_shaped(v) for v in value]
        return _FlowList(elements) if _flat(elements, value) else elements
    return value


def _flat(values: Iterable[Any], original: Any) -> bool:
    plain = all(
        v is None or isinstance(v, bool | int | float) or (isinstance(v, str) and _plain(v))
        for v in values
    )
    return plain and len(json.dumps(original, ensure_ascii=False, default=str)) <= _FLOW_CHARS


def _plain(text: str) -> bool:
    """Whether `text` reads well inside `[...]`/`{...}`: no quoting, escapes or line breaks."""
    return text == text.strip() and not any(c in _QUOTED for c in text)


_QUOTED = frozenset("\n\t'\"#:,?[]{}&*!|>%@`\\")


def dump_cassette(entries: Sequence[Mapping[str, Any]]) -> str:
    """The YAML text of a cassette (with a header comment)."""
    # Entries themselves stay in block style, whatever their size.
    document = [{str(k): _shaped(v) for k, v in entry.items()} for entry in entries]
    body = yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
        default_flow_style=False,
    )
    return _HEADER + body


def save_cassette(entries: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write a cassette file whole (through a temporary file, so a reader never sees half of
    one); returns its path."""
    path = Path(path)
    text = dump_cassette(entries)
    folder = path.parent
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
