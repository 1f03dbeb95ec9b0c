"""`base_urls` and its settings in agents.yaml: checks with the field path, interpolation, the
URLs callers see, the JSON Schema, secrets, and the commands that read base URLs without
running anything (`validate`, `list`, `up`)."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml
from click.testing import CliRunner

from agent_runtime.cli import cli
from agent_runtime.config import BackendSpec, config_json_schema
from tests.config.helpers import error, parse

AGENTS = "agents: {x: {backend: a}}\n"

ERRORS = [
    pytest.param(
        "  a: {base_url: 'http://h/v1', base_urls: ['http://h1/v1'], model: m}\n",
        "agents.yaml:3:6: backends.a: `base_url` and `base_urls` are both set; use base_url "
        "for one server, or base_urls for several replicas of it.",
        id="both",
    ),
    pytest.param(
        "  a: {base_urls: [], model: m}\n",
        "agents.yaml:3:18: backends.a.base_urls: expected at least one URL, e.g. "
        "[http://gpu-1:8000/v1, http://gpu-2:8000/v1].",
        id="empty",
    ),
    pytest.param(
        "  a: {base_urls: ['http://h1/v1', 'http://h2/v1', 'http://h1/v1/'], model: m}\n",
        "agents.yaml:3:18: backends.a.base_urls: 'http://h1/v1/' is listed twice; list each "
        "replica once.",
        id="duplicate",
    ),
    pytest.param(
        "  a: {base_urls: 'http://h1/v1', model: m}\n",
        "agents.yaml:3:18: backends.a.base_urls: expected a list, got a string (write "
        "[http://h1/v1] for a single item).",
        id="not-a-list",
    ),
    pytest.param(
        "  a: {kind: vllm-embedded, base_urls: ['http://h1/v1'], model: m}\n",
        "agents.yaml:3:6: backends.a: `base_urls` cannot be used with kind vllm-embedded, which "
        "runs vLLM in this process: remove it, or use kind vllm for a server.",
        id="embedded",
    ),
]


@pytest.mark.parametrize(("backend", "expected"), ERRORS)
def test_errors_name_the_field(backend: str, expected: str) -> None:
    assert error(f"version: 1\nbackends:\n{backend}{AGENTS}") == expected


def test_every_problem_at_once() -> None:
    text = (
        "version: 1\n"
        "backends:\n"
        "  a: {base_urls: ['http://h1/v1', 'h2:8000/v1', 'http://h:0/v1'], model: m}\n"
        "  b:\n"
        "    base_urls: ['http://localhost:8000/v1', 'http://localhost:8001/v1']\n"
        "    model: m\n"
        "    launch: auto\n"
        "    affinity: sticky\n"
        "    down_for_s: 0\n"
        "    health_check_s: -1\n" + AGENTS
    )
    assert error(text) == (
        "agents.yaml has 6 problems:\n"
        "  agents.yaml:3:35   backends.a.base_urls[1]: expected an http:// or https:// URL, "
        "e.g. http://localhost:8000/v1.\n"
        "  agents.yaml:3:49   backends.a.base_urls[2]: 'http://h:0/v1' has port 0; e.g. "
        "http://localhost:8000/v1.\n"
        "  agents.yaml:7:13   backends.b.launch: launch: auto starts one server, but this "
        "backend has several replicas (base_urls); start them yourself and set `launch: "
        "never`, or use base_url.\n"
        "  agents.yaml:8:15   backends.b.affinity: expected 'none' or 'session', got 'sticky'.\n"
        "  agents.yaml:9:17   backends.b.down_for_s: must be greater than 0, got 0.\n"
        "  agents.yaml:10:21  backends.b.health_check_s: must be greater than 0, got -1."
    )


def test_replica_urls_are_interpolated_and_listed() -> None:
    config = parse(
        "version: 1\n"
        "backends:\n"
        "  a:\n"
        "    base_urls: ['${GPU_1}', '${GPU_2:-http://gpu-2:8000/v1}']\n"
        "    model: m\n"
        "    affinity: session\n"
        "    health_check_s: null\n" + AGENTS,
        environ={"GPU_1": "http://gpu-1:8000/v1"},
    )
    spec = config.spec.backends["a"]
    assert spec.urls == ("http://gpu-1:8000/v1", "http://gpu-2:8000/v1")
    assert spec.url == "http://gpu-1:8000/v1, http://gpu-2:8000/v1"
    assert (spec.affinity, spec.health_check_s, spec.down_for_s) == ("session", None, 30)


def test_one_base_url_and_in_process_backends_have_the_urls_they_had() -> None:
    one = BackendSpec(base_url="http://h/v1", model="m")
    assert (one.urls, one.url, one.affinity) == (("http://h/v1",), "http://h/v1", "none")
    embedded = BackendSpec(kind="vllm-embedded", model="m")
    assert (embedded.urls, embedded.url) == ((), "in-process vLLM")


def test_the_json_schema_describes_base_urls() -> None:
    schema = config_json_schema()
    backend = schema["$defs"]["BackendSpec"]["properties"]
    urls = backend["base_urls"]["anyOf"][0]
    assert urls["type"] == "array"
    assert urls["items"]["pattern"] == r"^(https?://|\$\{)"
    assert backend["affinity"]["enum"] == ["none", "session"]
    document = {
        "version": 1,
        "backends": {"a": {"base_urls": ["http://h1/v1", "${H2}"], "model": "m"}},
        "agents": {"x": {}},
    }
    validator = jsonschema.Draft202012Validator(schema)
    assert list(validator.iter_errors(document)) == []
    document["backends"]["a"]["base_urls"] = ["h1/v1"]  # type: ignore[index]
    assert list(validator.iter_errors(document))


def test_a_password_in_a_replica_url_is_a_secret() -> None:
    config = parse(
        "version: 1\nbackends:\n"
        "  a: {base_urls: ['http://h1/v1', 'http://user:hunter2-pw@h2/v1'], model: m}\n" + AGENTS
    )
    assert "hunter2-pw" in config.secrets()


def write(tmp_path: Path, backend: str) -> Path:
    path = tmp_path / "agents.yaml"
    path.write_text(f"version: 1\nbackends:\n  pool: {backend}\nagents:\n  a: {{}}\n")
    return path


def test_validate_warns_about_each_replica_without_v1(tmp_path: Path) -> None:
    path = write(tmp_path, "{base_urls: ['http://h1:8000/v1', 'http://h2:8000'], model: m}")
    result = CliRunner().invoke(cli, ["validate", "-c", str(path)])
    assert result.exit_code == 0
    assert result.stderr == (
        f"Warning: {path}: backends.pool.base_urls[1]: 'http://h2:8000' does not end in /v1, "
        "where vLLM serves its API; set it to http://h2:8000/v1.\n"
    )


def test_list_shows_the_replicas(tmp_path: Path) -> None:
    path = write(tmp_path, "{base_urls: ['http://h1/v1', 'http://h2/v1'], model: m}")
    result = CliRunner().invoke(cli, ["list", "-c", str(path), "--json"])
    row = json.loads(result.stdout)[0]
    assert (row["base_url"], row["base_urls"]) == (None, ["http://h1/v1", "http://h2/v1"])


def test_up_says_it_starts_no_replicas(tmp_path: Path) -> None:
    path = write(tmp_path, "{base_urls: ['http://h1/v1', 'http://h2/v1'], model: m}")
    result = CliRunner().invoke(cli, ["up", "-c", str(path)])
    assert result.exit_code == 2
    assert result.stderr == (
        "Error: backend `pool` has several replicas (base_urls), and `up` starts one server: "
        "start each replica yourself (`vllm serve`), and check them with `agent-runtime doctor "
        "--backend pool`\n"
    )


def test_yaml_lists_in_block_style_work_too() -> None:
    text = yaml.safe_dump(
        {
            "version": 1,
            "backends": {"a": {"base_urls": ["http://h1/v1", "http://h2/v1"], "model": "m"}},
            "agents": {"x": {}},
        }
    )
    assert parse(text).spec.backends["a"].urls == ("http://h1/v1", "http://h2/v1")
