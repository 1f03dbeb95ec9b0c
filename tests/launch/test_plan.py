"""Launch plans: which backends can be started, and the command that starts them."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime import ConfigError
from agent_runtime.config import load_config, parse_config
from agent_runtime.launch import (
    GPT_OSS_FLAGS,
    plan_launch,
)
from tests.launch.helpers import (
    MODEL,
    plan_for,
)


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        pytest.param(
            "http://gpu-box:8000/v1",
            "launch: auto starts the server on this machine, but the host of base_url "
            "'gpu-box' is not local; use localhost, 127.0.0.1 or 0.0.0.0, or set `launch: "
            "never` and start the server yourself.",
            id="remote",
        ),
        pytest.param(
            "https://localhost:8000/v1",
            "launch: auto needs an http:// base_url, got 'https://localhost:8000/v1'; use "
            "http://, or set `launch: never` and start the server yourself.",
            id="https",
        ),
        pytest.param(
            "http://localhost:8000/api",
            "launch: auto starts vLLM, which serves its API under /v1, but base_url is "
            "'http://localhost:8000/api'; end it in /v1, e.g. http://localhost:8000/v1.",
            id="path",
        ),
    ],
)
def test_launch_needs_a_local_v1_url(base_url: str, message: str) -> None:
    text = (
        "version: 1\n"
        "backends:\n"
        "  local:\n"
        f"    base_url: {base_url}\n"
        f"    model: {MODEL}\n"
        "    launch: auto\n"
        "agents:\n"
        "  a: {instructions: hi}\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    assert str(info.value) == f"agents.yaml:6:13: backends.local.launch: {message}"


@pytest.mark.parametrize(
    "base_url", ["http://localhost:8000/v1", "http://0.0.0.0:8000/v1/", "http://[::1]:8000/v1"]
)
def test_local_urls_can_be_launched(base_url: str) -> None:
    text = (
        f"version: 1\nbackends:\n  local: {{base_url: '{base_url}', model: m, launch: auto}}\n"
        "agents:\n  a: {instructions: hi}\n"
    )
    assert parse_config(text).spec.backends["local"].launch == "auto"


def test_the_default_command_is_vllm_serve_with_gpt_oss_flags(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\n"
        "backends:\n"
        "  local:\n"
        "    base_url: http://0.0.0.0:8123/v1\n"
        f"    model: {MODEL}\n"
        "    api_key: sk-local\n"
        "    launch: auto\n"
        "    serve_args: [--max-model-len, '32768', --api-key, sk-local]\n"
        "agents:\n"
        "  a: {instructions: hi}\n"
    )
    plan = plan_launch(load_config(path), "local")
    assert plan.command == (
        "vllm", "serve", MODEL, "--host", "0.0.0.0", "--port", "8123", *GPT_OSS_FLAGS,
        "--max-model-len", "32768", "--api-key", "sk-local",
    )  # fmt: skip
    assert GPT_OSS_FLAGS == (
        "--tool-call-parser", "openai", "--enable-auto-tool-choice",
        "--reasoning-parser", "openai_gptoss",
    )  # fmt: skip
    assert plan.shown_command == (
        f"vllm serve {MODEL} --host 0.0.0.0 --port 8123 --tool-call-parser openai "
        "--enable-auto-tool-choice --reasoning-parser openai_gptoss --max-model-len 32768 "
        "--api-key '***'"
    )
    assert "sk-local" not in repr(plan)
    assert (plan.root_url, plan.port, plan.api_key) == ("http://0.0.0.0:8123", 8123, "sk-local")
    assert plan.log_path == tmp_path / ".agent-runtime" / "vllm-local.log"
    assert plan.cwd == tmp_path
    assert plan.startup_timeout_s == 900


def test_a_launch_command_replaces_vllm_serve(tmp_path: Path) -> None:
    plan = plan_for(
        tmp_path,
        ["serve.sh", "--model={model}", "{host}:{port}", "{other}"],
        serve_args=["--x"],
        startup_timeout_s=5,
    )
    assert plan.command == (
        "serve.sh",
        f"--model={MODEL}",
        f"127.0.0.1:{plan.port}",
        "{other}",
        "--x",
    )
    assert not plan.default_command
    assert plan.startup_timeout_s == 5


def test_plan_of_a_remote_backend_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "version: 1\nbackends:\n  far: {base_url: 'http://gpu-box:8000/v1', model: m}\n"
        "agents:\n  a: {instructions: hi}\n"
    )
    with pytest.raises(ConfigError) as info:
        plan_launch(load_config(path), "far")
    assert str(info.value) == (
        f"{path}: backends.far.base_url: launch: auto starts the server on this machine, but "
        "the host of base_url 'gpu-box' is not local; use localhost, 127.0.0.1 or 0.0.0.0, or "
        "set `launch: never` and start the server yourself."
    )


@pytest.mark.parametrize(
    ("base_url", "root_url", "port"),
    [
        pytest.param("http://gpu-box:8000/v1", "http://gpu-box:8000", 8000, id="remote"),
        pytest.param("https://gpu-box/v1/", "https://gpu-box", 443, id="https"),
        pytest.param("http://localhost/vllm", "http://localhost/vllm", 80, id="no-v1"),
    ],
)
def test_a_plan_only_to_probe_takes_any_url(base_url: str, root_url: str, port: int) -> None:
    config = parse_config(
        f"version: 1\nbackends:\n  far: {{base_url: '{base_url}', model: m}}\n"
        "agents:\n  a: {instructions: hi}\n"
    )
    plan = plan_launch(config, "far", to_start=False)
    assert (plan.base_url, plan.root_url, plan.port) == (base_url.rstrip("/"), root_url, port)
