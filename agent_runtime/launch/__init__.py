"""Model servers started for backends with `launch: auto`, and the look from outside at them.

```python
from agent_runtime.launch import ensure_server, plan_launch, probe_server

server = await ensure_server(plan_launch(config, "local"))   # found running, or started
...
await server.stop()                                          # only if it was started here
answer = await probe_server(plan_launch(config, "local"))    # what answers, starting nothing
```

- `plan`: what to start and where (`LaunchPlan`, from a backend's settings);
- `probe`: what a URL answers (`/health`, `/v1/models`), the server's log, the words for each
  problem;
- `process`: starting, waiting for and stopping the server (`ManagedServer`), with a lock per
  port so that runtimes on one machine start one server between them.
"""

from __future__ import annotations

from agent_runtime.launch.plan import GPT_OSS_FLAGS, LaunchPlan, plan_launch
from agent_runtime.launch.probe import Answer, log_tail, not_started
from agent_runtime.launch.process import LaunchProgress, ManagedServer, ensure_server, probe_server

__all__ = [
    "GPT_OSS_FLAGS",
    "Answer",
    "LaunchPlan",
    "LaunchProgress",
    "ManagedServer",
    "ensure_server",
    "log_tail",
    "not_started",
    "plan_launch",
    "probe_server",
]
