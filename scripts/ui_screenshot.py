"""Take the dev UI's screenshot for the README (docs/ui.png): the example agents.yaml served
against the mock vLLM server, a conversation with a tool call, in headless Chromium.

    uv run python scripts/ui_screenshot.py [docs/ui.png]

Needs Debian's `chromium` and `chromium-driver`.
"""

from __future__ import annotations

import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from agent_runtime.server import ServeOptions, create_app_from_yaml
from agent_runtime.testing import MockVLLM, Reply, call

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = [
    Reply(
        reasoning="The user wants the weather in Tokyo. I should call get_weather first.",
        calls=[call("get_weather", city="Tokyo")],
    ),
    Reply(
        reasoning="Sunny, 21 °C. Now a haiku about it.",
        final="Sun over Tokyo\nwarm streets at twenty-one degrees\nshadows lean and rest",
    ),
]


def main(target: Path) -> None:
    with MockVLLM(SCRIPT) as mock, tempfile.TemporaryDirectory() as state:
        environ = {"MOCK_URL": mock.url, "STATE_DIR": state}
        app = create_app_from_yaml(
            ROOT / "tests" / "project" / "agents.yaml", ServeOptions(ui=True), environ=environ
        )
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}/"
        server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False))
        thread = threading.Thread(target=lambda: server.run(sockets=[sock]), daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        options = Options()
        options.binary_location = str(shutil.which("chromium"))
        for argument in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--window-size=1100,640",
        ):
            options.add_argument(argument)
        driver = webdriver.Chrome(
            service=Service(executable_path=str(shutil.which("chromedriver"))), options=options
        )
        try:
            driver.get(url)
            wait = WebDriverWait(driver, 20)
            wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#agent option"))
            Select(driver.find_element(By.ID, "agent")).select_by_visible_text("weather-haiku")
            driver.find_element(By.ID, "prompt").send_keys("What's the weather in Tokyo?")
            driver.find_element(By.CSS_SELECTOR, "[data-testid=send]").click()
            wait.until(lambda d: "tokens" in d.find_element(By.ID, "log").text)
            target.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(target))
        finally:
            driver.quit()
            server.should_exit = True
            thread.join(20)
    print(f"wrote {target}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "docs" / "ui.png")
