"""pydantic's validation errors as problems placed on the document (`file:line:col`).

A missing field is reported at the key of the mapping that lacks it; an unknown field at its own
key, with "Did you mean …?" from the fields of that model (and of models nested in it, e.g.
`model_settings.temperature`); a bad value at the value, in short human words. Values where a
secret may be are never quoted.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Callable
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from agent_runtime.config.document import Document, Loc
from agent_runtime.config.schema import AGENT_TOOL_TAGS, RuntimeConfig, is_secret
from agent_runtime.text import did_you_mean, kind_of, show

__all__ = ["report_schema_error", "report_validation_error"]


def report_schema_error(doc: Document, error: ErrorDetails) -> None:
    """Place one error of `RuntimeConfig` validation; the messages specific to agents.yaml are
    made here, the rest by `report_validation_error`."""
    raw = error["loc"]
    loc = tuple(  # drop the union tags pydantic puts after an `agent_tools` or `tools` index
        part
        for i, part in enumerate(raw)
        if not (part in AGENT_TOOL_TAGS and i >= 2 and raw[i - 2] in ("agent_tools", "tools"))
    )
    kind, value = error["type"], error["input"]
    field_name = loc[-1] if loc else ""
    if doc.is_tainted(loc) or kind == "instructions_conflict":  # see checks._read_instructions
        return
    if kind == "literal_error" and field_name == "reasoning_effort" and isinstance(value, str):
        doc.report(
            loc,
            f"reasoning_effort {value!r} is not supported: "
            "vLLM's gpt-oss accepts only 'low', 'medium' or 'high'",
        )
    elif kind == "model_type" and "agent_tools" in loc:
        doc.report(loc, f"expected an agent name or a mapping with `agent:`, got {kind_of(value)}")
    elif kind == "model_type" and len(loc) == 4 and loc[2] == "tools":
        doc.report(
            loc, f"expected a tool name or a mapping with `agent:` (an agent), got {kind_of(value)}"
        )
    elif kind == "too_short" and loc in (("backends",), ("agents",)):
        doc.report(loc, f"declare at least one entry under `{loc[0]}`")
    else:
        report_validation_error(doc, loc, error, root=RuntimeConfig, is_secret=is_secret)


def report_validation_error(
    document: Document,
    loc: Loc,
    error: ErrorDetails,
    *,
    root: type[BaseModel],
    is_secret: Callable[[Loc], bool],
) -> None:
    """Record one pydantic error as a problem at the right key or value of `document`.

    A missing field is reported at the key of the mapping that lacks it; an unknown field at
    its own key, with "Did you mean …?" from the fields of that model (and of models nested in
    it, e.g. `model_settings.temperature`); a bad value at the value, in short human words.
    Values at places where `is_secret` says so are never quoted.
    """
    kind = error["type"]
    if kind == "missing":
        document.report(loc[:-1], f"missing required field `{loc[-1]}`", at="key")
    elif kind == "extra_forbidden":
        document.report(loc, "unknown field" + _field_hint(root, loc), at="key")
    else:
        document.report(loc, _value_message(error, secret=is_secret(loc)))


def _value_message(error: ErrorDetails, *, secret: bool) -> str:
    kind, value, ctx = error["type"], error["input"], error.get("ctx", {})
    shown = show(value, secret=secret)
    if kind == "literal_error":
        expected = str(ctx.get("expected", ""))
        choices = re.findall(r"'([^']*)'", expected)
        return f"expected {expected}, got {shown}" + did_you_mean(value, choices, quote="'")
    messages = {
        "string_type": f"expected a string, got {kind_of(value)}",
        "int_type": f"expected an integer, got {shown}",
        "int_parsing": f"expected an integer, got {shown}",
        "int_from_float": f"expected an integer, got {shown}",
        "float_type": f"expected a number, got {shown}",
        "float_parsing": f"expected a number, got {shown}",
        "bool_type": f"expected true or false, got {shown}",
        "bool_parsing": f"expected true or false, got {shown}",
        "dict_type": f"expected a mapping, got {kind_of(value)}",
        "model_type": f"expected a mapping, got {kind_of(value)}",
        "model_attributes_type": f"expected a mapping, got {kind_of(value)}",
        "list_type": f"expected a list, got {kind_of(value)}",
        "greater_than": f"must be greater than {_number(ctx.get('gt'))}, got {shown}",
        "greater_than_equal": f"must be at least {_number(ctx.get('ge'))}, got {shown}",
        "less_than_equal": f"must be at most {_number(ctx.get('le'))}, got {shown}",
        "finite_number": f"must be a finite number, got {shown}",
    }
    message = messages.get(kind, error["msg"].removeprefix("Value error, "))
    if kind == "string_type" and isinstance(value, bool | int | float):
        message += " (quote the value to keep it as text)"
    elif kind == "list_type" and isinstance(value, str) and not secret:
        message += f" (write [{value}] for a single item)"
    return message


def _number(value: object) -> str:
    """A bound as written in the model: 1 rather than pydantic's 1.0 for a float field."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _field_hint(root: type[BaseModel], loc: Loc) -> str:
    """'. Did you mean `x`?' for an unknown key, or the list of the allowed keys."""
    model = _model_at(root, loc[:-1])
    if model is None:
        return ""
    candidates = {name: f"`{name}`" for name in model.model_fields}
    for name, info in model.model_fields.items():  # a key put one level too high
        nested = _model_in(info.annotation)
        for inner in nested.model_fields if nested else ():
            candidates.setdefault(inner, f"`{name}.{inner}`")
    match = difflib.get_close_matches(str(loc[-1]), list(candidates), n=1)
    if match:
        return f". Did you mean {candidates[match[0]]}?"
    return " (allowed: " + ", ".join(f"`{name}`" for name in model.model_fields) + ")"


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model whose fields live at `loc` in a document validated as `root`, if any."""
    annotation: Any = root
    for part in loc:
        model = _model_in(annotation)
        if model is not None:
            if not isinstance(part, str) or part not in model.model_fields:
                return None
            annotation = model.model_fields[part].annotation
            continue
        annotation = _strip_optional(annotation)
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is dict and isinstance(part, str):
            annotation = args[1]
        elif origin is list and isinstance(part, int):
            annotation = args[0]
        else:
            return None
    return _model_in(annotation)


def _strip_optional(annotation: Any) -> Any:
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _strip_optional(members[0])
    return annotation


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model in `annotation`, through Optional, Annotated and `str | Model` unions."""
    annotation = _strip_optional(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for member in get_args(annotation):
            model = _model_in(member)
            if model is not None:
                return model
    return None
