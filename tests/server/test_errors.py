"""Every error the server answers is in OpenAI's shape: unknown paths and methods, failing model
servers (502 / 504), failures of the server itself (500, no traceback, no HTML)."""

from __future__ import annotations

from pathlib import Path

import httpx2
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent_runtime.errors import (
    BackendError,
    BackendUnavailableError,
    ConfigError,
    ConfigProblem,
    RunError,
    RunLimitError,
)
from agent_runtime.server.errors import APIError, exception_handlers, run_error
from agent_runtime.testing import Fault, MockVLLM, Reply, fault
from tests.server.ops_helpers import WAIT_S, get, post, served, serving


def _shape(status: int, body: object) -> tuple[int, set[str]]:
    assert isinstance(body, dict)
    return status, set(body["error"])


async def test_unknown_paths_and_methods_get_openai_errors(tmp_path: Path) -> None:
    with MockVLLM() as mock:
        async with served(mock.url, tmp_path) as (url, _):
            missing = await get(url + "/v1/nothing")
            wrong = await get(url + "/v1/chat/completions")
    assert missing.status_code == 404
    assert missing.json() == {
        "error": {
            "message": "no route for GET /v1/nothing.",
            "type": "invalid_request_error",
            "param": None,
            "code": "not_found",
        }
    }
    assert wrong.status_code == 405
    assert wrong.json()["error"] == {
        "message": "GET is not allowed on /v1/chat/completions.",
        "type": "invalid_request_error",
        "param": None,
        "code": "method_not_allowed",
    }
    assert missing.headers["content-type"] == "application/json"


async def test_a_failure_of_the_server_is_a_short_500_without_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("secret internals at /srv/app.py line 3")

    app = Starlette(routes=[Route("/boom", broken)], exception_handlers=exception_handlers())
    async with serving(app) as url:
        response = await get(url + "/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {
            "message": "the server failed on GET /boom (RuntimeError); the server's log has "
            "the details.",
            "type": "server_error",
            "param": None,
            "code": "server_error",
        }
    }
    assert "Traceback" not in response.text
    assert "secret internals" in caplog.text  # for the operator, in the log


async def test_an_unreachable_model_server_is_502(tmp_path: Path) -> None:
    async with served("http://127.0.0.1:9/v1", tmp_path) as (url, _):
        response = await post(
            url + "/v1/chat/completions",
            json={"model": "weather-haiku", "messages": [{"role": "user", "content": "Hi"}]},
        )
    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "backend_unavailable")
    assert error["message"].startswith("cannot reach the model server of backend `mock`")


async def test_a_model_server_that_keeps_failing_is_502(tmp_path: Path) -> None:
    with MockVLLM([fault(status=500, message="engine dead")]) as mock:
        async with (
            served(mock.url, tmp_path) as (url, _),
            openai.AsyncOpenAI(base_url=url + "/v1", api_key="unused", max_retries=0) as client,
        ):
            with pytest.raises(openai.APIStatusError) as caught:
                await client.chat.completions.create(
                    model="weather-haiku", messages=[{"role": "user", "content": "Hi"}]
                )
    assert caught.value.status_code == 502
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "backend_error"
    assert "engine dead" in caught.value.body["message"]


async def test_a_model_server_that_times_out_is_504(tmp_path: Path) -> None:
    config = tmp_path / "agents.yaml"
    config.write_text(
        "version: 1\ntracing: {enabled: false}\n"
        f"sessions: {{path: {tmp_path}/s.sqlite3}}\n"
        "backends:\n  mock:\n    base_url: ${MOCK_URL}\n    model: openai/gpt-oss-20b\n"
        "    max_retries: 0\n    timeout_s: 0.2\n"
        "agents:\n  weather-haiku: {instructions: Haiku.}\n"
    )
    script = [Reply(final="late", fault=Fault(delay_s=WAIT_S / 2))]
    with MockVLLM(script) as mock:
        async with served(mock.url, tmp_path, config=config) as (url, _):
            response = await post(
                url + "/v1/chat/completions",
                json={"model": "weather-haiku", "messages": [{"role": "user", "content": "Hi"}]},
            )
    assert response.status_code == 504
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "backend_timeout")


def _problem(path: str, message: str) -> ConfigError:
    return ConfigError(
        [ConfigProblem(file="run()", line=None, column=None, path=path, message=message)]
    )


@pytest.mark.parametrize(
    ("error", "status", "code", "param"),
    [
        pytest.param(
            BackendUnavailableError("cannot reach x"), 502, "backend_unavailable", None, id="down"
        ),
        pytest.param(BackendError("answered 500"), 502, "backend_error", None, id="failing"),
        pytest.param(
            BackendUnavailableError("the request timed out"),
            504,
            "backend_timeout",
            None,
            id="slow",
        ),
        pytest.param(RunLimitError("max turns"), 500, "run_limit", None, id="limit"),
        pytest.param(RunError("bad answer"), 500, "run_error", None, id="run"),
        pytest.param(
            _problem("model_settings.top_p", "too big"), 400, None, "model_settings.top_p", id="bad"
        ),
    ],
)
def test_run_errors_map_to_statuses(
    error: Exception, status: int, code: str | None, param: str | None
) -> None:
    assert isinstance(error, BackendError | RunError | ConfigError)
    api = run_error(error)
    assert (api.status, api.code, api.param) == (status, code, param)
    assert set(api.body()["error"]) == {"message", "type", "param", "code"}


def test_an_api_error_carries_its_headers() -> None:
    error = APIError(429, "slow down", type="rate_limit_error", headers={"Retry-After": "1"})
    response = error.response()
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    assert httpx2.Response(429, content=response.body).json() == {
        "error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": None}
    }
