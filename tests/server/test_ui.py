"""The dev UI in a real headless Chromium (Debian's `chromium` and `chromedriver`): the page lists
the agents, streams a run (reasoning, the tool call with its arguments, result and timing, the
answer, usage), continues the conversation on the server, keeps past conversations, and shows
model and tool text as text."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from agent_runtime.server import ServeOptions
from agent_runtime.testing import MockVLLM, Reply, call
from tests.server.helpers import project_app

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)
WAIT_S = 20


class Served:
    """The app of tests/project/agents.yaml (owning its runtime) under uvicorn on a free port, in
    a thread."""

    def __init__(self, mock: MockVLLM, state: Path) -> None:
        app = project_app(mock, state, ServeOptions(ui=True))
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, lifespan="on", log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=lambda: self.server.run(sockets=[self.sock]), daemon=True
        )

    def __enter__(self) -> Served:
        self.thread.start()
        for _ in range(WAIT_S * 20):
            if self.server.started:
                return self
            threading.Event().wait(0.05)
        raise AssertionError("the server did not start")

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(WAIT_S)
        self.sock.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    options.add_argument("--window-size=1200,800")
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def found(driver: Any, testid: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, f"[data-testid={testid}]"))


def wait_for(driver: Any, check: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S).until(lambda d: check(d))


def ask(driver: Any, agent: str, text: str) -> None:
    from selenium.webdriver.support.ui import Select

    wait_for(driver, lambda d: any(o.text == agent for o in Select(found(d, "agent")[0]).options))
    Select(found(driver, "agent")[0]).select_by_visible_text(agent)
    found(driver, "prompt")[0].send_keys(text)
    found(driver, "send")[0].click()


def test_a_run_streams_into_the_page_and_the_conversation_goes_on(
    browser: Any, tmp_path: Path
) -> None:
    script = [
        Reply(reasoning="I should look up the weather.", calls=[call("get_weather", city="Tokyo")]),
        Reply(reasoning="Now the haiku.", final="Sun on Tokyo roofs"),
        Reply(final="Still sunny there"),
    ]
    with MockVLLM(script) as mock, Served(mock, tmp_path) as served:
        browser.get(served.url + "/")
        ask(browser, "weather-haiku", "Weather in Tokyo?")
        answer = wait_for(
            browser, lambda d: [m for m in found(d, "message") if "Sun on Tokyo" in m.text]
        )[0]
        assert answer.text == "Sun on Tokyo roofs"
        reasoning = " ".join(r.text for r in found(browser, "reasoning"))
        assert "I should look up the weather." in reasoning
        [tool] = found(browser, "mcp_call")
        assert "→ get_weather" in tool.text
        assert '"Tokyo"' in tool.text
        assert '← {"city": "Tokyo", "condition": "sunny", "temperature_c": 21}' in tool.text
        meta = wait_for(
            browser,
            lambda d: [e for e in d.find_elements("css selector", ".meta") if "tokens" in e.text],
        )
        assert " in / " in meta[0].text

        # The second question continues the conversation on the server.
        ask(browser, "weather-haiku", "And now?")
        wait_for(browser, lambda d: [m for m in found(d, "message") if "Still sunny" in m.text])
        last = mock.model_requests[-1].json
        assert "Weather in Tokyo?" in str(last["input"])

        # Past conversations survive a reload and can be opened again.
        browser.refresh()
        [conversation] = wait_for(browser, lambda d: found(d, "conversation"))
        assert "Weather in Tokyo?" in conversation.text
        conversation.click()
        assert len(wait_for(browser, lambda d: found(d, "turn"))) == 2
        screenshot = tmp_path / "ui.png"
        browser.save_screenshot(str(screenshot))
        assert screenshot.read_bytes()[:4] == b"\x89PNG"


def test_model_and_tool_text_is_shown_as_text(browser: Any, tmp_path: Path) -> None:
    hostile = "<img src=x onerror=\"document.title='pwned'\"><b>bold</b>"
    with MockVLLM([Reply(reasoning=hostile, final=hostile)]) as mock, Served(mock, tmp_path) as s:
        browser.get(s.url + "/")
        ask(browser, "weather-haiku", "Say something odd")
        wait_for(browser, lambda d: [m for m in found(d, "message") if "<img" in m.text])
        log = found(browser, "log")[0]
        assert log.find_elements("css selector", "img, b") == []
        assert browser.title == "agent-runtime"
