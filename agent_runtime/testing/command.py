"""The command that runs the mock vLLM server in the foreground."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Any

import click

from agent_runtime.testing.auto import AutoModel
from agent_runtime.testing.profile import RELEASES, Latency
from agent_runtime.testing.prompt import HarmonyUnavailableError
from agent_runtime.testing.responders import ToolLoop
from agent_runtime.testing.script import ScriptEntry, ScriptError, load_script

__all__ = ["mock_command"]


def _arguments(_ctx: click.Context, _param: click.Parameter, value: str) -> dict[str, Any]:
    try:
        parsed = json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter('must be a JSON object, e.g. \'{"city": "Tokyo"}\'')
    return parsed


@click.command(name="mock", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--script",
    "script_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="YAML/JSON file of replies, one per model call, in order.",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Loopback address to bind.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to bind; 0 picks a free one.",
)
@click.option("--model", default="openai/gpt-oss-20b", show_default=True, help="Served model name.")
@click.option("--api-key", default=None, help="Require this bearer token on /v1/*.")
@click.option(
    "--harmony/--no-harmony",
    default=False,
    show_default=True,
    help="Render exact harmony prompts and count real tokens (needs the vocabulary).",
)
@click.option(
    "--vllm-version",
    type=click.Choice(list(RELEASES)),
    default=next(iter(RELEASES)),
    show_default=True,
    help="Which vLLM release to imitate (its prompts, answers, events and errors).",
)
@click.option(
    "--first-token-ms", default=0.0, type=click.FloatRange(0), help="Delay before the first token."
)
@click.option(
    "--per-token-ms", default=0.0, type=click.FloatRange(0), help="Delay per generated token."
)
@click.option(
    "--tool-loop",
    is_flag=True,
    help="After the script, answer every call by calling --loop-tool --loop-steps times after "
    "each user message, then answering (works for any number of concurrent runs).",
)
@click.option(
    "--loop-tool",
    default="get_weather",
    show_default=True,
    help="Tool the loop calls; when a request does not offer it, the first tool it offers "
    "(with arguments made up from its schema).",
)
@click.option(
    "--loop-steps",
    default=1,
    show_default=True,
    type=click.IntRange(0),
    help="Tool calls before the loop answers.",
)
@click.option(
    "--loop-arguments",
    default='{"city": "Tokyo"}',
    show_default=True,
    callback=_arguments,
    help="JSON arguments of the loop's calls of --loop-tool (and of same-named parameters "
    "of another tool).",
)
@click.option(
    "--auto",
    is_flag=True,
    help="After the script, answer every call like a model that calls each offered tool once "
    "(arguments made up from its schema; handoffs left out), then answers (JSON that fits the "
    "output schema when one is asked for).",
)
@click.option("--seed", type=int, default=None, help="Make generated ids repeatable.")
@click.option(
    "--record",
    "record_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="CASSETTE",
    help="Instead of answering, forward every call to --upstream and record the answers into "
    "this cassette (a script file; saved after each call).",
)
@click.option(
    "--upstream",
    default=None,
    metavar="URL",
    help="With --record: the OpenAI base URL of the real vLLM server, e.g. http://gpu-box:8000/v1.",
)
def mock_command(
    script_path: Path | None,
    host: str,
    port: int,
    model: str,
    api_key: str | None,
    harmony: bool,
    vllm_version: str,
    first_token_ms: float,
    per_token_ms: float,
    tool_loop: bool,
    loop_tool: str,
    loop_steps: int,
    loop_arguments: dict[str, Any],
    auto: bool,
    seed: int | None,
    record_path: Path | None,
    upstream: str | None,
) -> None:
    """Run a mock vLLM server for gpt-oss (Responses + Chat Completions) until Ctrl-C.

    It prints its base URL on stdout; point an OpenAI client or `--base-url` at it.
    With `--record CASSETTE --upstream URL` it is a recording proxy in front of a real vLLM
    server instead; replay the cassette later with `--script CASSETTE`.
    """
    if record_path is not None or upstream is not None:
        from agent_runtime.testing.record_command import record

        given = {
            "--script": script_path is not None,
            "--tool-loop": tool_loop,
            "--harmony": harmony,
            "--auto": auto,
        }
        record(record_path, upstream, host=host, port=port, conflicts=given)
        return
    from agent_runtime.testing.server import MockVLLM

    script: list[ScriptEntry] = []
    if script_path is not None:
        try:
            script = list(load_script(script_path))
        except ScriptError as exc:
            raise click.UsageError(str(exc)) from None
    default: ScriptEntry | None = (
        ToolLoop(tool=loop_tool, steps=loop_steps, arguments=loop_arguments) if tool_loop else None
    )
    if auto:
        if tool_loop:
            raise click.UsageError("give either --auto or --tool-loop, not both")
        default = AutoModel()
    if not script and default is None:
        raise click.UsageError(
            "nothing to answer with: give --script FILE, --tool-loop or --auto, or a script "
            "and one of them"
        )
    try:
        mock = MockVLLM(
            script,
            default=default,
            host=host,
            port=port,
            model=model,
            api_key=api_key,
            harmony=harmony,
            profile=RELEASES[vllm_version],
            latency=Latency(first_token_s=first_token_ms / 1000, per_token_s=per_token_ms / 1000),
            seed=seed,
            keep_requests=1000,
        )
        mock.start()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    except OSError as exc:
        raise click.UsageError(
            f"{exc.strerror}; choose another port with --port (0 picks a free one)"
        ) from None
    except HarmonyUnavailableError as exc:
        raise click.UsageError(str(exc)) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(mock.url)
    sys.stdout.flush()
    replies = f"{len(script)} scripted repl{'y' if len(script) == 1 else 'ies'}"
    loop = f", then a {loop_tool} tool loop" if default else ""
    if auto:
        loop = ", then the auto model"
    click.echo(
        f"mock vLLM {mock.profile.version} serving {model} at {mock.url} ({replies}{loop}); "
        "Ctrl-C stops.",
        err=True,
    )
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        mock.stop()
