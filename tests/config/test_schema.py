"""The agents.yaml models: field constraints, checks of URLs and backend kinds, and the JSON
Schema they make (`agent_runtime.config.schema`)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest
import yaml
from pydantic import ValidationError

from agent_runtime.config import (
    AgentSpec,
    AgentToolSpec,
    BackendSpec,
    ModelSettingsSpec,
    RuntimeConfig,
    config_json_schema,
    launch_problem,
    url_problem,
)
from agent_runtime.config.schema import agent_tool_name, is_secret
from tests.config.helpers import BACKEND, EXAMPLE, PROJECT, error, parse

ERRORS = [
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  gpu:\n"
        "    kind: vllm-embedded\n"
        "    model: m\n"
        "    base_url: http://localhost:8000/v1\n"
        "    launch: auto\n"
        "  gpu2: {kind: vllm-embedded, model: m, launch: auto}\n"
        "  tuned:\n"
        "    kind: vllm-embedded\n"
        "    model: m\n"
        "    engine: {tensor_parallel_size: 0, prefix_reuse: fast, gpu: 1}\n"
        "  server:\n"
        "    model: m\n"
        "    engine: {}\n"
        "agents: {a: {backend: gpu}}\n",
        "agents.yaml has 6 problems:\n"
        "  agents.yaml:4:5    backends.gpu: `base_url` and `launch` cannot be used with kind "
        "vllm-embedded, which runs vLLM in this process: remove them, or use kind vllm for a "
        "server.\n"
        "  agents.yaml:8:9    backends.gpu2: `launch` cannot be used with kind vllm-embedded, "
        "which runs vLLM in this process: remove it, or use kind vllm for a server.\n"
        "  agents.yaml:12:36  backends.tuned.engine.tensor_parallel_size: must be at least 1, "
        "got 0.\n"
        "  agents.yaml:12:53  backends.tuned.engine.prefix_reuse: expected 'exact' or "
        "'rerender', got 'fast'.\n"
        "  agents.yaml:12:59  backends.tuned.engine.gpu: unknown field (allowed: "
        "`tensor_parallel_size`, `gpu_memory_utilization`, `max_model_len`, `prefix_reuse`).\n"
        "  agents.yaml:14:5   backends.server: missing required field `base_url` (only kind "
        "vllm-embedded needs no server).",
        id="embedded-backend",
    ),
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  a: {base_url: 'http://h:port/v1', model: m}\n"
        "  b: {base_url: 'http://[::1/v1', model: m}\n"
        "  c: {base_url: 'http:///v1', model: m}\n"
        "  d: {base_url: 'http://h:${PORT:-x}/v1', model: m}\n"
        "agents: {x: {backend: a}}\n",
        "agents.yaml has 4 problems:\n"
        "  agents.yaml:3:17  backends.a.base_url: 'http://h:port/v1' is not a valid URL (Port "
        "could not be cast to integer value as 'port'); e.g. http://localhost:8000/v1.\n"
        "  agents.yaml:4:17  backends.b.base_url: 'http://[::1/v1' is not a valid URL (Invalid "
        "IPv6 URL); e.g. http://localhost:8000/v1.\n"
        "  agents.yaml:5:17  backends.c.base_url: 'http:///v1' has no host; e.g. "
        "http://localhost:8000/v1.\n"
        "  agents.yaml:6:17  backends.d.base_url: 'http://h:x/v1' is not a valid URL (Port "
        "could not be cast to integer value as 'x'); e.g. http://localhost:8000/v1.",
        id="unusable-urls",
    ),
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  a: {base_url: 'http://gpu 1/v1', model: m}\n"
        "  b: {base_url: 'http://h:0/v1', model: m}\n"
        "  c: {base_url: 'http://h:70000/v1', model: m}\n"
        '  d: {base_url: "http://h/v1\\t", model: m}\n'
        "agents: {x: {backend: a}}\n",
        "agents.yaml has 4 problems:\n"
        "  agents.yaml:3:17  backends.a.base_url: 'http://gpu 1/v1' has spaces or control "
        "characters; e.g. http://localhost:8000/v1.\n"
        "  agents.yaml:4:17  backends.b.base_url: 'http://h:0/v1' has port 0; e.g. "
        "http://localhost:8000/v1.\n"
        "  agents.yaml:5:17  backends.c.base_url: 'http://h:70000/v1' is not a valid URL (Port "
        "out of range 0-65535); e.g. http://localhost:8000/v1.\n"
        "  agents.yaml:6:17  backends.d.base_url: 'http://h/v1\\t' has spaces or control "
        "characters; e.g. http://localhost:8000/v1.",
        id="urls-with-spaces-or-a-bad-port",
    ),
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  a: {base_url: null, model: m}\n"
        "  b: {base_url: 'http://h/v1', model: m, engine: {}}\n"
        "agents: {x: {backend: a}}\n",
        "agents.yaml has 2 problems:\n"
        "  agents.yaml:3:6  backends.a: missing required field `base_url` (only kind "
        "vllm-embedded needs no server).\n"
        "  agents.yaml:4:6  backends.b: `engine` is for kind vllm-embedded only (vLLM in this "
        "process).",
        id="server-backends",
    ),
    pytest.param(
        "version: 1\n"
        "backends:\n"
        "  a: {base_url: 'http://gpu-box:8000/v1', model: m, launch: auto}\n"
        "  b: {base_url: 'http://localhost:8000/', model: m, launch: auto}\n"
        "  c: {base_url: 'localhost:8000/v1', model: m, launch: auto}\n"
        "agents: {x: {backend: a}}\n",
        "agents.yaml has 3 problems:\n"
        "  agents.yaml:3:61  backends.a.launch: launch: auto starts the server on this machine, "
        "but the host of base_url 'gpu-box' is not local; use localhost, 127.0.0.1 or 0.0.0.0, "
        "or set `launch: never` and start the server yourself.\n"
        "  agents.yaml:4:61  backends.b.launch: launch: auto starts vLLM, which serves its API "
        "under /v1, but base_url is 'http://localhost:8000/'; end it in /v1, e.g. "
        "http://localhost:8000/v1.\n"
        "  agents.yaml:5:17  backends.c.base_url: expected an http:// or https:// URL, e.g. "
        "http://localhost:8000/v1.",
        id="launch-auto",
    ),
]


@pytest.mark.parametrize(("text", "expected"), ERRORS)
def test_errors(text: str, expected: str) -> None:
    assert error(text) == expected.replace("{base}", str(PROJECT))


def test_the_json_schema_is_valid_and_accepts_the_example() -> None:
    schema = config_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(yaml.safe_load(EXAMPLE))) == []
    assert list(validator.iter_errors(yaml.safe_load(EXAMPLE.replace("tools:\n", "tool:\n"))))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "agents.yaml"
    backend = schema["$defs"]["BackendSpec"]["properties"]
    assert backend["api_key"]["default"] == "EMPTY"
    assert backend["base_url"]["pattern"] == r"^(https?://|\$\{)"
    assert backend["timeout_s"] == {
        "title": "Timeout S",
        "default": 120,
        "description": "Time limit of one model call (one attempt), in seconds, streaming "
        "included.",
        "anyOf": [
            {"type": "number", "exclusiveMinimum": 0},
            {"type": "string", "pattern": r"\$\{"},
        ],
    }


def test_every_field_in_the_json_schema_has_a_description() -> None:
    schema = config_json_schema()
    models = {"RuntimeConfig": schema, **schema["$defs"]}
    missing = [
        f"{model}.{name}"
        for model, definition in models.items()
        for name, prop in definition["properties"].items()
        if not prop.get("description")
    ]
    assert missing == []
    assert all(definition.get("additionalProperties") is False for definition in models.values())
    assert set(schema["$defs"]) == {
        "AgentSpec",
        "AgentToolSpec",
        "BackendSpec",
        "DefaultsSpec",
        "DurabilitySpec",
        "EngineSpec",
        "McpApprovalSpec",
        "McpServerSpec",
        "ModelSettingsSpec",
        "ServeSpec",
        "SessionsSpec",
        "ToolSpec",
        "TracingSpec",
    }


@pytest.mark.parametrize(
    ("model", "data"),
    [
        pytest.param(
            BackendSpec, {"base_url": "http://x", "model": "m", "modle": "x"}, id="backend"
        ),
        pytest.param(AgentSpec, {"instructions": "x", "tool": []}, id="agent"),
        pytest.param(ModelSettingsSpec, {"temprature": 1}, id="model-settings"),
        pytest.param(AgentSpec, {"instructions": "a", "instructions_file": "b"}, id="both"),
    ],
)
def test_the_models_reject_unknown_keys_and_conflicts(
    model: type[Any], data: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_the_models_are_frozen() -> None:
    spec = ModelSettingsSpec(temperature=0.5)
    with pytest.raises(ValidationError):
        spec.temperature = 1.0
    assert RuntimeConfig.model_config.get("extra") == "forbid"


def test_a_backend_url_is_its_base_url_or_in_process_vllm() -> None:
    config = parse(
        """\
        version: 1
        defaults: {backend: server}
        backends:
          server: {base_url: "http://gpu-1:8000/v1", model: m}
          gpu: {kind: vllm-embedded, model: m, engine: {tensor_parallel_size: 2}}
        agents: {a: {}}
        """
    )
    server, gpu = config.spec.backends["server"], config.spec.backends["gpu"]
    assert (server.url, gpu.url) == ("http://gpu-1:8000/v1", "in-process vLLM")
    assert gpu.engine is not None
    assert (gpu.engine.tensor_parallel_size, gpu.engine.prefix_reuse) == (2, "exact")


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8000/v1",
        "https://api.example.com/v1",
        "http://[::1]:8000/v1",
        "http://user:pass@h:65535/v1?x=1",
    ],
)
def test_url_problem_accepts_urls_http_clients_can_use(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    ("base_url", "expected"),
    [
        pytest.param(
            "",
            "launch: auto needs an http:// base_url, got ''; use http://, or set `launch: never` "
            "and start the server yourself.",
            id="no-url",
        ),
        pytest.param(
            "http://10.0.0.7:8000/v1",
            "launch: auto starts the server on this machine, but the host of base_url "
            "'10.0.0.7' is not local; use localhost, 127.0.0.1 or 0.0.0.0, or set `launch: "
            "never` and start the server yourself.",
            id="a-private-address-is-not-local",
        ),
        pytest.param(
            "http://localhost:99999/v1",
            "launch: auto needs a valid port in base_url, got 'http://localhost:99999/v1'.",
            id="port-out-of-range",
        ),
    ],
)
def test_launch_problem(base_url: str, expected: str) -> None:
    assert launch_problem(base_url) == expected


@pytest.mark.parametrize(
    "base_url",
    [
        "http://localhost:8000/v1",
        "http://LOCALHOST:8000/v1/",
        "http://127.0.0.2:8000/v1",
        "http://0.0.0.0/v1",
        "http://[::1]:8000/v1",
        "http://[::]:8000/v1",
    ],
)
def test_launch_problem_accepts_local_addresses(base_url: str) -> None:
    assert launch_problem(base_url) is None


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        pytest.param((), False, id="the-document"),
        pytest.param(("backends", "local", "api_key"), True, id="api-key"),
        pytest.param(("backends", "local", "headers", "Authorization"), True, id="header"),
        pytest.param(
            ("agents", "a", "model_settings", "extra_headers", "X-Key"), True, id="extra-header"
        ),
        pytest.param(("backends", "local", "headers"), False, id="the-headers-mapping"),
        pytest.param(("backends", "local", "model"), False, id="model"),
    ],
)
def test_is_secret(loc: tuple[str, ...], expected: bool) -> None:
    assert is_secret(loc) is expected


def test_agent_tool_name_is_the_name_or_the_agent_name_with_underscores() -> None:
    assert agent_tool_name(AgentToolSpec(agent="weather-haiku")) == "weather_haiku"
    assert agent_tool_name(AgentToolSpec(agent="weather-haiku", name="poet")) == "poet"


def test_a_number_written_as_interpolation_is_allowed_by_the_json_schema() -> None:
    validator = jsonschema.Draft202012Validator(config_json_schema())
    document = yaml.safe_load(f"version: 1\n{BACKEND}\nagents: {{a: {{max_turns: '${{TURNS}}'}}}}")
    assert list(validator.iter_errors(document)) == []
    document["agents"]["a"]["max_turns"] = "many"
    (problem,) = validator.iter_errors(document)
    assert problem.message == "'many' is not valid under any of the given schemas"
