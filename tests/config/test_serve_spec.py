"""The `serve:` section of agents.yaml: defaults, unknown keys, API keys from `${VAR}` (secrets,
never shown), and the `ServeOptions` made of it with the command line's overrides."""

from __future__ import annotations

import pytest

from agent_runtime import ConfigError
from agent_runtime.config import Config, parse_config
from agent_runtime.config.schema import ServeSpec, is_loopback
from agent_runtime.redact import Redactor
from agent_runtime.server.options import ServeOptions

HEAD = "version: 1\nbackends: {local: {base_url: 'http://x/v1', model: m}}\nagents: {a: {}}\n"


def parse(serve: str, **environ: str) -> Config:
    return parse_config(HEAD + serve, environ=environ, import_tools=False)


def problem(serve: str, **environ: str) -> str:
    with pytest.raises(ConfigError) as error:
        parse(serve, **environ)
    return str(error.value)


def test_without_a_serve_section_the_defaults_serve_this_machine_only() -> None:
    spec = parse("").spec.serve
    assert spec == ServeSpec()
    assert (spec.host, spec.port, spec.api_keys, spec.ui) == ("127.0.0.1", 8080, [], None)
    options = ServeOptions.from_config(parse(""))
    assert options == ServeOptions(
        api_keys=(),
        max_body_bytes=4 * 1024 * 1024,
        max_runs_per_key=64,
        drain_grace_s=30.0,
        cors_origins=(),
        ui=True,
        store_limit=10_000,
    )


def test_every_field_is_read() -> None:
    config = parse(
        "serve:\n"
        "  host: 0.0.0.0\n"
        "  port: 9000\n"
        "  api_keys: [k1, k2]\n"
        "  max_body_bytes: 1000\n"
        "  max_runs_per_key: 2\n"
        "  drain_grace_s: 5\n"
        "  cors_origins: ['https://app.example.com']\n"
        "  ui: true\n"
        "  store_limit: 7\n"
    )
    assert (config.spec.serve.host, config.spec.serve.port) == ("0.0.0.0", 9000)
    assert ServeOptions.from_config(config) == ServeOptions(
        api_keys=("k1", "k2"),
        max_body_bytes=1000,
        max_runs_per_key=2,
        drain_grace_s=5.0,
        cors_origins=("https://app.example.com",),
        ui=True,
        store_limit=7,
    )


@pytest.mark.parametrize(
    ("serve", "message"),
    [
        pytest.param(
            "serve: {prot: 8000}",
            "agents.yaml:4:9: serve.prot: unknown field. Did you mean `port`?",
            id="typo",
        ),
        pytest.param(
            "serve: {api_key: k}",
            "agents.yaml:4:9: serve.api_key: unknown field. Did you mean `api_keys`?",
            id="singular-key",
        ),
        pytest.param(
            "serve: {port: 70000}",
            "agents.yaml:4:15: serve.port: must be at most 65535, got 70000.",
            id="port-too-large",
        ),
        pytest.param(
            "serve: {max_runs_per_key: 0}",
            "agents.yaml:4:27: serve.max_runs_per_key: must be greater than 0, got 0.",
            id="no-runs",
        ),
    ],
)
def test_a_bad_serve_section_is_a_config_problem(serve: str, message: str) -> None:
    assert problem(serve) == message


def test_api_keys_come_from_the_environment_and_are_secrets() -> None:
    config = parse(
        "serve: {api_keys: ['${SERVE_KEY}', '${OTHER_KEY}']}\n",
        SERVE_KEY="sk-one",
        OTHER_KEY=" sk-two\r\n",  # from a .env file saved with CRLF line ends
    )
    options = ServeOptions.from_config(config)
    assert options.api_keys == ("sk-one", "sk-two")
    assert "sk-one" in config.secrets()
    assert "sk-two" in config.secrets()
    masked = Redactor().with_secrets(config.secrets()).text("key sk-one and sk-two")
    assert "sk-one" not in masked
    assert "sk-two" not in masked
    # Neither the spec nor the options show them.
    assert "sk-one" not in repr(config.spec.serve)
    assert "sk-one" not in repr(options)


def test_a_bad_api_key_is_refused_without_being_shown() -> None:
    message = problem("serve: {api_keys: ['${SERVE_KEY}']}\n", SERVE_KEY="sk-top\nsecret")
    assert message == (
        "agents.yaml:4:20: serve.api_keys[0]: the API key has a line break (U+000A) inside it, "
        "at character 7; it must be one line of printable text. Check where it comes from (a "
        ".env file, an environment variable)."
    )


def test_an_empty_api_key_is_refused() -> None:
    message = problem("serve: {api_keys: ['${SERVE_KEY:-}']}\n")
    assert message == (
        "agents.yaml:4:20: serve.api_keys[0]: the API key is empty, which would let anyone in; "
        "set the variable it comes from, or remove the entry."
    )


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        pytest.param("127.0.0.1", True, id="ipv4-loopback"),
        pytest.param("127.1.2.3", True, id="ipv4-loopback-net"),
        pytest.param("localhost", True, id="localhost"),
        pytest.param("::1", True, id="ipv6-loopback"),
        pytest.param("0.0.0.0", False, id="every-interface"),
        pytest.param("::", False, id="every-ipv6-interface"),
        pytest.param("10.0.0.5", False, id="lan"),
        pytest.param("example.com", False, id="name"),
    ],
)
def test_the_ui_is_on_by_default_for_a_loopback_host_only(host: str, expected: bool) -> None:
    assert is_loopback(host) is expected
    config = parse(f"serve: {{host: '{host}'}}\n")
    assert ServeOptions.from_config(config).ui is expected
    # The command line's --host decides it when given.
    assert ServeOptions.from_config(parse(""), host=host).ui is expected


def test_the_command_line_overrides_the_section() -> None:
    config = parse("serve: {host: 0.0.0.0, ui: true, api_keys: [k1], drain_grace_s: 5}\n")
    options = ServeOptions.from_config(config, api_keys=["cli"], ui=False, drain_grace_s=0.5)
    assert (options.api_keys, options.ui, options.drain_grace_s) == (("cli",), False, 0.5)
    # No keys on the command line: the section's stay.
    assert ServeOptions.from_config(config, api_keys=()).api_keys == ("k1",)
    # An explicit `ui` in the section wins over the host's default.
    assert ServeOptions.from_config(config, host="0.0.0.0").ui is True
