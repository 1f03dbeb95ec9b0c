"""A durable run is in the run log under its run id as well as its trace id."""

from __future__ import annotations

import pytest

from agent_runtime.durable import DurableEngine
from agent_runtime.runlog import RunLog
from agent_runtime.testing import MockVLLM, Reply, call
from tests.durable.conftest import Project


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_durable_run_is_found_by_its_run_id(project: Project, mock: MockVLLM) -> None:
    mock.add(
        Reply(reasoning="Call get_weather.", calls=(call("get_weather", city="Tokyo"),)),
        Reply(final="Sunny."),
    )
    path = project.folder / "runs.sqlite3"
    async with project.runtime(trace_path=path) as runtime:
        handle = await runtime.submit("weather", "Weather in Tokyo?", run_id="order-1042")
        async with DurableEngine(runtime):
            result = await runtime.result(handle.run_id, timeout=30)
    log = RunLog(path)
    run = log.find("order-1042")
    assert (run.trace_id, run.run_id, run.outcome) == (result.trace_id, "order-1042", "completed")
    assert log.find("order-10").trace_id == result.trace_id
    log.close()
