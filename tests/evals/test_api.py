"""The public names of `agent_runtime.evals` are pinned."""

from __future__ import annotations

import agent_runtime.evals


def test_evals_api() -> None:
    assert agent_runtime.evals.__all__ == [
        "DEFAULT_CONCURRENCY",
        "CaseResult",
        "CaseSpec",
        "EvalCase",
        "EvalFile",
        "EvalFileSpec",
        "EvalReport",
        "ExpectSpec",
        "ExpectedToolCall",
        "SampleResult",
        "first_failure",
        "load_eval_file",
        "parse_eval_file",
        "render_table",
        "run_evals",
        "select_cases",
    ]
    for name in agent_runtime.evals.__all__:
        assert hasattr(agent_runtime.evals, name)
