"""`FakeEngine`: the embedded backend's engine without a GPU, replaying scripted completions."""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agent_runtime.backends.embedded.engine import Sampling
from agent_runtime.testing.completion import harmony_completion_text, reply_messages
from agent_runtime.testing.script import Reply

if TYPE_CHECKING:
    from openai_harmony import HarmonyEncoding

__all__ = ["FakeEngine", "FakeGeneration"]


@dataclass(frozen=True, slots=True)
class FakeGeneration:
    """One `generate` call the fake answered: the prompt it got and the tokens it gave."""

    prompt: tuple[int, ...]
    sampling: Sampling
    tokens: tuple[int, ...]


@dataclass(slots=True)
class FakeEngine:
    """An `Engine` that answers each `generate` with the next scripted reply, as tokens.

    Replies are the mock server's (`Reply(reasoning=..., calls=[...], final=...)` or raw
    `Reply(harmony=...)`), rendered as gpt-oss writes them and tokenized with `encoding`. Tokens
    are streamed `chunk` at a time; `stop_token=False` leaves the stop token out, as some
    engines do. Every call is recorded in `generations`.
    """

    encoding: HarmonyEncoding
    script: Sequence[Reply] = ()
    chunk: int = 1
    stop_token: bool = True
    generations: list[FakeGeneration] = field(default_factory=list)
    _replies: deque[Reply] = field(default_factory=deque)
    closed: bool = False

    def __post_init__(self) -> None:
        self._replies.extend(self.script)

    def add(self, *replies: Reply) -> None:
        """Append scripted replies."""
        self._replies.extend(replies)

    def _tokens(self, reply: Reply, sampling: Sampling) -> list[int]:
        text = (
            reply.harmony
            if reply.harmony is not None
            else harmony_completion_text(reply_messages(reply))
        )
        tokens = self.encoding.encode(text, allowed_special="all")
        if not self.stop_token and tokens and tokens[-1] in sampling.stop_token_ids:
            tokens = tokens[:-1]
        return tokens[: sampling.max_tokens]

    async def generate(self, prompt: Sequence[int], sampling: Sampling) -> AsyncIterator[list[int]]:
        """Yield the next reply's tokens, `chunk` at a time."""
        if not self._replies:
            raise RuntimeError(
                f"FakeEngine: no scripted reply left for generation {len(self.generations)}"
            )
        tokens = self._tokens(self._replies.popleft(), sampling)
        self.generations.append(FakeGeneration(tuple(prompt), sampling, tuple(tokens)))
        for start in range(0, len(tokens), self.chunk):
            yield tokens[start : start + self.chunk]

    async def close(self) -> None:
        """Nothing to release."""
        self.closed = True
