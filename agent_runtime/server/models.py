"""`GET /v1/models` (and `GET /v1/models/{id}`): the served agents as OpenAI models.

Each agent is one model: `id` = the agent's name, `owned_by: "agent-runtime"`, `created` = when
the server started, and the agent's `description` from agents.yaml when it has one.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from agent_runtime.server.errors import unknown_agent
from agent_runtime.server.state import ServerState, server_state

__all__ = ["model_object", "routes"]


def model_object(state: ServerState, name: str) -> dict[str, Any]:
    """One agent as an OpenAI model object."""
    spec = state.runtime.config.spec.agents[name]
    model: dict[str, Any] = {
        "id": name,
        "object": "model",
        "created": state.started_at,
        "owned_by": "agent-runtime",
    }
    if spec.description:
        model["description"] = spec.description
    return model


async def list_models(request: Request) -> Response:
    state = server_state(request)
    data = [model_object(state, name) for name in state.runtime.agent_names]
    return JSONResponse({"object": "list", "data": data})


async def retrieve_model(request: Request) -> Response:
    state = server_state(request)
    name = request.path_params["model"]
    if name not in state.runtime.agent_names:
        raise unknown_agent(name, state.runtime.agent_names)
    return JSONResponse(model_object(state, name))


def routes() -> list[Route]:
    """`GET /v1/models`, `GET /v1/models/{model}`."""
    return [
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
    ]
