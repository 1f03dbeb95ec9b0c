"""Backends with several replicas (`base_urls`): least-outstanding balancing, session affinity,
failover within the retry budget, replicas coming back, and the error when all are down
(`agent_runtime.backends.replicas`). Real HTTP to mock vLLM servers on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from click.testing import CliRunner

from agent_runtime import BackendUnavailableError, RunFinished, Runtime
from agent_runtime.backends import Backend, create_backend
from agent_runtime.backends.replicas import Replica, Replicas
from agent_runtime.cli import cli
from agent_runtime.config import BackendSpec
from agent_runtime.testing import Fault, MockVLLM, RecordedRequest, Reply
from tests.server.ops_helpers import get, served

MODEL = "openai/gpt-oss-20b"
WAIT_S = 10.0
"""The longest any wait in these tests may take (a bug fails fast instead of hanging)."""


def free_port() -> int:
    """A port nothing listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def url_of(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1"


def project(tmp_path: Path, urls: list[str], **backend: Any) -> Path:
    """An agents.yaml with one backend `pool` over `urls` and one agent `helper`."""
    settings = {
        "base_urls": urls,
        "model": "openai/gpt-oss-20b",
        "max_retries": 2,
        "retry_delay_s": 0.01,
        "retry_max_delay_s": 0.02,
        "timeout_s": WAIT_S,
        **backend,
    }
    document = {
        "version": 1,
        "backends": {"pool": settings},
        "agents": {"helper": {"instructions": "Help."}},
        "sessions": {"path": str(tmp_path / "sessions.sqlite3")},
        "tracing": {"path": str(tmp_path / "traces.jsonl")},
    }
    path = tmp_path / "agents.yaml"
    path.write_text(json.dumps(document), encoding="utf-8")  # JSON is YAML
    return path


def trace(tmp_path: Path) -> list[dict[str, Any]]:
    lines = (tmp_path / "traces.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture
def servers() -> Iterator[Callable[..., MockVLLM]]:
    """Starts mock servers that stop at the end of the test."""
    started: list[MockVLLM] = []

    def start(*, text: str = "Done.", port: int = 0, **options: Any) -> MockVLLM:
        options.setdefault("default", Reply(final=text))
        server = MockVLLM(port=port, **options).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


async def streamed(runtime: Runtime, session: str | None = None) -> object:
    """The final output of a streamed run of `helper`."""
    events = [event async for event in runtime.stream("helper", "Hi", session=session)]
    assert isinstance(events[-1], RunFinished)
    return events[-1].result.final_output


def calls(mock: MockVLLM) -> int:
    return len(mock.model_requests)


@pytest.fixture
async def backend_of() -> AsyncIterator[Callable[..., Backend]]:
    """Makes backends (with `create_backend`) that are closed at the end of the test."""
    made: list[Backend] = []

    def make(urls: list[str], **settings: Any) -> Backend:
        spec = BackendSpec.model_validate({"base_urls": urls, "model": MODEL, **settings})
        backend = create_backend("pool", spec)
        assert isinstance(backend, Backend)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        await backend.aclose()


# -- balancing ----------------------------------------------------------------------------------


async def test_an_open_stream_counts_until_its_body_is_closed(
    servers: Callable[..., MockVLLM], backend_of: Callable[..., Backend]
) -> None:
    a, b = servers(), servers()
    backend = backend_of([a.url, b.url])
    assert backend.replicas is not None
    first, second = backend.replicas.replicas

    stream = await backend.client.responses.create(model=MODEL, input="hi", stream=True)
    async for _ in stream:
        break  # the answer's body is still open
    assert (calls(a), calls(b)) == (1, 0)
    assert (first.outstanding, second.outstanding) == (1, 0)
    for _ in range(2):  # each goes to the replica with nothing in flight
        await backend.client.responses.create(model=MODEL, input="hi")
    assert (calls(a), calls(b)) == (1, 2)
    await stream.close()
    assert (first.outstanding, second.outstanding) == (0, 0)
    await backend.client.responses.create(model=MODEL, input="hi")
    assert (calls(a), calls(b)) == (2, 2)  # then turns: A was sent fewer


async def test_concurrent_streamed_runs_land_on_different_replicas(
    servers: Callable[..., MockVLLM], tmp_path: Path
) -> None:
    release = threading.Event()

    async def held(request: RecordedRequest) -> Reply:
        await asyncio.to_thread(release.wait, WAIT_S)
        return Reply(final="Done.")

    mocks = [servers(default=held) for _ in range(3)]
    path = project(tmp_path, [mock.url for mock in mocks])
    async with Runtime.from_yaml(path) as runtime:

        async def run() -> object:
            return await streamed(runtime)

        runs = [asyncio.create_task(run()) for _ in range(3)]
        try:
            for mock in mocks:  # each gets one, or this times out
                await asyncio.to_thread(mock.wait_until, lambda m: calls(m) == 1, timeout=WAIT_S)
            assert [calls(mock) for mock in mocks] == [1, 1, 1]
        finally:
            release.set()
        assert await asyncio.gather(*runs) == ["Done."] * 3


def test_the_replica_with_fewest_requests_in_flight_is_chosen() -> None:
    replicas = Replicas(["http://a/v1", "http://b/v1", "http://c/v1"], backend="pool")
    a, b, c = replicas.replicas
    for replica in (a, a, b):
        replicas.started(replica)
    assert replicas.choose() is c
    replicas.started(c)
    replicas.finished(a)
    replicas.finished(a)
    assert replicas.choose() is a  # nothing in flight
    replicas.finished(b)
    assert replicas.choose() is b  # nothing in flight either, and sent fewer than A


# -- affinity -----------------------------------------------------------------------------------


def test_affinity_places_sessions_by_rendezvous_hash() -> None:
    now = [0.0]
    urls = [f"http://gpu-{n}:8000/v1" for n in range(4)]
    replicas = Replicas(urls, backend="pool", affinity="session", clock=lambda: now[0])
    sessions = [f"user-{n}" for n in range(200)]
    placed = {session: replicas.choose(session) for session in sessions}
    assert {replica.url for replica in placed.values()} == set(urls)  # all are used
    again = Replicas(urls[::-1], backend="pool", affinity="session")
    assert all(again.choose(s).url == placed[s].url for s in sessions)  # stable

    dead = replicas.replicas[1]
    replicas.mark_down(dead, "connection refused")
    moved = {s for s in sessions if replicas.choose(s) is not placed[s]}
    assert moved == {s for s in sessions if placed[s] is dead}  # only the dead one's sessions
    now[0] += replicas.down_for_s
    assert all(replicas.choose(s) is placed[s] for s in sessions)  # back where they were
    # without affinity, a session is balanced like any call
    plain = Replicas(urls, backend="pool")
    assert all(plain.choose(s) is plain.replicas[0] for s in sessions)


async def test_a_session_stays_on_one_replica_and_moves_when_it_dies(
    servers: Callable[..., MockVLLM], tmp_path: Path
) -> None:
    mocks = [servers() for _ in range(3)]
    path = project(tmp_path, [mock.url for mock in mocks], affinity="session")
    async with Runtime.from_yaml(path) as runtime:

        async def served_by(session: str | None) -> MockVLLM:
            before = [calls(mock) for mock in mocks]
            result = await runtime.run("helper", "Hi", session=session)
            assert result.final_output == "Done."
            grew = [m for m, n in zip(mocks, before, strict=True) if calls(m) > n]
            assert len(grew) == 1
            return grew[0]

        home = await served_by("alice")
        assert [await served_by("alice") for _ in range(4)] == [home] * 4
        others = {session: await served_by(session) for session in ("bob", "carol", "dave")}
        home.stop()
        new_home = await served_by("alice")  # fails over within the run
        assert new_home is not home
        assert await served_by("alice") is new_home
        for session, replica in others.items():
            if replica is not home:
                assert await served_by(session) is replica  # unmoved

    downs = [r for r in trace(tmp_path) if r["type"] == "replica_down"]
    assert [(r["url"], r["cause"]) for r in downs] == [(home.url, "connection refused")]


# -- failover -----------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["refused", "503"])
async def test_a_failing_replica_is_failed_over_within_one_run(
    servers: Callable[..., MockVLLM], tmp_path: Path, failure: str
) -> None:
    if failure == "refused":
        bad_url, cause = url_of(free_port()), "connection refused"
    else:
        bad = servers(default=Reply(fault=Fault(status=503)))
        bad_url, cause = bad.url, "HTTP 503"
    good = servers(text="Saved by the other replica.")
    path = project(tmp_path, [bad_url, good.url])
    async with Runtime.from_yaml(path) as runtime:
        result = await runtime.run("helper", "Hi")
        assert result.final_output == "Saved by the other replica."
        assert calls(good) == 1
        await runtime.run("helper", "Hi")  # the failed replica is skipped now
        assert calls(good) == 2
    if failure == "503":
        assert calls(bad) == 1
    records = trace(tmp_path)
    assert [(r["url"], r["cause"]) for r in records if r["type"] == "replica_down"] == [
        (bad_url, cause)
    ]
    retries = [r for r in records if r["type"] == "retry"]
    assert len(retries) == 1
    assert retries[0]["backend"] == "pool"


async def test_a_dead_replica_is_tried_again_after_down_for_s(
    servers: Callable[..., MockVLLM], backend_of: Callable[..., Backend]
) -> None:
    port = free_port()
    good = servers()
    backend = backend_of([url_of(port), good.url], down_for_s=30, health_check_s=None)
    assert backend.replicas is not None
    now = [0.0]
    backend.replicas.clock = lambda: now[0]
    with pytest.raises(openai.APIConnectionError):
        await backend.client.responses.create(model=MODEL, input="hi")
    back = servers(port=port)
    now[0] = 29.0
    await backend.client.responses.create(model=MODEL, input="hi")
    assert (calls(back), calls(good)) == (0, 1)  # still skipped
    now[0] = 30.0
    await backend.client.responses.create(model=MODEL, input="hi")
    assert (calls(back), calls(good)) == (1, 1)
    assert not backend.replicas.replicas[0].down  # it answered


async def test_health_checks_bring_a_replica_back(
    servers: Callable[..., MockVLLM], backend_of: Callable[..., Backend]
) -> None:
    port = free_port()
    good = servers()
    backend = backend_of(
        [url_of(port), good.url], down_for_s=600, health_check_s=0.05, api_key="sk-pool"
    )
    assert backend.replicas is not None
    dead = backend.replicas.replicas[0]
    with pytest.raises(openai.APIConnectionError):
        await backend.client.responses.create(model=MODEL, input="hi")
    assert dead.down
    came_back = asyncio.Event()
    mark_up = backend.replicas.mark_up

    def marked_up(replica: Replica, *, how: str) -> None:
        mark_up(replica, how=how)
        if replica is dead and not dead.down:
            came_back.set()

    backend.replicas.mark_up = marked_up  # type: ignore[method-assign]
    back = servers(port=port)
    async with asyncio.timeout(WAIT_S):
        await came_back.wait()
    probes = [r for r in back.requests if r.path == "/v1/models"]
    assert probes
    assert probes[0].headers["authorization"] == "Bearer sk-pool"
    for _ in range(2):  # the first to the replica sent fewer requests, then turns
        await backend.client.responses.create(model=MODEL, input="hi")
    assert (calls(back), calls(good)) == (1, 1)


async def test_an_injected_http_client_sends_the_balanced_requests(
    servers: Callable[..., MockVLLM],
) -> None:
    a, b = servers(), servers()
    spec = BackendSpec.model_validate({"base_urls": [a.url, b.url], "model": MODEL})
    sent: list[str] = []

    async def record(request: httpx2.Request) -> None:
        sent.append(str(request.url))

    async with httpx2.AsyncClient(event_hooks={"request": [record]}) as http:
        backend = create_backend("pool", spec, http_client=http)
        assert isinstance(backend, Backend)
        for _ in range(2):
            await backend.client.responses.create(model=MODEL, input="hi")
        await backend.aclose()
        assert not http.is_closed  # the caller's
    assert sent == [f"{a.url}/responses", f"{b.url}/responses"]
    assert (calls(a), calls(b)) == (1, 1)


async def test_all_replicas_down_names_every_url(tmp_path: Path) -> None:
    urls = [url_of(free_port()), url_of(free_port())]
    path = project(tmp_path, urls)
    async with Runtime.from_yaml(path) as runtime:
        with pytest.raises(BackendUnavailableError) as caught:
            await runtime.run("helper", "Hi")
    assert str(caught.value) == (
        f"cannot reach any replica of the model server of backend `pool` at {urls[0]}, "
        f"{urls[1]} (connection refused; gave up after 3 attempts). Start them there (`vllm "
        "serve openai/gpt-oss-20b`) or correct `base_urls`."
    )
    downs = [r["url"] for r in trace(tmp_path) if r["type"] == "replica_down"]
    assert downs == [urls[0], urls[1], urls[0]]  # every attempt tried one of them


def test_when_all_are_down_the_one_that_failed_first_is_tried() -> None:
    now = [0.0]
    replicas = Replicas(["http://a/v1", "http://b/v1"], backend="pool", clock=lambda: now[0])
    a, b = replicas.replicas
    replicas.mark_down(a, "HTTP 503")
    now[0] = 1.0
    replicas.mark_down(b, "HTTP 503")
    assert replicas.choose() is a
    now[0] = 2.0
    replicas.mark_down(a, "HTTP 503")  # failed again
    assert replicas.choose() is b
    now[0] = 1.0 + replicas.down_for_s
    assert replicas.choose() is b  # its time out is over: tried again
    replicas.mark_up(b, how="HTTP 200")
    assert not b.down
    assert a.down


async def test_the_base_url_argument_replaces_the_replicas(
    servers: Callable[..., MockVLLM], tmp_path: Path
) -> None:
    other = servers(text="From the override.")
    path = project(tmp_path, [url_of(free_port()), url_of(free_port())])
    async with Runtime.from_yaml(path, base_url=other.url) as runtime:
        result = await runtime.run("helper", "Hi")
    assert result.final_output == "From the override."


async def test_streamed_runs_of_a_session_stay_on_one_replica(
    servers: Callable[..., MockVLLM], tmp_path: Path
) -> None:
    mocks = [servers() for _ in range(3)]
    path = project(tmp_path, [mock.url for mock in mocks], affinity="session")
    async with Runtime.from_yaml(path) as runtime:
        for _ in range(4):
            assert await streamed(runtime, session="s") == "Done."
    assert sorted(calls(mock) for mock in mocks) == [0, 0, 4]


# -- readiness and doctor -----------------------------------------------------------------------


async def test_ready_while_one_replica_answers_naming_those_that_do_not(
    servers: Callable[..., MockVLLM], tmp_path: Path
) -> None:
    good = servers()
    dead, gone = url_of(free_port()), url_of(free_port())
    unreachable = "unreachable: All connection attempts failed"
    path = project(tmp_path, [good.url, dead])
    async with served(good.url, tmp_path, config=path) as (url, _):
        response = await get(url + "/ready")
    assert (response.status_code, response.json()) == (
        200,
        {"status": "ready", "backends": {"pool": f"ok; replica 2 of 2: {unreachable}"}},
    )
    path = project(tmp_path, [dead, gone])
    async with served(good.url, tmp_path, config=path) as (url, _):
        response = await get(url + "/ready")
    assert (response.status_code, response.json()) == (
        503,
        {
            "status": "unavailable",
            "backends": {"pool": f"replica 1 of 2: {unreachable}; replica 2 of 2: {unreachable}"},
        },
    )
    assert [r.path for r in good.requests] == ["/v1/models"]


def test_doctor_checks_every_replica(servers: Callable[..., MockVLLM], tmp_path: Path) -> None:
    good = servers()
    dead = url_of(free_port())
    path = project(tmp_path, [good.url, dead])
    result = CliRunner().invoke(cli, ["doctor", "-c", str(path), "--json"])
    assert result.exit_code == 3  # a server is unreachable
    report = json.loads(result.stdout)
    assert [(b["backend"], b["base_url"]) for b in report["backends"]] == [
        ("pool", good.url),
        ("pool", dead),
    ]
    reachable = [b["checks"][0]["ok"] for b in report["backends"]]
    assert reachable == [True, False]


def test_run_sync_closes_the_health_checks_with_its_loop(
    servers: Callable[..., MockVLLM], tmp_path: Path
) -> None:
    good = servers()
    path = project(tmp_path, [url_of(free_port()), good.url], health_check_s=60)
    runtime = Runtime.from_yaml(path)
    try:
        for _ in range(2):  # a fresh loop each time: the checks start and end with it
            assert runtime.run_sync("helper", "Hi").final_output == "Done."
    finally:
        asyncio.run(runtime.aclose())
    assert calls(good) == 2
    downs = [r for r in trace(tmp_path) if r["type"] == "replica_down"]
    assert len(downs) == 2  # the clients are new each time: the dead replica is tried again


async def test_only_requests_under_the_base_url_are_balanced(
    servers: Callable[..., MockVLLM], backend_of: Callable[..., Backend]
) -> None:
    a, b, elsewhere = servers(), servers(), servers()
    backend = backend_of([f"{a.url}/", b.url])  # a trailing slash or not: the same prefix
    for _ in range(2):
        await backend.client.responses.create(model=MODEL, input="hi")
    await backend.client.get(f"{elsewhere.url}/models", cast_to=object)
    assert [(r.method, r.path) for r in a.requests] == [("POST", "/v1/responses")]
    assert [(r.method, r.path) for r in b.requests] == [("POST", "/v1/responses")]
    assert [(r.method, r.path) for r in elsewhere.requests] == [("GET", "/v1/models")]
    assert a.requests[0].headers["host"] == f"127.0.0.1:{a.port}"
    assert b.requests[0].headers["host"] == f"127.0.0.1:{b.port}"
