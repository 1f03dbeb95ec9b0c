"""`agent-runtime serve`: every agent of an agents.yaml as an OpenAI-compatible model.

`create_app(runtime, options)` gives the ASGI app (Starlette) to run under uvicorn or to mount
in your own service; `ServeOptions` are its settings.
"""

from __future__ import annotations

from agent_runtime.server.app import create_app, create_app_from_yaml
from agent_runtime.server.options import ServeOptions

__all__ = ["ServeOptions", "create_app", "create_app_from_yaml"]
