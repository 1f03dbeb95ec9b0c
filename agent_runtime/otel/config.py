"""Whether and where runs are exported: `tracing.otlp_endpoint` in agents.yaml, else the
standard `OTEL_*` variables (see `agent_runtime.otel`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from agent_runtime.errors import ConfigError
from agent_runtime.otel.spans import DEFAULT_SERVICE_NAME, AgentTarget, OtelTracing
from agent_runtime.redact import Redactor, own_logger

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import SpanExporter

    from agent_runtime.config import Config

__all__ = [
    "ENDPOINT",
    "HEADERS",
    "INSTALL",
    "SERVICE_NAME",
    "TRACES_ENDPOINT",
    "TRACES_HEADERS",
    "OtlpSettings",
    "agent_targets",
    "otel_tracing",
    "otlp_settings",
]

logger = own_logger(__name__)

ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
TRACES_ENDPOINT = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
HEADERS = "OTEL_EXPORTER_OTLP_HEADERS"
TRACES_HEADERS = "OTEL_EXPORTER_OTLP_TRACES_HEADERS"
SERVICE_NAME = "OTEL_SERVICE_NAME"
INSTALL = "pip install 'agent-runtime[otel]'"

_TRACES_PATH = "/v1/traces"


@dataclass(frozen=True, slots=True, kw_only=True)
class OtlpSettings:
    """Where spans go: the collector's traces URL, its headers, the service's name."""

    endpoint: str
    headers: Mapping[str, str] = field(default_factory=dict)
    service_name: str = DEFAULT_SERVICE_NAME
    source: str = "tracing.otlp_endpoint"
    """What configured the endpoint (the agents.yaml field or the variable), for messages."""


def _traces_url(base: str) -> str:
    """A collector's base URL with `/v1/traces` (unless it ends in it already)."""
    base = base.rstrip("/")
    return base if base.endswith(_TRACES_PATH) else base + _TRACES_PATH


def otlp_settings(config: Config, environ: Mapping[str, str]) -> OtlpSettings | None:
    """The OTLP settings of `config` and the environment; None: nothing is exported.

    Raises:
        ConfigError: an endpoint from the environment that is not an http(s) URL.
    """
    spec = config.spec.tracing
    source = "tracing.otlp_endpoint"
    if spec.otlp_endpoint:
        endpoint = _traces_url(spec.otlp_endpoint)
    elif environ.get(TRACES_ENDPOINT, "").strip():
        source, endpoint = f"${TRACES_ENDPOINT}", environ[TRACES_ENDPOINT].strip()
    elif environ.get(ENDPOINT, "").strip():
        source, endpoint = f"${ENDPOINT}", _traces_url(environ[ENDPOINT].strip())
    else:
        return None
    if not endpoint.startswith(("http://", "https://")) or not urlsplit(endpoint).hostname:
        raise config.error(
            "tracing.otlp_endpoint",
            f"{source} is {endpoint!r}, not the http:// or https:// URL of an OTLP/HTTP "
            "collector (traces are exported over OTLP/HTTP only), e.g. http://localhost:4318. "
            f"Set it to one, or unset it to export nothing.",
        )
    headers: Mapping[str, str] = dict(spec.otlp_headers)
    if not headers:
        headers = _env_headers(environ.get(TRACES_HEADERS) or environ.get(HEADERS) or "")
    service = spec.service_name or environ.get(SERVICE_NAME, "").strip() or DEFAULT_SERVICE_NAME
    return OtlpSettings(endpoint=endpoint, headers=headers, service_name=service, source=source)


def otel_tracing(
    config: Config, *, redactor: Redactor, environ: Mapping[str, str]
) -> OtelTracing | None:
    """The OTLP export of a runtime's runs as configured (None: not configured).

    Raises:
        ConfigError: `tracing.otlp_endpoint` is set and the OpenTelemetry SDK is not
            installed. (An endpoint from the environment without the SDK, or one that is not
            an http(s) URL, is logged as a warning, and nothing is exported: such variables
            are often set for every process of a machine.)
    """
    if not _configured(config, environ):
        return None
    from_yaml = bool(config.spec.tracing.otlp_endpoint)
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider  # noqa: F401 - checked here
    except ImportError:
        if not from_yaml:
            # A variable set for every process of a machine or a pod: not worth failing for.
            variable = TRACES_ENDPOINT if environ.get(TRACES_ENDPOINT, "").strip() else ENDPOINT
            logger.warning(
                "$%s is set, but runs are not exported: the OpenTelemetry SDK is not installed "
                "(%s)",
                variable,
                INSTALL,
            )
            return None
        raise config.error(
            "tracing.otlp_endpoint",
            "exporting traces needs the OpenTelemetry SDK and its OTLP/HTTP exporter, which "
            f"are not installed: {INSTALL}. Or remove `otlp_endpoint` to export nothing.",
        ) from None
    try:
        settings = otlp_settings(config, environ)
    except ConfigError as error:
        if from_yaml:
            raise
        logger.warning("runs are not exported: %s", error.problems[0].message)
        return None
    assert settings is not None

    def exporter() -> SpanExporter:
        return OTLPSpanExporter(endpoint=settings.endpoint, headers=dict(settings.headers))

    spec = config.spec.tracing
    return OtelTracing(
        exporter,
        service_name=settings.service_name,
        include_sensitive_data=spec.include_sensitive_data,
        redactor=redactor,
        agents=agent_targets(config),
        max_field_chars=spec.max_field_chars,
    )


def _configured(config: Config, environ: Mapping[str, str]) -> bool:
    return bool(
        config.spec.tracing.otlp_endpoint
        or environ.get(TRACES_ENDPOINT, "").strip()
        or environ.get(ENDPOINT, "").strip()
    )


def agent_targets(config: Config) -> dict[str, AgentTarget]:
    """What the spans say about each agent's model, from its backend."""
    targets = {}
    for agent in config.spec.agents:
        _, backend = config.backend_of(agent)
        parts = urlsplit(backend.urls[0]) if backend.urls else None
        try:
            port = parts.port if parts is not None else None
        except ValueError:
            port = None
        if parts is not None and port is None:
            port = 443 if parts.scheme == "https" else 80
        targets[agent] = AgentTarget(
            provider="openai" if backend.kind == "openai" else "vllm",
            model=backend.model,
            server_address=parts.hostname if parts is not None else None,
            server_port=port,
        )
    return targets


def _env_headers(text: str) -> dict[str, str]:
    """`key1=value1,key2=value2` (values URL-encoded), as the OTLP variables give headers;
    an entry without `=` is skipped."""
    headers = {}
    for entry in text.split(","):
        key, equals, value = entry.partition("=")
        if equals and key.strip():
            headers[unquote(key.strip())] = unquote(value.strip())
    return headers
