"""The redaction layer: known secrets in every form, and the patterns that need no configuration."""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote, quote_plus

import pytest

from agent_runtime.errors import BackendError
from agent_runtime.redact import MASK, RedactFilter, Redactor, is_secret_key, redact_text

KEY = "sk-Zq9/+%x y'é\\"


@pytest.mark.parametrize(
    "form",
    [
        pytest.param(KEY, id="raw"),
        pytest.param(repr(KEY)[1:-1], id="python-escaped"),
        pytest.param(json.dumps(KEY)[1:-1], id="json-escaped"),
        pytest.param(json.dumps(KEY, ensure_ascii=False)[1:-1], id="json-unicode"),
        pytest.param(quote(KEY, safe=""), id="percent-encoded"),
        pytest.param(
            re.sub("%[0-9A-F]{2}", lambda m: m[0].lower(), quote(KEY, safe="")),
            id="percent-encoded-lower",
        ),
        pytest.param(quote_plus(KEY), id="form-encoded"),
        pytest.param(repr(KEY.encode())[2:-1], id="bytes-repr"),
        pytest.param(json.dumps(json.dumps(KEY)[1:-1])[1:-1], id="json-in-json"),
    ],
)
def test_a_known_secret_is_masked_in_every_form(form: str) -> None:
    redactor = Redactor([KEY])
    text = f"before {form} after"
    assert redactor.text(text) == f"before {MASK} after"


def test_a_key_with_a_line_end_is_masked_whole_and_stripped() -> None:
    redactor = Redactor(["sk-abc123\r\n"])
    shown = "Illegal header value b'Bearer sk-abc123\\r\\n'"
    assert redactor.text(shown) == f"Illegal header value b'Bearer {MASK}'"
    assert redactor.text("key=sk-abc123 and sk-abc123\r\n.") == f"key={MASK} and {MASK}."


def test_a_secret_is_masked_wherever_it_is() -> None:
    redactor = Redactor(["hunter22"])
    assert redactor.text("hunter22") == MASK
    assert redactor.text("xhunter22hunter22y") == f"x{MASK}{MASK}y"


def test_short_and_empty_secrets_are_not_looked_for() -> None:
    redactor = Redactor(["abc", "", "  ab \n", "abcd"])
    assert redactor.secrets == {"abcd"}
    assert redactor.text("abc abcd") == f"abc {MASK}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "cannot reach http://user:pa:ss@host:8000/v1 now",
            f"cannot reach http://{MASK}@host:8000/v1 now",
            id="url-password",
        ),
        pytest.param("https://tok3n@h.example/v1", f"https://{MASK}@h.example/v1", id="url-token"),
        pytest.param("http://a:b@c@host/v1", f"http://{MASK}@host/v1", id="url-raw-at"),
        pytest.param("http://host/v1?mail=a@b", "http://host/v1?mail=a@b", id="url-query-at"),
        pytest.param(
            "{'Authorization': 'Bearer sk-1 2', 'x': 1}",
            f"{{'Authorization': '{MASK}', 'x': 1}}",
            id="authorization-in-a-dict-repr",
        ),
        pytest.param(
            '{"authorization": "Basic dXNlcjpwdw=="}',
            f'{{"authorization": "{MASK}"}}',
            id="authorization-in-json",
        ),
        pytest.param(
            "Proxy-Authorization: Bearer abc\nnext",
            f"Proxy-Authorization: {MASK}\nnext",
            id="authorization-header-line",
        ),
        pytest.param(
            "Illegal header value b'Bearer sk-live-1\\r'",
            f"Illegal header value b'Bearer {MASK}\\r'",
            id="bearer",
        ),
        pytest.param(
            "vllm serve m --api-key sk-1 --port 8; ['--api-key', 'sk-2'] --api-key=sk-3",
            f"vllm serve m --api-key {MASK} --port 8; ['--api-key', '{MASK}'] --api-key={MASK}",
            id="api-key-flag",
        ),
        pytest.param(
            'api_key=sk-1&x=1 "password": "two words" X-API-Key: k3y',
            f'api_key={MASK}&x=1 "password": "{MASK}" X-API-Key: {MASK}',
            id="pairs",
        ),
        pytest.param(
            "backends.local.api_key: expected a string; set `api_key:` or pass --api-key KEY)",
            "backends.local.api_key: expected a string; set `api_key:` or pass --api-key KEY)",
            id="messages-about-keys-stay",
        ),
        pytest.param(
            "api_key: EMPTY, max_tokens: 100", "api_key: EMPTY, max_tokens: 100", id="words"
        ),
    ],
)
def test_patterns_need_no_configuration(text: str, expected: str) -> None:
    assert redact_text(text) == expected
    assert Redactor().text(text) == expected


