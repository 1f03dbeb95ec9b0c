"""vLLM's own OpenAI-compatible server over a scripted fake engine.

`build_app(version)` assembles the FastAPI application the way `vllm serve openai/gpt-oss-20b
--tool-call-parser openai --enable-auto-tool-choice --reasoning-parser openai_gptoss` does for the
routes the project uses (`/v1/responses`, `/v1/chat/completions`, `/v1/models`, `/version`):
vLLM's real routers, exception handlers, request models, harmony renderer, serving classes and
output parsers. Only the engine is fake: `FakeEngine.generate` records the prompt token ids and
sampling parameters it receives and yields the token ids scripted for the request, one token
per engine step when streaming.

Run inside the oracle venv (setup.sh) after `shim.install(version)`.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import AsyncIterator, Sequence
from typing import Any

from openai_harmony import HarmonyEncodingName, load_harmony_encoding

MODEL = "openai/gpt-oss-20b"
"""The model path, and the first served name."""
SERVED_NAMES = (MODEL, "gpt-oss")
"""`--served-model-name openai/gpt-oss-20b gpt-oss`: two aliases, so errors list both."""
MAX_MODEL_LEN = 131072
"""`--max-model-len`: gpt-oss's context size."""
CONFIG_HASH = "0123456789abcdef0123456789abcdef"
"""What the fake `vllm_config.compute_hash()` returns (`system_fingerprint` shows 8 chars)."""

ENCODING = load_harmony_encoding(HarmonyEncodingName.HARMONY_GPT_OSS)


def encode(text: str) -> list[int]:
    """Token ids of `text`, special tokens (`<|start|>`, ...) included."""
    return list(ENCODING.encode(text, allowed_special="all"))


def decode(ids: Sequence[int]) -> str:
    """Text of `ids`, special tokens written out."""
    return str(ENCODING.decode(list(ids)))


class Tokenizer:
    """The tokenizer methods vLLM's harmony paths call (the o200k harmony encoding)."""

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = False) -> str:
        return decode(ids)

    def encode(self, text: str, **kwargs: Any) -> list[int]:
        return encode(text)

    def get_vocab(self) -> dict[str, int]:
        class Vocab(dict[str, int]):
            def __missing__(self, key: str) -> int:
                ids = encode(key)
                if len(ids) != 1:
                    raise KeyError(key)
                return ids[0]

        return Vocab()


@dataclasses.dataclass
class Generation:
    """What the fake model produces for one request."""

    token_ids: list[int]
    finish_reason: str  # "stop" or "length"
    stop_reason: int | None = None


def _outputs(
    prompt_ids: list[int], generation: Generation, streaming: bool
) -> list[types.SimpleNamespace]:
    """RequestOutput-like objects: one per token when streaming (DELTA), else one in all."""
    ids = generation.token_ids
    steps = [[token] for token in ids] if streaming else [ids]
    if not steps:
        steps = [[]]
    outputs = []
    for n, step in enumerate(steps):
        last = n == len(steps) - 1
        completion = types.SimpleNamespace(
            index=0,
            text=decode(step) if step else "",
            token_ids=list(step),
            cumulative_logprob=None,
            finish_reason=generation.finish_reason if last else None,
            stop_reason=generation.stop_reason if last else None,
            logprobs=None,
            routed_experts=None,
            weight_versions=None,
            spec_decode_metrics=None,
        )
        outputs.append(
            types.SimpleNamespace(
                outputs=[completion],
                finished=last,
                prompt_token_ids=prompt_ids,
                encoder_prompt_token_ids=None,
                num_cached_tokens=0,
                num_cache_creation_tokens=0,
                kv_transfer_params=None,
                ec_transfer_params=None,
                metrics=None,
                prompt=None,
                prompt_logprobs=None,
            )
        )
    return outputs


class FakeModelConfig:
    """The parts of vLLM's ModelConfig the serving classes read."""

    model = MODEL
    tokenizer = MODEL
    max_model_len = MAX_MODEL_LEN
    generation_config = "auto"
    override_generation_config: dict[str, Any] = {}  # noqa: RUF012 (read-only)
    is_encoder_decoder = False
    hf_config = types.SimpleNamespace(model_type="gpt_oss")
    hf_text_config = hf_config

    def get_diff_sampling_param(self) -> dict[str, Any]:
        return {}


class FakeEngine:
    """An engine client that answers from `script` and records what it was asked.

    Attributes:
        script: generations to hand out, first in first out.
        requests: (prompt token ids, sampling parameters) of every `generate` call.
    """

    errored = False
    dead_error = RuntimeError("engine dead")
    input_processor = None

    def __init__(self) -> None:
        self.model_config = FakeModelConfig()
        tokenizer = Tokenizer()
        self.renderer = types.SimpleNamespace(tokenizer=tokenizer, get_tokenizer=lambda: tokenizer)
        self.vllm_config = types.SimpleNamespace(
            compute_hash=lambda: CONFIG_HASH,
            parallel_config=types.SimpleNamespace(
                tensor_parallel_size=1, pipeline_parallel_size=1, data_parallel_size=1
            ),
            kv_transfer_config=None,
        )
        self.script: list[Generation] = []
        self.requests: list[tuple[list[int], Any]] = []

    def check_admission(self, n: int = 1) -> None:
        pass

    async def is_tracing_enabled(self) -> bool:
        return False

    async def generate(
        self, engine_input: Any, sampling_params: Any, request_id: str, **kwargs: Any
    ) -> AsyncIterator[Any]:
        prompt_ids = list(engine_input["prompt_token_ids"])
        self.requests.append((prompt_ids, sampling_params))
        generation = self.script.pop(0)
        streaming = sampling_params.output_kind.name == "DELTA"
        for output in _outputs(prompt_ids, generation, streaming):
            yield output


