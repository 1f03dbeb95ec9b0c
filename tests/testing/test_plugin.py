"""The pytest plugin, as a user's test suite sees it (run with pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INI = """
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""


def run(pytester: pytest.Pytester, source: str, *args: str, ini: str = INI) -> pytest.RunResult:
    """Run a user's test file in a fresh interpreter (this suite's own guard stays out of it)."""
    pytester.makeini(ini)
    pytester.makepyfile(source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_fixture_in_sync_and_async_tests(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        from openai import AsyncOpenAI, OpenAI
        from agent_runtime.testing import MockVLLM, Reply, call

        def test_sync(mock_vllm: MockVLLM) -> None:
            mock_vllm.add(Reply(reasoning="r", final="hello"))
            with OpenAI(base_url=mock_vllm.url, api_key="x") as client:
                answer = client.responses.create(model="openai/gpt-oss-20b", input="hi")
            assert answer.output_text == "hello"
            mock_vllm.assert_script_consumed()

        async def test_async(mock_vllm: MockVLLM) -> None:
            mock_vllm.add(Reply(final="async hello"))
            async with AsyncOpenAI(base_url=mock_vllm.url, api_key="x") as client:
                answer = await client.chat.completions.create(
                    model="openai/gpt-oss-20b", messages=[{"role": "user", "content": "hi"}]
                )
            assert answer.choices[0].message.content == "async hello"
        """,
    )
    result.assert_outcomes(passed=2)


def test_marker_configures_the_fixture_and_factory_makes_more(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import httpx2
        import pytest
        from agent_runtime.testing import LATEST, MockVLLM, Reply

        @pytest.mark.mock_vllm(profile=LATEST, api_key="k", script=[Reply(final="one")])
        def test_marker(mock_vllm: MockVLLM, mock_vllm_factory) -> None:
            assert httpx2.get(mock_vllm.root_url + "/version").json() == {"version": "0.33.0"}
            headers = {"Authorization": "Bearer k"}
            body = httpx2.post(mock_vllm.url + "/responses", json={"input": "x"}, headers=headers)
            assert body.json()["output"][0]["content"][0]["text"] == "one"
            other = mock_vllm_factory([Reply(final="two")])
            assert other.port != mock_vllm.port
        """,
    )
    result.assert_outcomes(passed=1)


VERSIONED = """
import httpx2
import pytest
from agent_runtime.testing import VLLM_0_33, MockVLLM

def test_default(mock_vllm: MockVLLM) -> None:
    print("version", httpx2.get(mock_vllm.root_url + "/version").json()["version"])

@pytest.mark.mock_vllm(vllm_version="0.22")
def test_marker(mock_vllm: MockVLLM) -> None:
    assert mock_vllm.profile.version == "0.22.1"

@pytest.mark.mock_vllm(profile=VLLM_0_33.but(chat_tool_parser=False))
def test_profile_marker(mock_vllm: MockVLLM) -> None:
    assert mock_vllm.profile.version == "0.33.0"
"""


@pytest.mark.parametrize(
    ("args", "ini", "version"),
    [
        pytest.param((), "", "0.33.0", id="newest"),
        pytest.param(("--mock-vllm-version", "0.22"), "", "0.22.1", id="option"),
        pytest.param((), "agent_runtime_vllm_version = 0.22.1\n", "0.22.1", id="ini"),
    ],
)
def test_the_imitated_vllm_release_is_set_per_run_or_per_test(
    pytester: pytest.Pytester, args: tuple[str, ...], ini: str, version: str
) -> None:
    result = run(pytester, VERSIONED, "-s", *args, ini=INI + ini)
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines([f"*version {version}*"])


def test_an_unknown_vllm_release_stops_the_run(pytester: pytest.Pytester) -> None:
    result = run(pytester, VERSIONED, "--mock-vllm-version", "0.30")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*--mock-vllm-version / agent_runtime_vllm_version: the mock does not imitate vLLM "
            "'0.30'; it imitates 0.33.0 (0.33), 0.22.1 (0.22): give one of 0.33, 0.22*"
        ]
    )


GUARDED = """
import socket
import pytest

def test_reaches_out() -> None:
    with socket.socket() as s:
        s.settimeout(0.01)
        s.connect(("10.255.255.1", 80))

def test_resolves_a_name() -> None:
    socket.getaddrinfo("example.com", 443)

def test_loopback_is_fine() -> None:
    with socket.socket() as server, socket.socket() as client:
        server.bind(("127.0.0.1", 0))
        server.listen()
        client.connect(server.getsockname())
    socket.getaddrinfo("localhost", 80)

@pytest.mark.allow_network
def test_allowed() -> None:
    assert socket.socket.connect.__qualname__ == "socket.connect"
"""


def test_network_guard_from_ini(pytester: pytest.Pytester) -> None:
    result = run(pytester, GUARDED, ini=INI + "agent_runtime_block_network = true\n")
    result.assert_outcomes(passed=2, failed=2)
    result.stdout.fnmatch_lines(
        [
            "*NetworkBlockedError: test_network_guard_from_ini.py::test_reaches_out tried to reach "
            "'10.255.255.1': tests may only use loopback (127.0.0.1). Use the mock_vllm fixture, "
            "or mark the test with @pytest.mark.allow_network.",
            "*NetworkBlockedError: test_network_guard_from_ini.py::test_resolves_a_name tried to "
            "reach 'example.com'*",
        ]
    )


def test_network_guard_from_the_command_line(pytester: pytest.Pytester) -> None:
    result = run(pytester, GUARDED, "--agent-runtime-block-network", "-k", "reaches_out or allowed")
    result.assert_outcomes(passed=1, failed=1, deselected=2)


def test_options_sit_beside_another_plugins_block_network(pytester: pytest.Pytester) -> None:
    # pytest-recording registers `--block-network` of its own; a conftest stands in for it.
    pytester.makeconftest(
        """
        def pytest_addoption(parser):
            group = parser.getgroup("recording")
            group.addoption("--block-network", action="store_true", help="another plugin's")
        """
    )
    other = """
def test_recording_plugins_option(request) -> None:
    assert request.config.getoption("--block-network") is True
"""
    args = ("--block-network", "--agent-runtime-block-network", "-k", "reaches_out or recording")
    result = run(pytester, GUARDED + other, *args)
    result.assert_outcomes(passed=1, failed=1, deselected=3)
    result.stdout.fnmatch_lines(["*NetworkBlockedError: *tried to reach '10.255.255.1'*"])


def test_network_guard_is_off_by_default(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import socket

        def test_not_patched() -> None:
            assert socket.socket.connect.__qualname__ == "socket.connect"
        """,
    )
    result.assert_outcomes(passed=1)