def test_a_secret_with_odd_characters_is_masked_before_the_patterns() -> None:
    # The pattern alone would stop at ';' and show the rest of the key.
    assert Redactor(["abcd;efgh"]).text("Bearer abcd;efgh") == f"Bearer {MASK}"
    assert redact_text("Bearer abcd;efgh") == f"Bearer {MASK};efgh"


def test_values_are_redacted_inside_dicts_lists_and_tuples() -> None:
    redactor = Redactor(["sk-secret"])
    value = {
        "headers": {"X-API-Key": "anything", "Accept": "json"},
        "items": ["sk-secret", ("http://u:p@h/v1", 3)],
        "sk-secret": None,
        "n": 1.5,
    }
    assert redactor.value(value) == {
        "headers": {"X-API-Key": MASK, "Accept": "json"},
        "items": [MASK, (f"http://{MASK}@h/v1", 3)],
        MASK: None,
        "n": 1.5,
    }


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("Authorization", True),
        ("x-api-key", True),
        (" Cookie ", True),
        ("Accept", False),
        (3, False),
    ],
)
def test_secret_keys(name: object, secret: bool) -> None:
    assert is_secret_key(name) is secret


def test_an_exception_chain_is_redacted_in_place() -> None:
    redactor = Redactor(["sk-secret"])
    try:
        try:
            raise ValueError("Illegal header value b'sk-secret\\r'", 400)
        except ValueError as inner:
            raise BackendError("failed: sk-secret", url="http://u:pw@h/v1") from inner
    except BackendError as error:
        caught = error
    caught.add_note("key sk-secret")
    assert redactor.exception(caught) is caught
    assert str(caught) == f"failed: {MASK}"
    assert caught.url == f"http://{MASK}@h/v1"
    assert caught.__notes__ == [f"key {MASK}"]
    assert caught.__cause__ is not None
    assert caught.__cause__.args == (f"Illegal header value b'{MASK}\\r'", 400)


def test_a_redactor_cannot_be_changed_and_can_be_extended() -> None:
    redactor = Redactor(["first-key"])
    with pytest.raises(AttributeError):
        redactor.secrets = frozenset()  # type: ignore[misc]
    both = redactor.with_secrets(["second-key"])
    assert both.text("first-key second-key") == f"{MASK} {MASK}"
    assert redactor.text("second-key") == "second-key"
    assert both == Redactor(["second-key", "first-key"])
    assert "first-key" not in repr(both)


def test_the_log_filter_redacts_messages_arguments_and_tracebacks() -> None:
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    handler = Keep()
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(RedactFilter(Redactor(["sk-secret"]).text))
    logger = logging.getLogger("tests.test_redact.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("call to %s failed (%s)", "http://u:pw@h/v1", "key sk-secret")
        try:
            raise RuntimeError("boom sk-secret")
        except RuntimeError:
            logger.exception("failed with %r", "sk-secret")
    finally:
        logger.removeHandler(handler)
    assert records[0] == f"call to http://{MASK}@h/v1 failed (key {MASK})"
    assert records[1].startswith(f"failed with '{MASK}'\nTraceback")
    assert records[1].endswith(f"RuntimeError: boom {MASK}")
    assert "sk-secret" not in "".join(records)