def build_app(
    version: str, *, api_key: str | None = None, served_names: Sequence[str] = SERVED_NAMES
) -> tuple[Any, FakeEngine]:
    """vLLM `version`'s application over a fresh `FakeEngine`; the tool parser is on."""
    builders = {"0.33.0": _build_0_33, "0.22.1": _build_0_22}
    app, engine = builders[version](served_names)
    if api_key is not None:
        try:
            from vllm.entrypoints.serve.middleware.authenticate import AuthenticationMiddleware
        except ImportError:  # 0.22.1
            from vllm.entrypoints.openai.server_utils import AuthenticationMiddleware
        app.add_middleware(AuthenticationMiddleware, tokens=[api_key])
    return app, engine


def _models(engine: FakeEngine, served_names: Sequence[str]) -> Any:
    from vllm.entrypoints.openai.models.protocol import BaseModelPath
    from vllm.entrypoints.openai.models.serving import OpenAIServingModels

    paths = [BaseModelPath(name=name, model_path=MODEL) for name in served_names]
    return OpenAIServingModels(engine, paths)


def _mount_common(app: Any) -> None:
    from vllm.entrypoints.openai.chat_completion import api_router as chat_router
    from vllm.entrypoints.openai.models import api_router as models_router
    from vllm.entrypoints.openai.responses import api_router as responses_router
    from vllm.entrypoints.serve.instrumentator import basic

    app.state.args = types.SimpleNamespace(log_error_stack=False, sse_keep_alive_interval=0)
    responses_router.attach_router(app)
    chat_router.attach_router(app)
    models_router.attach_router(app)
    app.include_router(basic.router)


def _build_0_33(served_names: Sequence[str]) -> tuple[Any, FakeEngine]:
    from fastapi import FastAPI
    from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
    from vllm.entrypoints.openai.responses.serving import OpenAIServingResponses
    from vllm.entrypoints.serve.exception_handling.register import init_exception_handler
    from vllm.parser.harmony import HarmonyParser
    from vllm.renderers.online_renderer import OnlineRenderer

    engine = FakeEngine()
    models = _models(engine, served_names)
    common: dict[str, Any] = {
        "request_logger": None,
        "chat_template": None,
        "chat_template_content_format": "auto",
        "reasoning_parser": "openai_gptoss",
        "enable_auto_tools": True,
        "tool_parser": "openai",
    }
    renderer = OnlineRenderer(engine.model_config, engine.renderer, **common)
    responses = OpenAIServingResponses(engine, models, renderer, **common)
    chat = OpenAIServingChat(engine, models, "assistant", online_renderer=renderer, **common)
    # vLLM configures the harmony parser by setting class attributes on HarmonyParser (process
    # wide); pin this app's configuration in a private subclass.
    pinned = type(
        "HarmonyParser",
        (HarmonyParser,),
        {
            "reasoning_parser_cls": HarmonyParser.reasoning_parser_cls,
            "tool_parser_cls": HarmonyParser.tool_parser_cls,
            "tool_strict_level": HarmonyParser.tool_strict_level,
        },
    )
    renderer.parser = pinned
    responses.parser = pinned
    chat.parser_cls = pinned

    app = FastAPI()
    app.state.openai_serving_responses = responses
    app.state.openai_serving_chat = chat
    app.state.openai_serving_models = models
    _mount_common(app)
    init_exception_handler(app)
    return app, engine


def _build_0_22(served_names: Sequence[str]) -> tuple[Any, FakeEngine]:
    from fastapi import FastAPI, HTTPException
    from fastapi.exceptions import RequestValidationError
    from vllm.entrypoints.openai.chat_completion.serving import OpenAIServingChat
    from vllm.entrypoints.openai.engine.protocol import GenerationError
    from vllm.entrypoints.openai.responses.serving import OpenAIServingResponses
    from vllm.entrypoints.openai.server_utils import (
        exception_handler,
        generation_error_handler,
        http_exception_handler,
        validation_exception_handler,
    )
    from vllm.entrypoints.serve.render.serving import OpenAIServingRender

    engine = FakeEngine()
    models = _models(engine, served_names)
    common: dict[str, Any] = {
        "request_logger": None,
        "chat_template": None,
        "chat_template_content_format": "auto",
        "reasoning_parser": "openai_gptoss",
        "enable_auto_tools": True,
        "tool_parser": "openai",
    }
    render = OpenAIServingRender(engine.model_config, engine.renderer, models, **common)
    responses = OpenAIServingResponses(engine, models, render, **common)
    chat = OpenAIServingChat(engine, models, "assistant", openai_serving_render=render, **common)

    app = FastAPI()
    app.state.openai_serving_responses = responses
    app.state.openai_serving_chat = chat
    app.state.openai_serving_render = render
    app.state.openai_serving_models = models
    _mount_common(app)
    app.exception_handler(HTTPException)(http_exception_handler)
    app.exception_handler(RequestValidationError)(validation_exception_handler)
    app.exception_handler(GenerationError)(generation_error_handler)
    app.exception_handler(Exception)(exception_handler)
    return app, engine
