"""`agent-runtime worker --metrics-port`: a real worker process serves the Prometheus metrics of
the runs it executes; a port it cannot listen on is a usage error."""

from __future__ import annotations

import re
import signal
import socket
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.durable.workers import Held, Project, Workers, serving, write_project

METRICS_LINE = re.compile(r"^Metrics at (http://127\.0\.0\.1:\d+/metrics)$", re.MULTILINE)


@pytest.fixture
def project(tmp_path: Path, sqlite_url: str) -> Iterator[Project]:
    with serving(Held()) as mock:
        yield write_project(tmp_path / "project", database_url=sqlite_url, mock_url=mock.url)


def scrape(url: str) -> dict[str, float]:
    """The samples at `url` as `name{label="value",...}` → value (labels sorted)."""
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{key}="{value}"' for key, value in sorted(sample.labels.items()))
            found[f"{sample.name}{{{labels}}}"] = sample.value
    return found


def test_a_worker_serves_the_metrics_of_the_runs_it_executes(
    project: Project, workers: Workers
) -> None:
    worker = workers.start(project, "--metrics-port", "0")
    worker.ready()
    match = METRICS_LINE.search(worker.output())
    assert match is not None, worker.output()
    url = match.group(1)
    before = scrape(url)
    assert not any(name.startswith("agent_runtime_runs_total") for name in before)

    run_id = project.submit("recorder", "note tokyo")
    assert project.result(run_id)["final_output"] == "Done: recorded tokyo"
    found = scrape(url)
    assert found['agent_runtime_runs_total{agent="recorder",outcome="completed"}'] == 1
    assert found['agent_runtime_runs_in_flight{agent="recorder"}'] == 0
    assert found['agent_runtime_model_calls_total{agent="recorder"}'] == 2
    assert found['agent_runtime_tool_calls_total{agent="recorder",tool="record"}'] == 1
    assert found['agent_runtime_tokens_total{agent="recorder",kind="input"}'] > 0

    worker.signal(signal.SIGTERM)
    assert worker.wait(timeout=60) == 0
    port = int(url.split(":")[2].split("/")[0])
    with socket.socket() as sock:  # the worker no longer listens there
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_a_metrics_port_that_is_taken_is_a_usage_error(project: Project) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = project.cli("worker", "--metrics-port", str(port))
    assert done.returncode == 2
    assert done.stderr.splitlines()[-1] == (
        f"Error: cannot serve the metrics on 127.0.0.1:{port}: Address already in use. Choose "
        "another --metrics-port, or a --metrics-host of this machine."
    )


def test_without_a_metrics_port_nothing_is_served(project: Project, workers: Workers) -> None:
    worker = workers.start(project)
    worker.ready()
    assert METRICS_LINE.search(worker.output()) is None
