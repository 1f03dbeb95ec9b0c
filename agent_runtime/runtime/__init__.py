"""`Runtime`: load agents.yaml once, then run its agents (run / stream / run_sync).

```python
async with Runtime.from_yaml("agents.yaml") as runtime:
    result = await runtime.run("weather-haiku", "What's the weather in Tokyo?")
    print(result.final_output)
```

Each run is stateless towards the server (the transcript, reasoning included, is resent every
turn), traced locally (never to OpenAI's cloud), and optionally continues a stored session.
The Agents SDK is imported on first use, not when this package is imported.

`core` holds `Runtime`; `options` what one call asks for beyond agents.yaml; `runs` a run in
progress (its state, end, failures, retried answers); `client_tools` the caller's client tools.
"""

from agent_runtime.runtime.core import Input, Runtime

__all__ = ["Input", "Runtime"]
