"""OpenTelemetry: a runtime's runs as spans of the GenAI semantic conventions, over OTLP/HTTP.

Nothing is exported unless a collector is configured: `tracing.otlp_endpoint` in agents.yaml,
else the standard variables `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as it is) or
`OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` added); headers from `tracing.otlp_headers`, else
`OTEL_EXPORTER_OTLP_TRACES_HEADERS` / `OTEL_EXPORTER_OTLP_HEADERS`; `service.name` from
`tracing.service_name`, else `OTEL_SERVICE_NAME`, else `agent-runtime`. It needs the optional
extra: `pip install 'agent-runtime[otel]'` (the official `opentelemetry-sdk` and its OTLP/HTTP
exporter).

The spans are made from the runtime's trace records (`Runtime.observe`), after the fact, with
the start and end times the records carry, in a `TracerProvider` of the runtime's own (never
the process-wide one) whose batches are sent from a thread and flushed when the runtime closes
(waiting 3 s at most for a collector that does not answer):

    invoke_agent weather-haiku        INTERNAL  the run, from `run_start` to `run_end`
      chat openai/gpt-oss-20b         CLIENT    one model call
      execute_tool get_weather        INTERNAL  one tool call
      execute_tool editor             INTERNAL  an agent used as a tool...
        invoke_agent editor           INTERNAL  ...and its run, with its own calls below
          chat openai/gpt-oss-20b
      invoke_agent poet               INTERNAL  after a handoff (an event on the run's span too)
        chat openai/gpt-oss-20b

A run's OpenTelemetry trace id is the hex of its own trace id (`trace_<32 hex>`), so the
span and the local trace record of a run are found by the same id; a run resumed after an
approval adds a second `invoke_agent` span to the same trace. A run started inside a span of
the application's own OpenTelemetry tracing (an HTTP request's, say) joins that trace instead,
its `invoke_agent` span a child of that span. Attributes: `gen_ai.operation.name`,
`gen_ai.provider.name` (`vllm` for vLLM backends, `openai` for other OpenAI-compatible ones),
`gen_ai.agent.name`, `gen_ai.request.model`, `gen_ai.conversation.id` (the session),
`server.address` / `server.port` of the backend; on model calls `gen_ai.response.id` and
`gen_ai.usage.input_tokens` / `output_tokens` / `reasoning.output_tokens` (also summed on the
run's span); on tool calls `gen_ai.tool.name`, `gen_ai.tool.call.id`, `gen_ai.tool.type`.
Failures set the span's status to ERROR and `error.type`: the error's class for a run
(`BackendError`, `RunLimitError`...), and for a tool call `abandoned`, `exit`, `unsendable`,
`mcp` or `tool_error` (see `agent_runtime.metrics`). Retries of a model call are events
(`agent_runtime.retry`) on its span. Prompts, outputs, tool arguments and results
(`gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.tool.call.arguments`,
`gen_ai.tool.call.result`) are only sent with `tracing.include_sensitive_data: true`; every
text passes through the runtime's redactor first.
"""

from agent_runtime.otel.config import OtlpSettings, agent_targets, otel_tracing, otlp_settings
from agent_runtime.otel.spans import AgentTarget, OtelTracing

__all__ = [
    "AgentTarget",
    "OtelTracing",
    "OtlpSettings",
    "agent_targets",
    "otel_tracing",
    "otlp_settings",
]
