"""How the server of a backend with `launch: auto` is started, and found: its `LaunchPlan`.

```python
plan = plan_launch(config, "local")    # `vllm serve MODEL --host H --port P` + gpt-oss's flags
```
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from agent_runtime.config import Config, launch_problem

__all__ = ["GPT_OSS_FLAGS", "LaunchPlan", "plan_launch"]

GPT_OSS_FLAGS = (
    "--tool-call-parser",
    "openai",
    "--enable-auto-tool-choice",
    "--reasoning-parser",
    "openai_gptoss",
)
"""The `vllm serve` flags gpt-oss needs: tool calls on Chat Completions, structured output."""

_PLACEHOLDERS = ("{model}", "{host}", "{port}")
_UNSAFE = re.compile(r"[^\w.-]")  # in a backend's name, for its log file's name


@dataclass(frozen=True, slots=True, kw_only=True)
class LaunchPlan:
    """How to start (and find) the server of one backend.

    Attributes:
        backend: the backend's name.
        command: the command to run, placeholders filled in, `serve_args` appended.
        base_url: the backend's base URL (`http://host:port/v1`).
        host: the host the server binds.
        port: the port the server binds.
        model: the model it must serve (listed by `GET /v1/models`).
        log_path: where the server's output goes.
        cwd: the folder the command runs in (the agents.yaml's).
        startup_timeout_s: how long the server may take to become ready.
        api_key: sent when probing and given to the server as `VLLM_API_KEY` (None: EMPTY).
        headers: the backend's extra HTTP headers, sent when probing.
        default_command: whether `command` is the default `vllm serve` one.
    """

    backend: str
    command: tuple[str, ...] = field(repr=False)  # serve_args may hold an API key
    base_url: str
    host: str
    port: int
    model: str
    log_path: Path
    cwd: Path
    startup_timeout_s: float
    api_key: str | None = field(default=None, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    default_command: bool = True

    @property
    def root_url(self) -> str:
        """The server root, where vLLM serves `/health`."""
        return self.base_url.rstrip("/").removesuffix("/v1")

    @property
    def shown_command(self) -> str:
        """The command as a shell line, with API keys hidden."""
        shown: list[str] = []
        hide = False
        for arg in self.command:
            if hide:
                shown.append("***")
            elif arg.startswith("--api-key="):
                shown.append("--api-key=***")
            else:
                shown.append(arg)
            hide = arg == "--api-key"
        return shlex.join(shown)


def plan_launch(config: Config, backend: str, *, to_start: bool = True) -> LaunchPlan:
    """The launch plan of a declared backend (whatever its `launch` setting says).

    Args:
        config: the loaded agents.yaml.
        backend: the backend's name.
        to_start: the plan is for starting the server, so its base_url must be a local
            http://…/v1 URL; False for a plan that is only probed, whatever the URL.

    Raises:
        ConfigError: `to_start`, and its base_url is not a local http://…/v1 URL, so nothing
            can be started.
        KeyError: no such backend.
    """
    spec = config.spec.backends[backend]
    base_url = spec.base_url or ""
    problem = launch_problem(base_url)
    if problem is not None and to_start:
        raise config.error(f"backends.{backend}.base_url", problem)
    parts = urlsplit(base_url)
    host = str(parts.hostname or "localhost")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    values = {"{model}": spec.model, "{host}": host, "{port}": str(port)}
    if spec.launch_command is None:
        command = ["vllm", "serve", spec.model, "--host", host, "--port", str(port)]
        command += GPT_OSS_FLAGS
    else:
        command = [_fill(arg, values) for arg in spec.launch_command]
    key = spec.api_key.get_secret_value()
    return LaunchPlan(
        backend=backend,
        command=(*command, *spec.serve_args),
        base_url=base_url.rstrip("/"),
        host=host,
        port=port,
        model=spec.model,
        log_path=config.resolve_path(f".agent-runtime/vllm-{_UNSAFE.sub('_', backend)}.log"),
        cwd=config.base_dir,
        startup_timeout_s=spec.startup_timeout_s,
        api_key=None if key == "EMPTY" else key,
        headers=dict(spec.headers),
        default_command=spec.launch_command is None,
    )


def _fill(arg: str, values: Mapping[str, str]) -> str:
    for placeholder in _PLACEHOLDERS:
        arg = arg.replace(placeholder, values[placeholder])
    return arg
