"""The checks across entries of agents.yaml: names that refer to others, tool names the model
sees, cycles, instruction files, output schemas and tool imports (`agent_runtime.config.checks`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from agent_runtime.config import parse_config
from agent_runtime.errors import ConfigError
from tests.config.helpers import BACKEND, PROJECT, error, parse, write

ERRORS = [
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "tools:\n"
        "  get_weather: {function: 'mytools.weather:get_weather'}\n"
        "agents:\n"
        "  a:\n"
        "    tools: [get_weather, get_weather]\n"
        "    handoffs: [b, b]\n"
        "    agent_tools: [b, {agent: b}, {agent: b, name: b_again}]\n"
        "  b: {}\n",
        "agents.yaml has 3 problems:\n"
        "  agents.yaml:7:26  agents.a.tools[1]: duplicate tool 'get_weather' (already at "
        "tools[0]).\n"
        "  agents.yaml:8:19  agents.a.handoffs[1]: duplicate handoff 'b' (already at "
        "handoffs[0]).\n"
        "  agents.yaml:9:22  agents.a.agent_tools[1]: duplicate agent tool 'b' (already at "
        "agent_tools[0]).",
        id="duplicate-entries",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "tools:\n"
        "  get_weather: {function: 'mytools.weather:get_weather'}\n"
        "agents:\n"
        "  a:\n"
        "    agent_tools: [b]\n"
        "    tools: [get_weather, {agent: b}, {agent: c}, 3, {agent: b, name: 'bad name'}]\n"
        "  b: {}\n",
        "agents.yaml has 4 problems:\n"
        "  agents.yaml:8:26  agents.a.tools[1]: duplicate agent tool 'b' (already at "
        "agent_tools[0]).\n"
        "  agents.yaml:8:46  agents.a.tools[2].agent: unknown agent 'c' (declared: 'a', 'b').\n"
        "  agents.yaml:8:50  agents.a.tools[3]: expected a tool name or a mapping with `agent:` "
        "(an agent), got an integer.\n"
        "  agents.yaml:8:70  agents.a.tools[4].name: tool name 'bad name' is not valid for "
        "gpt-oss: use letters, digits and _ only, e.g. 'bad_name' (other characters break "
        "vLLM's harmony parser, vllm#23567).",
        id="agents-among-tools",
    ),
    pytest.param(
        "version: 1\n"
        "defaults: {backend: lcoal}\n"
        f"{BACKEND}\n"
        "tools:\n"
        "  get_weather: {function: 'mytools.weather:get_weather'}\n"
        "agents:\n"
        "  a:\n"
        "    backend: remote\n"
        "    tools: [get_wether]\n"
        "    handoffs: [bb]\n"
        "    agent_tools: [{agent: c}]\n"
        "  b: {}\n",
        "agents.yaml has 5 problems:\n"
        "  agents.yaml:2:21   defaults.backend: unknown backend 'lcoal'. Did you mean 'local'?\n"
        "  agents.yaml:8:14   agents.a.backend: unknown backend 'remote' (declared: 'local').\n"
        "  agents.yaml:9:13   agents.a.tools[0]: unknown tool 'get_wether'. Did you mean "
        "'get_weather'?\n"
        "  agents.yaml:10:16  agents.a.handoffs[0]: unknown agent 'bb'. Did you mean 'b'?\n"
        "  agents.yaml:11:27  agents.a.agent_tools[0].agent: unknown agent 'c' (declared: 'a', "
        "'b').",
        id="unknown-names",
    ),
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  one: {base_url: 'http://x/v1', model: m}\n"
        "  two: {base_url: 'http://y/v1', model: m}\n"
        "agents:\n"
        "  a: {}\n"
        "  b: {backend: two}\n",
        "agents.yaml:6:3: agents.a: no backend for this agent: set `backend:` on the agent or "
        "`defaults.backend` (declared: 'one', 'two').",
        id="no-backend",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "agents:\n"
        "  a:\n"
        "    instructions: Be brief.\n"
        "    instructions_file: prompts/haiku.md\n"
        "  b:\n"
        "    instructions_file: prompts/missing.md\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:6:5   agents.a.instructions_file: `instructions` and `instructions_file` "
        "are both set; keep one.\n"
        "  agents.yaml:8:24  agents.b.instructions_file: cannot read instructions file "
        "{base}/prompts/missing.md: No such file or directory.",
        id="instructions",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\nagents:\n  a: {{instructions_file: prompts}}\n",
        "agents.yaml:4:26: agents.a.instructions_file: cannot read instructions file "
        "{base}/prompts: Is a directory.",
        id="instructions-file-is-a-directory",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\nagents:\n  a: {{instructions_file: ~no-such-user/a.md}}\n",
        "agents.yaml:4:26: agents.a.instructions_file: cannot read instructions file "
        "~no-such-user/a.md: Could not determine home directory.",
        id="instructions-file-of-an-unknown-user",
    ),
    pytest.param(
        f'version: 1\n{BACKEND}\nagents:\n  a: {{instructions_file: "x\\0y"}}\n',
        "agents.yaml:4:26: agents.a.instructions_file: cannot read instructions file 'x\\x00y': "
        "embedded null byte.",
        id="instructions-file-with-a-nul",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "tools:\n"
        "  a: {function: 'builtins:dict'}\n"
        "  b: {function: 'math:hypot'}\n"
        "  c: {function: 'json:dumps'}\n"
        "  d: {function: 'json:dumps', strict: false}\n"
        "agents: {x: {tools: [a, b, c, d]}}\n",
        "agents.yaml has 3 problems:\n"
        "  agents.yaml:4:17  tools.a.function: `builtins:dict` is a class; a tool is a function "
        "(write one that uses the class).\n"
        "  agents.yaml:5:17  tools.b.function: `math:hypot` has no Python signature to describe "
        "to the model (a built-in?); wrap it in a function with typed parameters.\n"
        "  agents.yaml:6:17  tools.c.function: `json:dumps` takes **kwargs, which a strict schema "
        "cannot describe; name its parameters, or set `strict: false` on the tool.",
        id="tool-signatures",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "tools:\n"
        "  t: {function: 'json:loads', name: transfer_to_w, strict: false}\n"
        "agents:\n"
        "  x: {tools: [t], handoffs: [w, a-b, a_b, Writer, writer]}\n"
        "  w: {}\n"
        "  a-b: {}\n"
        "  a_b: {}\n"
        "  Writer: {}\n"
        "  writer: {}\n"
        "  y: {backend: !!binary aGk=}\n",
        "agents.yaml has 4 problems:\n"
        "  agents.yaml:6:30   agents.x.handoffs[0]: the handoff to 'w' reaches the model as tool "
        "'transfer_to_w', which is already used by tools[0]; rename one of them.\n"
        "  agents.yaml:6:38   agents.x.handoffs[2]: the handoff to 'a_b' reaches the model as "
        "tool 'transfer_to_a_b', which is already used by handoffs[1]; rename one of them.\n"
        "  agents.yaml:6:51   agents.x.handoffs[4]: the handoff to 'writer' reaches the model as "
        "tool 'transfer_to_writer', which is already used by handoffs[3]; rename one of them.\n"
        "  agents.yaml:12:16  agents.y.backend: binary values (!!binary) are not supported; write "
        "the text itself.",
        id="handoff-tool-names-and-binary-values",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "tools:\n"
        "  weather: {function: 'mytools.weather:get_weather'}\n"
        "  other_weather: {function: 'mytools.other:get_weather'}\n"
        "  place: {function: 'mytools.weather:geocode', name: get_weather}\n"
        "agents:\n"
        "  a:\n"
        "    tools: [weather, other_weather, place]\n"
        "    agent_tools: [{agent: b, name: weather}, {agent: b-c}, {agent: b_c}]\n"
        "  b: {}\n"
        "  b-c: {}\n"
        "  b_c: {}\n",
        "agents.yaml has 3 problems:\n"
        "  agents.yaml:9:22   agents.a.tools[1]: tool name 'get_weather' is already used by "
        "tools[0]; give one of them another `name:`.\n"
        "  agents.yaml:9:37   agents.a.tools[2]: tool name 'get_weather' is already used by "
        "tools[0]; give one of them another `name:`.\n"
        "  agents.yaml:10:60  agents.a.agent_tools[2]: tool name 'b_c' is already used by "
        "agent_tools[1]; give one of them another `name:`.",
        id="same-tool-name-twice",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "tools:\n"
        "  search: {function: 'mytools.weather:get_weather', name: web-search}\n"
        "  shout: {function: 'mytools.other:shout'}\n"
        "agents:\n"
        "  a:\n"
        "    agent_tools: [b.c, {agent: b.c, name: 'ask b'}]\n"
        "  b.c: {}\n",
        "agents.yaml has 4 problems:\n"
        "  agents.yaml:4:59  tools.search.name: tool name 'web-search' is not valid for gpt-oss: "
        "use letters, digits and _ only, e.g. 'web_search' (other characters break vLLM's "
        "harmony parser, vllm#23567).\n"
        "  agents.yaml:5:21  tools.shout.function: tool name '<lambda>' (the function's name) is "
        "not valid for gpt-oss: set `name:` to letters, digits and _ only, e.g. 'lambda' (other "
        "characters break vLLM's harmony parser, vllm#23567).\n"
        "  agents.yaml:8:19  agents.a.agent_tools[0]: tool name 'b.c' (from the agent's name) is "
        "not valid for gpt-oss: set `name:` to letters, digits and _ only, e.g. 'b_c' (other "
        "characters break vLLM's harmony parser, vllm#23567).\n"
        "  agents.yaml:8:43  agents.a.agent_tools[1].name: tool name 'ask b' is not valid for "
        "gpt-oss: use letters, digits and _ only, e.g. 'ask_b' (other characters break vLLM's "
        "harmony parser, vllm#23567).",
        id="tool-names-harmony-rejects",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "agents:\n"
        "  a:\n"
        "    output_schema:\n"
        "      type: object\n"
        "      properties: {n: {type: integr}}\n",
        "agents.yaml:7:30: agents.a.output_schema.properties.n.type: invalid JSON Schema: "
        "'integr' is not valid under any of the given schemas.",
        id="output-schema",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "agents:\n"
        "  a: {output_schema: {type: object, required: yes}}\n",
        "agents.yaml:4:47: agents.a.output_schema.required: invalid JSON Schema: True is not of "
        "type 'array'.",
        id="output-schema-required",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\nagents:\n  a: {{handoffs: [a, b]}}\n  b: {{handoffs: [a]}}\n",
        "agents.yaml:4:18: agents.a.handoffs[0]: an agent cannot hand off to itself.",
        id="self-handoff",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "agents:\n"
        "  a: {agent_tools: [b]}\n"
        "  b: {agent_tools: [c]}\n"
        "  c: {agent_tools: [{agent: a, name: back}]}\n"
        "  d: {agent_tools: [d]}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:6:21  agents.c.agent_tools[0]: agents used as tools form a cycle that can "
        "never finish: a -> b -> c -> a; remove one of these `agent_tools` entries.\n"
        "  agents.yaml:7:21  agents.d.agent_tools[0]: agents used as tools form a cycle that can "
        "never finish: d -> d; remove one of these `agent_tools` entries.",
        id="agent-tool-cycles",
    ),
    pytest.param(
        "version: 1\n"
        "defaults: {model_settings: {tool_choice: required}}\n"
        "backends:\n"
        "  local: {base_url: 'http://x/v1', model: m}\n"
        "  gpu: {kind: vllm-embedded, model: m}\n"
        "tools:\n"
        "  get_weather: {function: 'mytools.weather:get_weather'}\n"
        "agents:\n"
        "  a: {backend: local, tools: [get_weather], model_settings: {tool_choice: get_wether}}\n"
        "  b: {backend: local, agent_tools: [a], model_settings: {tool_choice: get_weather}}\n"
        "  c: {backend: local}\n"
        "  d: {backend: gpu, tools: [get_weather]}\n"
        "  e: {backend: local, tools: [get_weather], model_settings: {tool_choice: none}}\n"
        "  f: {backend: local, handoffs: [e], model_settings: {tool_choice: transfer_to_e}}\n",
        "agents.yaml has 4 problems:\n"
        "  agents.yaml:9:75   agents.a.model_settings.tool_choice: tool_choice 'get_wether' is not "
        "one of the agent's tools. Did you mean 'get_weather'?\n"
        "  agents.yaml:10:71  agents.b.model_settings.tool_choice: tool_choice 'get_weather' is "
        "not one of the agent's tools ('a').\n"
        "  agents.yaml:11:3   agents.c: tool_choice 'required' (from "
        "defaults.model_settings.tool_choice) asks for a tool call, but the agent has no tools: "
        "give it `tools`, or remove tool_choice.\n"
        "  agents.yaml:12:3   agents.d: tool_choice 'required' (from "
        "defaults.model_settings.tool_choice) needs a vLLM server, which constrains the model to "
        "call a tool; the engine of kind vllm-embedded does not: use `auto`, or a backend of kind "
        "vllm.",
        id="tool-choice",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_errors(text: str, expected: str) -> None:
    assert error(text) == expected.replace("{base}", str(PROJECT))


def test_tool_import_failures_are_placed_at_the_function_value(tmp_path: Path) -> None:
    write(tmp_path, {"boom/__init__.py": "", "boom/bad.py": "import not_a_module_xyz\n"})
    message = error(
        f"""\
        version: 1
        {BACKEND}
        tools:
          bad: {{function: boom.bad:f}}
          typo: {{function: "boom.badd:f"}}
          malformed: {{function: "boom.bad"}}
        agents: {{a: {{tools: [bad, typo, malformed]}}}}
        """,
        base=tmp_path,
    )
    assert message == (
        "agents.yaml has 3 problems:\n"
        f"  agents.yaml:4:19  tools.bad.function: cannot import `boom.bad` (looked in {tmp_path} "
        "and on sys.path): ModuleNotFoundError: No module named 'not_a_module_xyz'.\n"
        f"  agents.yaml:5:20  tools.typo.function: cannot import `boom.badd` (looked in "
        f"{tmp_path} and on sys.path): ModuleNotFoundError: No module named 'boom.badd'.\n"
        "  agents.yaml:6:25  tools.malformed.function: expected 'package.module:function', "
        "got 'boom.bad'."
    )


def test_an_instructions_file_that_is_not_text(tmp_path: Path) -> None:
    (tmp_path / "prompt.md").write_bytes(b"\xff\xfe\x00")
    message = error(
        f"version: 1\n{BACKEND}\nagents: {{a: {{instructions_file: prompt.md}}}}\n", base=tmp_path
    )
    assert message == (
        f"agents.yaml:3:33: agents.a.instructions_file: instructions file {tmp_path}/prompt.md "
        "is not UTF-8 text."
    )


def test_handoff_cycles_between_agents_are_allowed() -> None:
    config = parse(
        f"""\
        version: 1
        {BACKEND}
        agents:
          triage: {{handoffs: [billing, support]}}
          billing: {{handoffs: [triage]}}
          support: {{handoffs: [billing, triage]}}
        """
    )
    assert config.spec.agents["billing"].handoffs == ["triage"]


def test_without_imports_tool_names_come_from_the_references() -> None:
    text = (
        f"version: 1\n{BACKEND}\n"
        "tools:\n"
        "  a: {function: 'mytools.nope:get_weather'}\n"
        "  b: {function: 'x:y', name: named}\n"
        "  c: {function: 'mytools.weather:geocode', name: get_weather}\n"
        "agents: {x: {tools: [a, b]}, y: {tools: [a, c]}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        parse_config(text, base_dir=PROJECT, environ={}, import_tools=False)
    assert str(caught.value) == (
        "agents.yaml:7:45: agents.y.tools[1]: tool name 'get_weather' is already used by "
        "tools[0]; give one of them another `name:`."
    )
    config = parse_config(
        text.replace("y: {tools: [a, c]}", "y: {tools: [c]}"),
        base_dir=PROJECT,
        environ={},
        import_tools=False,
    )
    assert config.functions == {}
    assert config.tool_names == {"a": "get_weather", "b": "named", "c": "get_weather"}
    assert "mytools" not in sys.modules


def test_places_with_an_unset_variable_are_not_checked_again() -> None:
    message = error(
        f"""\
        version: 1
        {BACKEND}
        tools:
          t: {{function: "${{MODULE}}:get_weather", name: "${{NAME}}"}}
        agents:
          a:
            backend: ${{BACKEND}}
            tools: [t, "${{TOOL}}"]
            handoffs: ["${{AGENT}}"]
            agent_tools: [{{agent: b, name: "${{TOOL_NAME}}"}}]
            output_schema: {{type: object, required: "${{REQUIRED}}"}}
          b: {{}}
        """
    )
    assert message == (
        "agents.yaml has 7 problems:\n"
        "  agents.yaml:4:17   tools.t.function: environment variable `MODULE` is not set (use "
        "${MODULE:-default} for a default).\n"
        "  agents.yaml:4:48   tools.t.name: environment variable `NAME` is not set (use "
        "${NAME:-default} for a default).\n"
        "  agents.yaml:7:14   agents.a.backend: environment variable `BACKEND` is not set (use "
        "${BACKEND:-default} for a default).\n"
        "  agents.yaml:8:16   agents.a.tools[1]: environment variable `TOOL` is not set (use "
        "${TOOL:-default} for a default).\n"
        "  agents.yaml:9:16   agents.a.handoffs[0]: environment variable `AGENT` is not set (use "
        "${AGENT:-default} for a default).\n"
        "  agents.yaml:10:36  agents.a.agent_tools[0].name: environment variable `TOOL_NAME` is "
        "not set (use ${TOOL_NAME:-default} for a default).\n"
        "  agents.yaml:11:45  agents.a.output_schema.required: environment variable `REQUIRED` is "
        "not set (use ${REQUIRED:-default} for a default)."
    )
