"""The data that crosses the LLM seam, and the one protocol every client implements.

Everything else in `semgrad.llm` either implements `LLM` (a client talking to a model) or
wraps an `LLM` and is itself an `LLM` (cache, retry, limit, meter). A request is frozen and
hashable; its cache key is the sha256 of the canonical JSON of everything that can change
the model's reply (model, messages, every sampling parameter, the sample index, and the
server that answers it), and of nothing else (not the node or phase it was made for, which
only feed the meter).

Which server: a client that talks to one has an `endpoint` (`OpenAICompatible`: its base
URL), and the key includes it, so a reply from one server is never served for another
(llama.cpp and LM Studio ignore the model name: swapping the weights behind a URL is only
told apart by the URL). The embedded model has no endpoint: its name pins the weights (a
registry name to one sha256, a .gguf path is named by its hash), and its keys are the same
as before endpoints were keyed. A `namespace` (`[models] cache_namespace`) replaces the
endpoint, for users who share one cache across servers on purpose.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

__all__ = [
    "ALL_PHASES",
    "LLM",
    "MAX_REPLY_CHARS",
    "PHASES",
    "Message",
    "Phase",
    "Request",
    "Response",
    "Usage",
    "Wrapper",
    "canonical_json",
    "capped_reply",
    "endpoint_of",
]

Phase = Literal["forward", "backward", "optimizer", "evaluation", "edges", "teacher"]
# The phases every run reports (zero when unused), in the order a training step runs them.
PHASES: tuple[Phase, ...] = ("forward", "backward", "optimizer", "evaluation")
# Every phase: `PHASES` and those reported only when used ("edges": scoring the graphs
# sampled by edge optimization of a composite graph; "teacher": the teacher model answering
# the output node for demonstrations, `semgrad.optim.demos.ateach`).
ALL_PHASES: tuple[Phase, ...] = (*PHASES, "edges", "teacher")

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True)
class Message:
    role: Role
    content: str


@dataclass(frozen=True)
class Request:
    """One chat completion request.

    `node` and `phase` say who asked and why; they are metering tags, not part of what the
    model sees, so they are not part of the cache key.
    """

    messages: tuple[Message, ...]
    temperature: float = 0.0
    max_tokens: int = 512
    top_p: float = 1.0
    seed: int = 0
    stop: tuple[str, ...] = ()
    # Distinguishes repeated samples of the same request at temperature > 0.
    sample_index: int = 0
    node: str = ""
    phase: Phase = "forward"

    def __post_init__(self) -> None:
        if not self.messages:
            raise ValueError("a Request needs at least one message")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")

    @classmethod
    def chat(cls, user: str, *, system: str | None = None, **kwargs: Any) -> Request:
        msgs: list[Message] = []
        if system:
            msgs.append(Message("system", system))
        msgs.append(Message("user", user))
        return cls(messages=tuple(msgs), **kwargs)

    @property
    def sampling_seed(self) -> int:
        """The seed to send: repeated samples (temperature > 0) each get their own."""
        return self.seed + self.sample_index if self.temperature > 0 else self.seed

    def key_fields(
        self, model: str, *, endpoint: str | None = None, namespace: str | None = None
    ) -> dict[str, Any]:
        """Everything that can change the reply, as plain JSON-able data.

        `endpoint` is the server the request goes to (None for the embedded model, whose
        keys then stay as they always were); a `namespace` replaces it (see the module doc).
        """
        fields: dict[str, Any] = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "top_p": self.top_p,
            # Greedy decoding (temperature 0) ignores the seed, so runs with different seeds
            # share their temperature-0 calls (a seeded benchmark re-scores the same
            # initial graph once, not once per seed).
            "seed": self.seed if self.temperature > 0 else 0,
            "stop": list(self.stop),
        }
        # At temperature 0 repeated samples are the same sample: one cache entry serves all.
        fields["sample_index"] = self.sample_index if self.temperature > 0 else 0
        if endpoint is not None:
            if namespace:
                fields["namespace"] = namespace
            else:
                fields["endpoint"] = endpoint
        return fields

    def cache_key(
        self, model: str, *, endpoint: str | None = None, namespace: str | None = None
    ) -> str:
        fields = self.key_fields(model, endpoint=endpoint, namespace=namespace)
        return hashlib.sha256(canonical_json(fields).encode()).hexdigest()


@dataclass(frozen=True)
class Usage:
    """Tokens of one call (or a sum of calls). `cached_prompt_tokens` is the part of the
    prompt the server reused from its prompt cache instead of processing it, when the
    server says (llama.cpp's ``timings.cache_n``, OpenAI's
    ``usage.prompt_tokens_details.cached_tokens``); 0 otherwise."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def processed_prompt_tokens(self) -> int:
        """The prompt tokens the model actually computed: those not reused from its cache."""
        return self.prompt_tokens - self.cached_prompt_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.cached_prompt_tokens + other.cached_prompt_tokens,
        )


# The longest reply text anything reads. A longer one (a server that ignores max_tokens, or
# a hostile one sending megabytes) is cut here, before any parser, metric, prompt, cache
# row or report sees it, and marked finish_reason "length", as if max_tokens had cut it.
# 250,000 characters is over 7 characters per token at the largest max_tokens a spec
# allows (32,768): no reply a request asked for is ever cut.
MAX_REPLY_CHARS = 250_000


def capped_reply(text: str, finish_reason: str) -> tuple[str, str]:
    """`text` and `finish_reason`, or the first `MAX_REPLY_CHARS` of a longer text and
    "length"."""
    if len(text) <= MAX_REPLY_CHARS:
        return text, finish_reason
    return text[:MAX_REPLY_CHARS], "length"


@dataclass(frozen=True)
class Response:
    text: str
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    finish_reason: str = "stop"
    # True when served from the cache: no model was called and nothing was spent.
    cached: bool = False
    latency_s: float = 0.0

    def __post_init__(self) -> None:
        # Every reply, whichever client or cache row made it, is read up to the cap.
        text, finish_reason = capped_reply(self.text, self.finish_reason)
        if text is not self.text:
            object.__setattr__(self, "text", text)
            object.__setattr__(self, "finish_reason", finish_reason)


@runtime_checkable
class LLM(Protocol):
    """A model client. `model` names the model for cache keys and reports.

    A client that talks to a server also has an `endpoint` attribute (a string naming the
    server, read by `endpoint_of`), which the response cache keys by; it is optional, so
    in-process clients (the embedded model, the fakes) need not define it.
    """

    @property
    def model(self) -> str: ...

    async def complete(self, request: Request) -> Response: ...


class Wrapper:
    """Base of the layers that wrap an `LLM` and are one (cache, retry, limit, budget, meter):
    it holds `inner` and delegates `model`, so a stack of wrappers keys the cache and the
    reports by the model underneath."""

    def __init__(self, inner: LLM) -> None:
        self._inner = inner

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def inner(self) -> LLM:
        return self._inner

    @property
    def endpoint(self) -> str | None:
        return endpoint_of(self._inner)


def endpoint_of(llm: LLM) -> str | None:
    """The server `llm` (or the client under its wrappers) sends requests to, or None for a
    model in this process."""
    endpoint = getattr(llm, "endpoint", None)
    return endpoint if isinstance(endpoint, str) and endpoint else None


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no whitespace: the same bytes in every process."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
