"""Eval files: cases for the agents of an agents.yaml, run and checked (`agent-runtime eval`).

```python
from agent_runtime.evals import run_evals

report = await run_evals(["evals/weather.yaml"], "agents.yaml", mock=True)
assert report.passed, [case.why for case in report.failed]
```

- `spec`: the eval file's schema (pydantic);
- `load`: `load_eval_file` / `parse_eval_file`, every problem at `file:line:col`;
- `expect`: a finished run against a case's expectations, the first that fails;
- `runner`: `run_evals`, each case's runs in parallel, bounded, on cassettes, the automatic
  test model or a real server;
- `report`: `EvalReport`, as a table, JSON or JUnit XML.
"""

from __future__ import annotations

from agent_runtime.evals.expect import first_failure
from agent_runtime.evals.load import EvalCase, EvalFile, load_eval_file, parse_eval_file
from agent_runtime.evals.report import CaseResult, EvalReport, SampleResult, render_table
from agent_runtime.evals.runner import DEFAULT_CONCURRENCY, run_evals, select_cases
from agent_runtime.evals.spec import CaseSpec, EvalFileSpec, ExpectedToolCall, ExpectSpec

__all__ = [
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
