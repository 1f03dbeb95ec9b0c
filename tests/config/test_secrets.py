"""Secrets in agents.yaml: cleaned when loaded, refused without being shown, listed for the
redaction layer; and the size limit of the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent_runtime import ConfigError
from agent_runtime.config import Config, clean_secret, load_config, parse_config
from agent_runtime.config.load import MAX_CONFIG_BYTES

DOCUMENT = """\
version: 1
backends:
  local:
    base_url: ${URL}
    api_key: ${KEY}
    model: m
    headers: {X-Token: "${HEADER}"}
    serve_args: [--api-key, sk-serve-1, --port, "8000"]
    launch_command: [vllm, serve, m, --api-key=sk-launch-1]
defaults:
  model_settings: {extra_headers: {X-Default: default-1}}
agents:
  a: {model_settings: {extra_headers: {X-Other: " other-1 "}}}
"""
ENV = {"URL": "http://localhost:8000/v1", "KEY": "sk-key-1", "HEADER": "header-1"}


def parse(**env: str) -> Config:
    return parse_config(DOCUMENT, environ=ENV | env, import_tools=False)


def test_keys_and_header_values_lose_surrounding_whitespace_and_line_ends() -> None:
    # A .env file saved with CRLF line ends gives "sk-key-1\r".
    config = parse(KEY=" sk-key-1\r\n", HEADER="\theader-1\r")
    backend = config.spec.backends["local"]
    assert backend.api_key.get_secret_value() == "sk-key-1"
    assert backend.headers == {"X-Token": "header-1"}
    assert config.spec.agents["a"].model_settings.extra_headers == {"X-Other": "other-1"}


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"KEY": "sk-top\rsecret"},
            "agents.yaml:5:14: backends.local.api_key: the API key has a line break (U+000D) "
            "inside it, at character 7; it must be one line of printable text. Check where it "
            "comes from (a .env file, an environment variable).",
            id="line-break-in-key",
        ),
        pytest.param(
            {"HEADER": "top\x00secret"},
            "agents.yaml:7:24: backends.local.headers.X-Token: the header value has a control "
            "character (U+0000) inside it, at character 4; it must be one line of printable "
            "text. Check where it comes from (a .env file, an environment variable).",
            id="control-character-in-header",
        ),
        pytest.param(
            {"KEY": "topsecrét"},
            "agents.yaml:5:14: backends.local.api_key: the API key has a character that is not "
            "ASCII (U+00E9) at character 8; HTTP headers carry ASCII only. Check where it comes "
            "from (a .env file, an environment variable).",
            id="not-ascii",
        ),
    ],
)
def test_a_key_that_cannot_be_sent_is_refused_without_being_shown(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError) as error:
        parse(**env)
    assert str(error.value) == message
    assert "secr" not in str(error.value)


def test_a_header_name_that_cannot_be_sent_is_refused() -> None:
    document = DOCUMENT.replace("X-Token:", "'X Token':")
    with pytest.raises(ConfigError) as error:
        parse_config(document, environ=ENV, import_tools=False)
    assert str(error.value) == (
        "agents.yaml:7:14: backends.local.headers: 'X Token' is not a valid HTTP header name "
        "(letters, digits and !#$%&'*+-.^_`|~ only, no spaces)."
    )


def test_a_password_in_a_url_is_not_shown_in_problems() -> None:
    with pytest.raises(ConfigError) as error:
        parse(URL="http://bob:pa55word@localhost:0/v1")
    assert str(error.value) == (
        "agents.yaml:4:15: backends.local.base_url: 'http://***@localhost:0/v1' has port 0; "
        "e.g. http://localhost:8000/v1."
    )


def test_the_secrets_of_a_config() -> None:
    config = parse(URL="http://bob:pa%40ss@localhost:8000/v1")
    assert config.secrets() == (
        "sk-key-1",
        "header-1",
        "pa%40ss",
        "pa@ss",
        "Ym9iOnBhQHNz",  # bob:pa@ss, as Basic credentials
        "sk-serve-1",
        "sk-launch-1",
        "default-1",
        "other-1",
    )


def test_a_token_as_url_user_and_the_dummy_key() -> None:
    config = parse(URL="https://t0ken@localhost:8000/v1", KEY="EMPTY")
    assert config.secrets()[:3] == ("header-1", "t0ken", "dDBrZW46")


def test_clean_secret_for_keys_given_in_code() -> None:
    assert clean_secret("  sk-1\r\n") == "sk-1"
    with pytest.raises(ValueError, match=r"^the api_key argument has a line break \(U\+000A\)"):
        clean_secret("sk\nx", what="the api_key argument")


def test_an_endless_file_is_refused_after_reading_the_limit() -> None:
    with pytest.raises(ConfigError) as error:
        load_config("/dev/zero")
    assert str(error.value) == (
        "/dev/zero: cannot read /dev/zero: it is larger than 4 MiB, the most an agents.yaml may "
        "be. Is it the right file? Put long instructions in files of their own "
        "(`instructions_file`)."
    )


def test_a_file_just_over_the_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "agents.yaml"
    path.write_bytes(b"#" * MAX_CONFIG_BYTES + b"\n")
    with pytest.raises(ConfigError, match="larger than 4 MiB"):
        load_config(path)
    path.write_bytes(b"#" * (MAX_CONFIG_BYTES - 1) + b"\n")
    with pytest.raises(ConfigError, match="the file is empty"):
        load_config(path)
