"""How a server of agents is set up: `serve:` in agents.yaml, overridden by `agent-runtime serve`
options or by `create_app(options=...)`.

```python
options = ServeOptions.from_config(config)                        # agents.yaml's `serve:`
options = ServeOptions.from_config(config, api_keys=["k1"], ui=False)  # command-line overrides
```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent_runtime.config.schema import ServeSpec, is_loopback

if TYPE_CHECKING:
    from agent_runtime.config import Config

__all__ = ["ServeOptions"]


@dataclass(frozen=True)
class ServeOptions:
    """The server's settings; every field has a default fit for a local server.

    Args:
        api_keys: keys a request must bring as `Authorization: Bearer KEY`; none: no check.
            Left out of `repr`, so that logging the options does not log the keys.
        max_body_bytes: largest request body accepted (413 past it).
        max_runs_per_key: runs one key (or, without keys, the whole server) may have in flight;
            past it 429 with `Retry-After`.
        drain_grace_s: on SIGTERM, how long runs in flight may go on; new ones get 503.
        cors_origins: origins allowed by CORS; none: CORS off.
        ui: serve the dev UI at `/`.
        store_limit: responses kept for `GET /v1/responses/{id}` (oldest dropped first).
    """

    api_keys: tuple[str, ...] = field(default=(), repr=False)
    max_body_bytes: int = 4 * 1024 * 1024
    max_runs_per_key: int = 64
    drain_grace_s: float = 30.0
    cors_origins: tuple[str, ...] = ()
    ui: bool = True
    store_limit: int = 10_000

    @classmethod
    def from_spec(
        cls,
        spec: ServeSpec,
        *,
        host: str | None = None,
        api_keys: Sequence[str] | None = None,
        ui: bool | None = None,
        drain_grace_s: float | None = None,
    ) -> ServeOptions:
        """The options of a `serve:` section, with what the command line gives instead.

        Args:
            spec: the `serve:` section.
            host: the address served on, when the command line gives another one; the UI's
                default follows it (on for a loopback address).
            api_keys: keys replacing `serve.api_keys` (None or empty: the section's).
            ui: serve the dev UI or not (None: `serve.ui`, else on for a loopback host).
            drain_grace_s: instead of `serve.drain_grace_s`.
        """
        keys = tuple(api_keys) if api_keys else tuple(k.get_secret_value() for k in spec.api_keys)
        if ui is None:
            ui = spec.ui if spec.ui is not None else is_loopback(host or spec.host)
        return cls(
            api_keys=keys,
            max_body_bytes=spec.max_body_bytes,
            max_runs_per_key=spec.max_runs_per_key,
            drain_grace_s=spec.drain_grace_s if drain_grace_s is None else drain_grace_s,
            cors_origins=tuple(spec.cors_origins),
            ui=ui,
            store_limit=spec.store_limit,
        )

    @classmethod
    def from_config(
        cls,
        config: Config,
        *,
        host: str | None = None,
        api_keys: Sequence[str] | None = None,
        ui: bool | None = None,
        drain_grace_s: float | None = None,
    ) -> ServeOptions:
        """`from_spec` of the configuration's `serve:` section (its defaults when absent)."""
        return cls.from_spec(
            config.spec.serve, host=host, api_keys=api_keys, ui=ui, drain_grace_s=drain_grace_s
        )
