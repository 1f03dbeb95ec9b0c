"""The checks of agents.yaml that look across entries, made on the raw document.

`check_tools` imports every tool's function and checks the names the model will see;
`check_agents` checks agents against backends, tools and each other (unknown and repeated names,
agent-tool cycles, output schemas) and reads instruction files. Both work on the composed
`Document` rather than the validated models, so that their problems are reported together with
the schema's, each at its place.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from agent_runtime.config.document import Document, Loc, format_loc
from agent_runtime.config.imports import import_function, import_type
from agent_runtime.config.schema import REFERENCE, TOOL_NAME
from agent_runtime.errors import ToolResolutionError
from agent_runtime.text import did_you_mean, unknown

__all__ = [
    "check_agents",
    "check_output_types",
    "check_tools",
    "handoff_tool_name",
    "signature_problem",
]


def check_tools(
    doc: Document, data: dict[str, Any], base_dir: Path, *, load: bool = True
) -> tuple[dict[str, Callable[..., Any]], dict[str, str]]:
    """Import every tool's function; the names the model will see, checked for harmony.

    With `load=False` nothing is imported: a tool without a `name` is known by the function
    part of its reference (what `__name__` is for a plain function).
    """
    functions: dict[str, Callable[..., Any]] = {}
    names: dict[str, str] = {}
    for key, tool in _entries(data.get("tools")):
        loc: Loc = ("tools", key)
        name = tool.get("name")
        if isinstance(name, str) and not doc.is_tainted((*loc, "name")):
            if TOOL_NAME.fullmatch(name):
                names[key] = name
            else:
                doc.report((*loc, "name"), _bad_tool_name(name))
        reference = tool.get("function")
        if not isinstance(reference, str) or doc.is_tainted((*loc, "function")):
            continue
        if not load:
            attribute = reference.rpartition(":")[2]
            if name is None and TOOL_NAME.fullmatch(attribute):
                names[key] = attribute
            continue
        try:
            functions[key] = function = import_function(reference, base_dir)
        except ToolResolutionError as exc:
            doc.report((*loc, "function"), str(exc))
            continue
        problem = signature_problem(function, strict=tool.get("strict") is not False)
        if problem is not None:
            doc.report((*loc, "function"), f"`{reference}` {problem}")
            continue
        if name is None:
            own_name = getattr(function, "__name__", "")
            if isinstance(own_name, str) and TOOL_NAME.fullmatch(own_name):
                names[key] = own_name
            else:
                doc.report((*loc, "function"), _bad_tool_name(own_name, " (the function's name)"))
    return functions, names


def check_output_types(
    doc: Document, data: dict[str, Any], base_dir: Path, *, load: bool = True
) -> dict[str, type[Any]]:
    """Import the output type of every agent whose `output_schema` names one
    (`package.module:Type`); agent name -> the type. With `load=False` nothing is imported."""
    types: dict[str, type[Any]] = {}
    if not load:
        return types
    for name, agent in _entries(data.get("agents")):
        reference = agent.get("output_schema")
        loc: Loc = ("agents", name, "output_schema")
        if not isinstance(reference, str) or not REFERENCE.fullmatch(reference):
            continue  # a JSON Schema, or a malformed reference the schema reports
        if doc.is_tainted(loc):
            continue
        try:
            types[name] = import_type(reference, base_dir)
        except ToolResolutionError as exc:
            doc.report(loc, str(exc))
    return types


def signature_problem(function: Callable[..., Any], *, strict: bool) -> str | None:
    """Why the model could not be told how to call `function` (None: it can, as far as a quick
    look at its signature shows; the SDK builds the full schema when the agents are built)."""
    if inspect.isclass(function):
        return "is a class; a tool is a function (write one that uses the class)"
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return (
            "has no Python signature to describe to the model (a built-in?); wrap it in a "
            "function with typed parameters"
        )
    if strict and any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return (
            "takes **kwargs, which a strict schema cannot describe; name its parameters, or "
            "set `strict: false` on the tool"
        )
    return None


def _bad_tool_name(name: object, origin: str = "") -> str:
    fix = "set `name:` to" if origin else "use"
    return (
        f"tool name {name!r}{origin} is not valid for gpt-oss: {fix} letters, digits and _ only, "
        f"e.g. {_sanitize(str(name))!r} (other characters break vLLM's harmony parser, vllm#23567)"
    )


def _sanitize(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "tool"
    return cleaned if TOOL_NAME.fullmatch(cleaned) else f"_{cleaned}"


def check_agents(
    doc: Document, data: dict[str, Any], tool_names: Mapping[str, str], base_dir: Path
) -> dict[str, str | None]:
    """Cross-check every agent; returns agent name -> instructions (inline or read from a file).

    Args:
        doc: the composed document; problems are reported on it.
        data: its plain values.
        tool_names: tool key in `tools:` -> the name the model sees (from `check_tools`).
        base_dir: where `instructions_file` paths start.
    """
    return _AgentChecker(doc, data, tool_names, base_dir).check()


class _AgentChecker:
    """Cross-checks agents against backends, tools and each other, and reads instruction files.

    Works on the raw document, so that these problems are reported together with the schema's.
    """

    def __init__(
        self, doc: Document, data: dict[str, Any], tool_names: Mapping[str, str], base_dir: Path
    ) -> None:
        self.doc, self.tool_names, self.base_dir = doc, tool_names, base_dir
        self.backends, self.tools = _names(data, "backends"), _names(data, "tools")
        self.agents = _names(data, "agents")
        self.mcp_servers = _names(data, "mcp_servers")
        defaults = data.get("defaults")
        self.default_backend = defaults.get("backend") if isinstance(defaults, dict) else None
        settings = defaults.get("model_settings") if isinstance(defaults, dict) else None
        self.default_tool_choice = (
            settings.get("tool_choice") if isinstance(settings, dict) else None
        )
        self.graph: dict[str, list[tuple[str, Loc]]] = {}  # agents-as-tools edges
        self.instructions: dict[str, str | None] = {}

    def check(self) -> dict[str, str | None]:
        self.refers(("defaults", "backend"), self.default_backend, "backend", self.backends)
        for name, agent in _entries(self.agents):
            self.check_agent(name, agent)
        _check_agent_tool_cycles(self.doc, self.graph)
        _check_output_schemas(self.doc, self.agents or {})
        return self.instructions

    def refers(self, loc: Loc, value: Any, kind: str, names: Mapping[str, Any] | None) -> bool:
        """Report `value` at `loc` when it names no entry in `names`; True when it does.

        `names` is None when its section is itself invalid (already reported): nothing to add.
        """
        if not isinstance(value, str) or self.doc.is_tainted(loc) or names is None:
            return False
        if value not in names:
            self.doc.report(loc, unknown(kind, value, names))
            return False
        return True

    def check_agent(self, agent_name: str, agent: dict[str, Any]) -> None:
        doc, loc = self.doc, ("agents", agent_name)
        backend = agent.get("backend")
        self.refers((*loc, "backend"), backend, "backend", self.backends)
        backends = self.backends or {}
        if backend is None and not isinstance(self.default_backend, str) and len(backends) > 1:
            doc.report(
                loc,
                "no backend for this agent: set `backend:` on the agent or `defaults.backend` "
                f"(declared: {', '.join(repr(name) for name in backends)})",
                at="key",
            )
        self.instructions[agent_name] = _read_instructions(doc, loc, agent, self.base_dir)
        used: dict[str, Loc] = {}  # tool names the model will see -> where they come from
        seen: dict[tuple[str, str | None], str] = {}  # (agent, name) of agent tools -> where
        for i, key in _unique_names(doc, (*loc, "tools"), agent.get("tools"), "tool"):
            if self.refers((*loc, "tools", i), key, "tool", self.tools) and key in self.tool_names:
                self.use(used, self.tool_names[key], (*loc, "tools", i))
        self.graph[agent_name] = []
        # Agents called as tools: `agent_tools` entries, then mappings with `agent:` in `tools`.
        entries = [("agent_tools", i, entry) for i, entry in _list(agent.get("agent_tools"))]
        entries += [
            ("tools", i, entry) for i, entry in _list(agent.get("tools")) if isinstance(entry, dict)
        ]
        for key, i, entry in entries:
            spec = entry if isinstance(entry, dict) else {"agent": entry}
            target, name = spec.get("agent"), spec.get("name")
            if isinstance(target, str) and isinstance(name, str | None):
                if (target, name) in seen:
                    message = f"duplicate agent tool {target!r} (already at {seen[target, name]})"
                    doc.report((*loc, key, i), message)
                    continue
                seen[target, name] = f"{key}[{i}]"
            self.check_agent_tool(agent_name, (*loc, key, i), entry, used)
        # Handoffs between different agents may form cycles (triage -> billing -> triage is a
        # common pattern): each handoff ends the current agent's turn and runs are bounded by
        # max_turns. Only an agent handing off to itself is certainly a mistake.
        for i, target in _unique_names(doc, (*loc, "handoffs"), agent.get("handoffs"), "handoff"):
            where = (*loc, "handoffs", i)
            if not self.refers(where, target, "agent", self.agents):
                continue
            if target == agent_name:
                doc.report(where, "an agent cannot hand off to itself")
                continue
            tool = handoff_tool_name(target)
            if tool in used:
                doc.report(
                    where,
                    f"the handoff to {target!r} reaches the model as tool {tool!r}, which is "
                    f"already used by {format_loc(used[tool][2:])}; rename one of them",
                )
            else:
                used[tool] = where
        listed = self.check_mcp_servers(agent_name, agent, used)
        self.check_tool_choice(agent_name, agent, used, listed=listed)

    def check_mcp_servers(
        self, agent_name: str, agent: dict[str, Any], used: dict[str, Loc]
    ) -> bool:
        """The agent's `mcp_servers` name declared servers, once each; the tools of servers
        that list them (`tools:`) must not clash. False when some server's tools are known
        only once it runs (no `tools:` list): the agent's tools are not all known here."""
        loc: Loc = ("agents", agent_name, "mcp_servers")
        listed = True
        seen: dict[str, tuple[str, str]] = {}  # tool name -> (server, its name there)
        entries = _unique_names(self.doc, loc, agent.get("mcp_servers"), "MCP server")
        for i, server in entries:
            where = (*loc, i)
            if not self.refers(where, server, "MCP server", self.mcp_servers):
                continue
            spec = (self.mcp_servers or {}).get(server)
            tools = spec.get("tools") if isinstance(spec, dict) else None
            if not isinstance(tools, list):
                listed = False
                continue
            prefix = spec.get("prefix") if isinstance(spec, dict) else None
            excluded = spec.get("exclude_tools") if isinstance(spec, dict) else None
            for tool in tools:
                if not isinstance(tool, str) or (isinstance(excluded, list) and tool in excluded):
                    continue
                name = f"{prefix}_{tool}" if isinstance(prefix, str) and prefix else tool
                if name in seen:
                    other, original = seen[name]
                    self.doc.report(
                        where,
                        f"tool {tool!r} of MCP server {server!r} has the same name as tool "
                        f"{original!r} of MCP server {other!r}; set `prefix:` on one of them "
                        f"(mcp_servers.{server}.prefix)",
                    )
                elif name in used:
                    self.doc.report(
                        where,
                        f"tool {tool!r} of MCP server {server!r} has the same name as "
                        f"{format_loc(used[name][2:])}; set `prefix:` on the server "
                        f"(mcp_servers.{server}.prefix)",
                    )
                else:
                    seen[name] = (server, tool)
        for name in seen:
            used.setdefault(name, loc)
        return listed

    def check_tool_choice(
        self, agent_name: str, agent: dict[str, Any], used: dict[str, Loc], *, listed: bool = True
    ) -> None:
        """A `tool_choice` that asks for a call needs tools, a server that enforces it, and (when
        it names a tool) one of the agent's tools."""
        loc: Loc = ("agents", agent_name, "model_settings", "tool_choice")
        settings = agent.get("model_settings")
        value = settings.get("tool_choice") if isinstance(settings, dict) else None
        where: str = ""
        at: Literal["key", "value"] = "value"
        if value is None:
            value, loc = self.default_tool_choice, ("agents", agent_name)
            where, at = " (from defaults.model_settings.tool_choice)", "key"
        if not isinstance(value, str) or value in ("auto", "none") or self.doc.is_tainted(loc):
            return
        if not TOOL_NAME.fullmatch(value):
            return  # reported by the schema
        if any(not isinstance(agent.get(key, []), list) for key in ("tools", "agent_tools")):
            return  # which tools it has is not known: reported already
        backend = self.backend_of(agent)
        if isinstance(backend, dict) and backend.get("kind") == "vllm-embedded":
            self.doc.report(
                loc,
                f"tool_choice {value!r}{where} needs a vLLM server, which constrains the model "
                "to call a tool; the engine of kind vllm-embedded does not: use `auto`, or a "
                "backend of kind vllm",
                at=at,
            )
        elif not listed:
            return  # the tools of its MCP servers are known once they run
        elif not used:
            self.doc.report(
                loc,
                f"tool_choice {value!r}{where} asks for a tool call, but the agent has no tools: "
                "give it `tools`, or remove tool_choice",
                at=at,
            )
        elif value != "required" and value not in used:
            names = ", ".join(repr(name) for name in used)
            self.doc.report(
                loc,
                f"tool_choice {value!r}{where} is not one of the agent's tools"
                + (did_you_mean(value, list(used), quote="'") or f" ({names})"),
                at=at,
            )

    def backend_of(self, agent: dict[str, Any]) -> Any:
        """The declared backend an agent uses (None when it cannot be told)."""
        name = agent.get("backend") or self.default_backend
        backends = self.backends or {}
        if name is None and len(backends) == 1:
            name = next(iter(backends))
        return backends.get(name) if isinstance(name, str) else None

    def check_agent_tool(self, agent_name: str, loc: Loc, entry: Any, used: dict[str, Loc]) -> None:
        spec = entry if isinstance(entry, dict) else {"agent": entry}
        target, name = spec.get("agent"), spec.get("name")
        target_loc = loc if isinstance(entry, str) else (*loc, "agent")
        if not isinstance(target, str) or not self.refers(target_loc, target, "agent", self.agents):
            return
        self.graph[agent_name].append((target, loc))
        if name is None:
            name = target.replace("-", "_")
            if not TOOL_NAME.fullmatch(name):
                self.doc.report(target_loc, _bad_tool_name(name, " (from the agent's name)"))
                return
        elif not isinstance(name, str) or self.doc.is_tainted((*loc, "name")):
            return
        elif not TOOL_NAME.fullmatch(name):
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


