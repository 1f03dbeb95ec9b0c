"""One redaction layer: secrets never reach an error message, a log line or a trace record.

```python
redactor = Redactor(config.secrets())         # the keys, header values, URL passwords
redactor.text("Illegal header value b'Bearer sk-abc\\r'")   # "Illegal header value b'Bearer ***'"
redactor.value({"headers": {"Authorization": "Bearer sk-abc"}})
redact_text("http://user:pw@host/v1")          # "http://***@host/v1": patterns only
```

Two kinds of redaction, each one pass of one precompiled regular expression:

- **known secrets** (what `Config.secrets()` lists), in every form they take in text: as
  given, stripped of surrounding whitespace and line breaks, escaped as Python does (`repr` of
  the text and of its UTF-8 bytes: `sk-x\\r`), as JSON does, and percent-encoded for URLs;
- **patterns** that need no configuration: URL user-info (`scheme://user:pw@host` becomes
  `scheme://***@host`, `scheme://token@host` too), the value of an `Authorization` or
  `Proxy-Authorization` header, the token after `Bearer`, the value of `--api-key VALUE` (also
  in a list: `'--api-key', 'VALUE'`), and `api_key=VALUE`, `"password": "VALUE"`,
  `X-API-Key: VALUE` pairs (`api_key`, `api-key`, `apikey`, `access_token`, `password`,
  `passwd`).

The package's own loggers come from `own_logger`: their records are redacted before any handler
sees them, with the patterns always and with the secrets of the `Runtime` whose work logs them
(`current_redactor`, set by the runtime for its runs and its start-up).

Each is replaced by `***`. A secret shorter than `MIN_SECRET_CHARS` (4) characters is not
looked for: it would mask ordinary words and numbers everywhere (such a key is no protection
anyway). Over-redaction is the safe side: text that merely looks like a pattern is masked too.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, quote_plus

__all__ = [
    "MASK",
    "MIN_SECRET_CHARS",
    "RedactFilter",
    "Redactor",
    "current_redactor",
    "is_secret_key",
    "own_logger",
    "redact_text",
]

MASK = "***"
"""What a secret is replaced with."""

MIN_SECRET_CHARS = 4
"""Secrets shorter than this are not looked for (see the module's documentation)."""

E = TypeVar("E", bound=BaseException)

# Keys whose values are secrets wherever they appear in a mapping (headers, request options).
_SECRET_KEYS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "api_key",
        "api-key",
        "apikey",
        "x-api-key",
        "access_token",
        "password",
        "passwd",
        "cookie",
        "set-cookie",
    }
)

# The patterns; each alternative has exactly one capturing group, the part that is kept.
_NOT_IN_NETLOC = r"\s/?#'\"<>\\`"
# Words in capitals are placeholders (`--api-key KEY`, `api_key: EMPTY`), not keys.
_NOT_PLACEHOLDER = r"(?![A-Z]+(?:[\s)'\",\]]|$))"
_AUTH = r"(?i:\b(?:proxy-)?authorization)['\"]?\s*[:=]\s*"
_KEY = r"(?<![\w.`\-])(?i:(?:x-)?api[_\-]?key|access[_\-]?token|password|passwd)['\"]?\s*[:=]\s*"
_PATTERNS = (
    # scheme://user:password@host: everything before the last @ of the authority.
    rf"(?P<url>\b[A-Za-z][A-Za-z0-9+.\-]*://)[^{_NOT_IN_NETLOC}]+(?=@)",
    # Authorization: <anything up to the closing quote or the end of the line>
    rf"(?P<auth_dq>{_AUTH}\")[^\"\r\n]+",
    rf"(?P<auth_sq>{_AUTH}')[^'\r\n]+",
    rf"(?P<auth>{_AUTH})[^\r\n'\"]+",
    r"(?P<bearer>(?i:\bbearer)\s+)[^\s'\"\\,;)\]}]+",
    rf"(?P<flag>--api-key(?:=|['\"]?\s*,\s*['\"]?|\s+)){_NOT_PLACEHOLDER}[^\s'\",\])]+",
    # api_key=..., "password": "...", X-API-Key: ...
    rf"(?P<pair_dq>{_KEY}\"){_NOT_PLACEHOLDER}[^\"\r\n]+",
    rf"(?P<pair_sq>{_KEY}'){_NOT_PLACEHOLDER}[^'\r\n]+",
    rf"(?P<pair>{_KEY}){_NOT_PLACEHOLDER}(?=[^\s'\"`])[^\s'\"`,;}}&]+",
)
_PATTERN_REGEX = re.compile("|".join(_PATTERNS))


def _forms(secret: str) -> set[str]:
    """The ways `secret` may be written in text: raw, stripped, escaped, percent-encoded."""
    if len(secret.strip()) < MIN_SECRET_CHARS:
        return set()
    forms: set[str] = set()
    for base in {secret, secret.strip()}:
        escaped = {
            base,
            repr(base)[1:-1],
            json.dumps(base)[1:-1],
            json.dumps(base, ensure_ascii=False)[1:-1],
            repr(base.encode("utf-8", "surrogatepass"))[2:-1],
            quote(base, safe=""),
            quote(base),
            quote_plus(base, safe=""),
        }
        for form in list(escaped):  # percent-escapes in lower case, and escapes of escapes
            escaped.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), form))
            escaped.add(json.dumps(form)[1:-1])
            escaped.add(repr(form)[1:-1])
        forms |= escaped
    return forms


