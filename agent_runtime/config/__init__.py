"""agents.yaml: the schema, loading, `${VAR}` interpolation and every check, reported at once.

```python
from agent_runtime.config import load_config

config = load_config("agents.yaml")          # raises ConfigError listing every problem
backend_name, backend = config.backend_of("weather-haiku")
```

- `schema`: the pydantic models of the document (and its JSON Schema);
- `document`: YAML parsed with positions, `${VAR}` / `${VAR:-default}` interpolation;
- `problems`: pydantic's errors placed on those positions, in agents.yaml's words;
- `checks`: the checks across entries (names that refer to others, cycles, instruction files);
- `imports`: `package.module:function` → the tool's callable;
- `load`: `load_config` / `parse_config` putting it together into a `Config`.
"""

from __future__ import annotations

from agent_runtime.config.imports import import_function
from agent_runtime.config.load import Config, config_json_schema, load_config, parse_config
from agent_runtime.config.schema import (
    AgentSpec,
    AgentToolSpec,
    BackendSpec,
    DefaultsSpec,
    EngineSpec,
    ModelSettingsSpec,
    RuntimeConfig,
    SessionsSpec,
    ToolSpec,
    TracingSpec,
    clean_secret,
    launch_problem,
    url_problem,
)

__all__ = [
    "AgentSpec",
    "AgentToolSpec",
    "BackendSpec",
    "Config",
    "DefaultsSpec",
    "EngineSpec",
    "ModelSettingsSpec",
    "RuntimeConfig",
    "SessionsSpec",
    "ToolSpec",
    "TracingSpec",
    "clean_secret",
    "config_json_schema",
    "import_function",
    "launch_problem",
    "load_config",
    "parse_config",
    "url_problem",
]