def handoff_tool_name(agent: str) -> str:
    """The tool the model calls to hand off to `agent` (letters, digits and _ only)."""
    return "transfer_to_" + re.sub(r"[^A-Za-z0-9_]", "_", agent).lower()


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
    try:
        path = base / Path(file).expanduser()
    except RuntimeError as exc:  # `~user` for a user that does not exist
        doc.report((*loc, "instructions_file"), f"cannot read instructions file {file}: {exc}")
        return None
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        doc.report((*loc, "instructions_file"), f"cannot read instructions file {path}: {reason}")
    except UnicodeDecodeError:
        doc.report((*loc, "instructions_file"), f"instructions file {path} is not UTF-8 text")
    except ValueError as exc:  # a NUL character in the path
        doc.report((*loc, "instructions_file"), f"cannot read instructions file {file!r}: {exc}")
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
            where = (*loc, *exc.path)
            if not doc.is_tainted(where):  # e.g. an unset variable there, already reported
                doc.report(where, f"invalid JSON Schema: {exc.message}")


def _entries(value: Any) -> list[tuple[str, dict[str, Any]]]:
    """The (name, mapping) entries of a section, skipping what the schema check reports."""
    if not isinstance(value, dict):
        return []
    return [(name, entry) for name, entry in value.items() if isinstance(entry, dict)]


def _names(data: dict[str, Any], section: str) -> dict[str, Any] | None:
    """The entries of a section: {} when it is absent, None when it is not a mapping."""
    value = data.get(section)
    if value is None:
        return {}
    return value if isinstance(value, dict) else None


def _list(value: Any) -> list[tuple[int, Any]]:
    return list(enumerate(value)) if isinstance(value, list) else []