class Redactor:
    """Masks known secrets and secret-looking patterns in text, values and exceptions.

    Immutable and cheap to call: the secrets are compiled once into one regular expression,
    applied before the patterns (so that a secret with odd characters is masked whole).
    `Redactor()` masks the patterns only.

    Args:
        secrets: the secret strings (API keys, header values, passwords). Empty strings and
            those shorter than `MIN_SECRET_CHARS` are ignored.
    """

    __slots__ = ("_regex", "secrets")

    secrets: frozenset[str]
    _regex: re.Pattern[str] | None

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        kept = frozenset(
            s for s in secrets if isinstance(s, str) and len(s.strip()) >= MIN_SECRET_CHARS
        )
        forms: set[str] = set()
        for secret in kept:
            forms |= _forms(secret)
        # Longest first: the whole of `sk-x\r` is masked before `sk-x` could be.
        alternatives = sorted(forms, key=lambda f: (-len(f), f))
        regex = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None
        object.__setattr__(self, "secrets", kept)
        object.__setattr__(self, "_regex", regex)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Redactor cannot be changed")

    def __repr__(self) -> str:
        return f"Redactor(<{len(self.secrets)} secrets>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Redactor) and other.secrets == self.secrets

    def __hash__(self) -> int:
        return hash(self.secrets)

    def with_secrets(self, secrets: Iterable[str]) -> Redactor:
        """A redactor that also masks `secrets`."""
        return Redactor(self.secrets | frozenset(secrets))

    def text(self, text: str) -> str:
        """`text` with every secret and secret-looking pattern replaced by `***`."""
        if self._regex is not None:
            text = self._regex.sub(MASK, text)
        return _PATTERN_REGEX.sub(_keep_name, text)

    def value(self, value: Any) -> Any:
        """`value` with the strings inside dicts, lists and tuples redacted (recursively); the
        values of keys such as `Authorization`, `api_key` or `password` are masked whole.
        Other objects are returned as they are."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {
                (self.text(k) if isinstance(k, str) else k): (
                    MASK if isinstance(v, str) and is_secret_key(k) else self.value(v)
                )
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.value(item) for item in value]
        if isinstance(value, tuple):
            return tuple(self.value(item) for item in value)
        return value

    def exception(self, error: E) -> E:
        """Redact, in place, the message of `error` and of every exception in its chain
        (`__cause__`, `__context__`), their notes and a `url` attribute; returns `error`.

        The message is the text arguments of the exception (`args`), which `str()` shows for
        any exception that does not compute its own.
        """
        seen: set[int] = set()
        current: BaseException | None = error
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            args = tuple(self.text(a) if isinstance(a, str) else a for a in current.args)
            if args != current.args:
                current.args = args
            notes = getattr(current, "__notes__", None)
            if isinstance(notes, list):
                notes[:] = [self.text(n) if isinstance(n, str) else n for n in notes]
            url = getattr(current, "url", None)
            if isinstance(url, str):
                with contextlib.suppress(AttributeError):  # a read-only property
                    current.url = self.text(url)  # type: ignore[attr-defined]
            current = current.__cause__ or current.__context__
        return error


def _keep_name(match: re.Match[str]) -> str:
    """The name part of a pattern's match (`Bearer `, `scheme://`), then the mask."""
    return match.group(match.lastindex or 0) + MASK


_PATTERNS_ONLY = Redactor()


def redact_text(text: str) -> str:
    """`text` with secret-looking patterns masked (URL user-info, `Authorization`, `Bearer`,
    `--api-key`, `api_key=`): for places that know no configuration."""
    return _PATTERNS_ONLY.text(text)


def is_secret_key(name: object) -> bool:
    """Whether a mapping key names a secret value (`Authorization`, `api_key`, `password`...)."""
    return isinstance(name, str) and name.strip().lower() in _SECRET_KEYS


class RedactFilter(logging.Filter):
    """A logging filter that redacts each record's message and traceback text in place.

    Install it on a handler (`handler.addFilter(RedactFilter(runtime.redactor.text))`): a
    filter on a handler sees the records of every logger that reaches it.

    Args:
        redact: the redaction to apply (default: `redact_text`, the patterns only).
    """

    def __init__(self, redact: Callable[[str], str] = redact_text) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a record that cannot be formatted: logging reports it later
            return True
        record.msg, record.args = self._redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        return True


current_redactor: contextvars.ContextVar[Redactor | None] = contextvars.ContextVar(
    "agent_runtime_redactor", default=None
)
"""The redactor of the `Runtime` whose work this task (or thread, with a copied context) does."""


def _current_text(text: str) -> str:
    redactor = current_redactor.get()
    return redactor.text(text) if redactor is not None else redact_text(text)


class _OwnLogsFilter(RedactFilter):
    """The filter of the package's own loggers (`own_logger`)."""

    def __init__(self) -> None:
        super().__init__(_current_text)


def own_logger(name: str) -> logging.Logger:
    """`logging.getLogger(name)` for a module of this package, its records redacted (see the
    module's documentation). A filter on a logger sees only that logger's records, so every
    module that logs gets its logger here."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, _OwnLogsFilter) for f in logger.filters):
        logger.addFilter(_OwnLogsFilter())
    return logger
