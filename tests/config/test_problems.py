"""pydantic's validation errors in agents.yaml's words, at their place in the document, with
"Did you mean" hints (`agent_runtime.config.problems`)."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from agent_runtime.config.document import Loc, compose
from agent_runtime.config.problems import report_validation_error
from agent_runtime.errors import ConfigError
from tests.config.helpers import BACKEND, PROJECT, error

ERRORS = [
    pytest.param(
        "version: 1\nbackends: {}\nagents: {}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:2:11  backends: declare at least one entry under `backends`.\n"
        "  agents.yaml:3:9   agents: declare at least one entry under `agents`.",
        id="empty-sections",
    ),
    pytest.param(
        "version: 1\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:1:1  missing required field `backends`.\n"
        "  agents.yaml:1:1  missing required field `agents`.",
        id="missing-sections",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\ndefaults: {{output_retries: -1}}\n"
        "agents:\n  a: {output_retries: x, output_schema: 'a:B:C'}\n",
        "agents.yaml has 3 problems:\n"
        "  agents.yaml:3:28  defaults.output_retries: must be at least 0, got -1.\n"
        "  agents.yaml:5:23  agents.a.output_retries: expected an integer, got 'x'.\n"
        "  agents.yaml:5:41  agents.a.output_schema: expected a 'package.module:Type' reference "
        "(or a JSON Schema mapping), got 'a:B:C'.",
        id="output-retries-and-types",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\nagent:\n  a: {{}}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:1:1  missing required field `agents`.\n"
        "  agents.yaml:3:1  agent: unknown field. Did you mean `agents`?",
        id="unknown-root-key",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\nagents:\n  a:\n    temprature: 0.3\n",
        "agents.yaml:5:5: agents.a.temprature: unknown field. Did you mean "
        "`model_settings.temperature`?",
        id="model-setting-on-the-agent",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\nagents:\n  a:\n    model_settings: {{temprature: 0.3}}\n",
        "agents.yaml:5:22: agents.a.model_settings.temprature: unknown field. "
        "Did you mean `temperature`?",
        id="misspelt-model-setting",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\nagents:\n  a:\n    colour: red\n",
        "agents.yaml:5:5: agents.a.colour: unknown field (allowed: `description`, `instructions`, "
        "`instructions_file`, `backend`, `model`, `model_settings`, `tools`, `agent_tools`, "
        "`handoffs`, `mcp_servers`, `output_schema`, `output_retries`, `max_turns`, "
        "`run_timeout_s`, `max_repeated_calls`, `max_invalid_calls`).",
        id="unknown-field-lists-the-allowed",
    ),
    pytest.param(
        "version: 1\nbackends:\n  local:\n    base_url: http://x/v1\nagents: {a: {}}\n",
        "agents.yaml:3:3: backends.local: missing required field `model`.",
        id="missing-field",
    ),
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  local:\n"
        "    base_url: localhost:8000/v1\n"
        "    model: [m]\n"
        "    kind: vlm\n"
        "    timeout_s: soon\n"
        "    max_retries: -1\n"
        "    headers: {X-Id: 7}\n"
        "agents: {a: {}}\n",
        "agents.yaml has 6 problems:\n"
        "  agents.yaml:4:15  backends.local.base_url: expected an http:// or https:// URL, "
        "e.g. http://localhost:8000/v1.\n"
        "  agents.yaml:5:12  backends.local.model: expected a string, got a list.\n"
        "  agents.yaml:6:11  backends.local.kind: expected 'vllm', 'openai' or 'vllm-embedded', "
        "got 'vlm'. Did you mean 'vllm'?\n"
        "  agents.yaml:7:16  backends.local.timeout_s: expected a number, got 'soon'.\n"
        "  agents.yaml:8:18  backends.local.max_retries: must be at least 0, got -1.\n"
        "  agents.yaml:9:21  backends.local.headers.X-Id: expected a string, got an integer "
        "(quote the value to keep it as text).",
        id="backend-values",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\n"
        "agents:\n"
        "  a:\n"
        "    model_settings: {reasoning_effort: max, tool_choice: a-b, top_p: 2}\n"
        "    max_turns: 0\n"
        "    tools: get_weather\n"
        "    agent_tools: [3]\n"
        "    output_schema: [1]\n",
        "agents.yaml has 7 problems:\n"
        "  agents.yaml:5:40  agents.a.model_settings.reasoning_effort: reasoning_effort 'max' is "
        "not supported: vLLM's gpt-oss accepts only 'low', 'medium' or 'high'.\n"
        "  agents.yaml:5:58  agents.a.model_settings.tool_choice: expected auto, none, required "
        "or the name of one of the agent's tools, got 'a-b'.\n"
        "  agents.yaml:5:70  agents.a.model_settings.top_p: must be at most 1, got 2.\n"
        "  agents.yaml:6:16  agents.a.max_turns: must be greater than 0, got 0.\n"
        "  agents.yaml:7:12  agents.a.tools: expected a list, got a string "
        "(write [get_weather] for a single item).\n"
        "  agents.yaml:8:19  agents.a.agent_tools[0]: expected an agent name or a mapping with "
        "`agent:`, got an integer.\n"
        "  agents.yaml:9:20  agents.a.output_schema: expected a JSON Schema mapping or a "
        "'package.module:Type' reference, got a list.",
        id="agent-values",
    ),
    pytest.param(
        f"version: 1\n{BACKEND}\nagents:\n  a:\n    agent_tools: [{{agnet: b}}]\n  b: {{}}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:5:19  agents.a.agent_tools[0]: missing required field `agent`.\n"
        "  agents.yaml:5:20  agents.a.agent_tools[0].agnet: unknown field. Did you mean `agent`?",
        id="agent-tool-mapping",
    ),
    pytest.param(
        "version: 1\n"
        "defaults: {max_trns: 3, model_settings: []}\n"
        "backends:\n"
        "  local: {base_url: 'http://x/v1', model: m, timeout_s: [1], engine: 5}\n"
        "tools:\n"
        "  t: {function: 'mytools.weather:get_weather', strict: [1]}\n"
        "agents:\n"
        "  a: {max_turns: 2.5, model_settings: {parallel_tool_calls: maybe, extra_body: 5}}\n"
        "sessions: 5\n"
        "tracing: {enabled: maybe}\n",
        "agents.yaml has 10 problems:\n"
        "  agents.yaml:2:12   defaults.max_trns: unknown field. Did you mean `max_turns`?\n"
        "  agents.yaml:2:41   defaults.model_settings: expected a mapping, got a list.\n"
        "  agents.yaml:4:57   backends.local.timeout_s: expected a number, got a list.\n"
        "  agents.yaml:4:70   backends.local.engine: expected a mapping, got an integer.\n"
        "  agents.yaml:6:56   tools.t.strict: expected true or false, got a list.\n"
        "  agents.yaml:8:18   agents.a.max_turns: expected an integer, got 2.5.\n"
        "  agents.yaml:8:61   agents.a.model_settings.parallel_tool_calls: expected true or false, "
        "got 'maybe'.\n"
        "  agents.yaml:8:80   agents.a.model_settings.extra_body: expected a mapping, got an "
        "integer.\n"
        "  agents.yaml:9:11   sessions: expected a mapping, got an integer.\n"
        "  agents.yaml:10:20  tracing.enabled: expected true or false, got 'maybe'.",
        id="value-types",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_errors(text: str, expected: str) -> None:
    assert error(text) == expected.replace("{base}", str(PROJECT))


class _Limits(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: int = 0
    sizes: dict[str, int] = {}
    items: list[str] = []


def test_report_validation_error_places_the_errors_of_any_model() -> None:
    def is_secret(loc: Loc) -> bool:
        return loc == ("token",)

    document = compose(
        "token: sk-123\nsizes: {a: [1], b: x}\nitem: 1\nitems: one\n",
        source="limits.yaml",
        environ={},
        is_secret=is_secret,
    )
    with pytest.raises(ValidationError) as caught:
        _Limits.model_validate(document.data)
    for problem in caught.value.errors(include_url=False):
        report_validation_error(
            document, problem["loc"], problem, root=_Limits, is_secret=is_secret
        )
    assert str(ConfigError(document.problems)) == (
        "limits.yaml has 5 problems:\n"
        "  limits.yaml:1:8   token: expected an integer, got a string.\n"
        "  limits.yaml:2:12  sizes.a: expected an integer, got a list.\n"
        "  limits.yaml:2:20  sizes.b: expected an integer, got 'x'.\n"
        "  limits.yaml:3:1   item: unknown field. Did you mean `items`?\n"
        "  limits.yaml:4:8   items: expected a list, got a string (write [one] for a single item)."
    )
