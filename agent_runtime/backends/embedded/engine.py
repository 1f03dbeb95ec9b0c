"""The engine behind the embedded backend: vLLM's async engine in this process.

`Engine` is what the embedded model needs: generate token ids from prompt token ids, with stop
tokens, streaming the new ids as they come. `VLLMEngine` is vLLM (`pip install
'agent-runtime[vllm]'`, a CUDA GPU); tests and users without a GPU use a fake with the same
interface (`agent_runtime.testing.FakeEngine`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from agent_runtime.errors import BackendUnavailableError

__all__ = ["Engine", "EngineOptions", "EngineUnavailableError", "Sampling", "VLLMEngine"]


class EngineUnavailableError(BackendUnavailableError):
    """The in-process engine cannot start here (no vLLM, no GPU); the message says what is
    missing and how to get it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sampling:
    """How one turn is generated."""

    max_tokens: int
    stop_token_ids: Sequence[int]
    temperature: float | None = None
    top_p: float | None = None


class Engine(Protocol):
    """Generates completions token by token; shared by all runs of a runtime."""

    def generate(self, prompt: Sequence[int], sampling: Sampling) -> AsyncIterator[list[int]]:
        """Yield the newly generated token ids as they come (the stop token included)."""
        ...

    async def close(self) -> None:
        """Release the engine."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineOptions:
    """vLLM engine settings (from agents.yaml)."""

    model: str
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: int | None = None


class VLLMEngine:
    """vLLM's `AsyncLLM` in this process: continuous batching across every run that uses it.

    The engine starts on the first `generate` (loading the model takes a while), once.
    """

    def __init__(self, options: EngineOptions) -> None:
        self.options = options
        self._engine: Any = None
        self._lock = asyncio.Lock()

    @staticmethod
    def check() -> None:
        """Raise `EngineUnavailableError` unless vLLM and a CUDA GPU are here."""
        try:
            import vllm

            if getattr(vllm, "__file__", None) is None:  # a stray `vllm` folder on sys.path
                raise ImportError(f"`vllm` at {list(vllm.__path__)} is a folder, not the package")
        except ImportError as exc:
            raise EngineUnavailableError(
                "the vllm-embedded backend runs vLLM in this process, but vLLM is not installed "
                f"({exc}). Install it with `pip install 'agent-runtime[vllm]'` (or `uv pip "
                "install vllm`) on a machine with a CUDA GPU, or use `kind: vllm` with a "
                "`vllm serve` server."
            ) from None
        import torch

        if not torch.cuda.is_available():
            raise EngineUnavailableError(
                "the vllm-embedded backend needs a CUDA GPU, and none is visible here "
                "(torch.cuda.is_available() is False). Run it on a GPU machine, or use `kind: "
                "vllm` with a `vllm serve` server."
            )

    async def _start(self) -> Any:
        async with self._lock:
            if self._engine is None:
                self.check()
                from vllm.engine.arg_utils import AsyncEngineArgs
                from vllm.v1.engine.async_llm import AsyncLLM

                options = self.options
                args = AsyncEngineArgs(
                    model=options.model,
                    tensor_parallel_size=options.tensor_parallel_size,
                    gpu_memory_utilization=options.gpu_memory_utilization,
                    max_model_len=options.max_model_len,
                )
                self._engine = AsyncLLM.from_engine_args(args)
            return self._engine

    async def generate(self, prompt: Sequence[int], sampling: Sampling) -> AsyncIterator[list[int]]:
        """Stream new token ids for `prompt` (vLLM `RequestOutputKind.DELTA`)."""
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        engine = await self._start()
        params = SamplingParams(
            max_tokens=sampling.max_tokens,
            stop_token_ids=list(sampling.stop_token_ids),
            temperature=1.0 if sampling.temperature is None else sampling.temperature,
            top_p=1.0 if sampling.top_p is None else sampling.top_p,
            output_kind=RequestOutputKind.DELTA,
            skip_special_tokens=False,
        )
        request = TokensPrompt(prompt_token_ids=list(prompt))
        async for output in engine.generate(request, params, request_id=uuid.uuid4().hex):
            yield list(output.outputs[0].token_ids)

    async def close(self) -> None:
        """Shut the engine down (its GPU memory is freed)."""
        engine, self._engine = self._engine, None
        if engine is not None:
            engine.shutdown()
