"""pytest plugin (entry point `pytest11`): the `mock_vllm` fixture and a loopback-only guard.

- `mock_vllm`: a running `MockVLLM` with an empty script; add replies with `mock_vllm.add(...)`.
  Works in sync and async tests. Configure it per test with
  `@pytest.mark.mock_vllm(harmony=True, vllm_version="0.22", ...)` (any `MockVLLM` keyword);
  `@pytest.mark.mock_vllm(auto=True)` answers with an `AutoModel`, no script needed. Check the
  calls the mock answered with by `mock_vllm.assert_tool_calls([...])`.
- `mock_vllm_factory`: starts more servers: `mock_vllm_factory(script, **options)`.
- The vLLM release the servers imitate: the newest by default; `--mock-vllm-version 0.22` or the
  ini option `agent_runtime_vllm_version = 0.22` sets it for a whole run (a marker's
  `vllm_version` or `profile` still wins), to run a suite against the release a team deploys.
- Network guard: with `--agent-runtime-block-network` or the ini option
  `agent_runtime_block_network = true`, a test that connects (or resolves a name) outside
  loopback fails with `NetworkBlockedError`. Every option is named after the project, so the
  plugin sits beside others (pytest-recording has its own `--block-network`).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from agent_runtime.testing.profile import release_profile
from agent_runtime.testing.script import ScriptEntry
from agent_runtime.testing.server import MockVLLM

__all__ = ["NetworkBlockedError", "mock_vllm", "mock_vllm_factory"]

_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class NetworkBlockedError(OSError):
    """A test tried to reach a non-loopback address while the network guard was on."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("agent-runtime")
    group.addoption(
        "--agent-runtime-block-network",
        action="store_true",
        default=None,
        help="fail any test that reaches a non-loopback address (agent-runtime)",
    )
    group.addoption(
        "--mock-vllm-version",
        default=None,
        metavar="VERSION",
        help="the vLLM release mock_vllm servers imitate, e.g. 0.22 (agent-runtime)",
    )
    parser.addini(
        "agent_runtime_vllm_version",
        default="",
        help="the vLLM release mock_vllm servers imitate, e.g. 0.22 (agent-runtime)",
    )
    parser.addini(
        "agent_runtime_block_network",
        type="bool",
        default=False,
        help="fail any test that reaches a non-loopback address (agent-runtime)",
    )


def pytest_configure(config: pytest.Config) -> None:
    version = _configured_version(config)
    if version is not None:
        try:
            release_profile(version)
        except ValueError as exc:
            message = f"--mock-vllm-version / agent_runtime_vllm_version: {exc}"
            raise pytest.UsageError(message) from None
    config.addinivalue_line(
        "markers", "mock_vllm(**options): MockVLLM keyword arguments for the mock_vllm fixture"
    )
    config.addinivalue_line("markers", "allow_network: let this test reach non-loopback addresses")


def _configured_version(config: pytest.Config) -> str | None:
    option = config.getoption("--mock-vllm-version", default=None)
    value = option if option is not None else config.getini("agent_runtime_vllm_version")
    return str(value) if value else None


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return False
    if host.lower() in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture(autouse=True)
def _agent_runtime_network_guard(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    option = request.config.getoption("--agent-runtime-block-network")
    enabled = option if option is not None else request.config.getini("agent_runtime_block_network")
    if not enabled or request.node.get_closest_marker("allow_network") is not None:
        return
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo
    test = request.node.nodeid

    def check(address: Any, family: int) -> None:
        if family == getattr(socket, "AF_UNIX", None):
            return
        host = address[0] if isinstance(address, tuple) and address else address
        if not _is_loopback(host):
            raise NetworkBlockedError(
                f"{test} tried to reach {host!r}: tests may only use loopback (127.0.0.1). "
                "Use the mock_vllm fixture, or mark the test with @pytest.mark.allow_network."
            )

    def connect(self: socket.socket, address: Any) -> None:
        check(address, self.family)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address, self.family)
        return real_connect_ex(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None:
            name = host.decode() if isinstance(host, bytes) else host
            check((name, 0), socket.AF_INET)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


@pytest.fixture
def mock_vllm_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., MockVLLM]]:
    """Start `MockVLLM` servers that stop at the end of the test."""
    started: list[MockVLLM] = []
    version = _configured_version(request.config)

    def factory(script: list[ScriptEntry] | None = None, **options: Any) -> MockVLLM:
        if version is not None and "profile" not in options:
            options.setdefault("vllm_version", version)
        server = MockVLLM(script, **options).start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture
def mock_vllm(
    request: pytest.FixtureRequest, mock_vllm_factory: Callable[..., MockVLLM]
) -> MockVLLM:
    """A running mock vLLM server; `.url` is the OpenAI base URL; `.add(...)` scripts replies."""
    marker = request.node.get_closest_marker("mock_vllm")
    options = dict(marker.kwargs) if marker is not None else {}
    return mock_vllm_factory(options.pop("script", None), **options)
