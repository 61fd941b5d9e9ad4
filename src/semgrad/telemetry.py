"""OpenTelemetry spans for semgrad's work (optional: ``pip install 'semgrad[otel]'``).

    from semgrad import telemetry
    ctx = sg.RunContext(llms=..., tracer=telemetry.enable())   # or sg.fit(..., tracer=...)

`enable` returns a `Tracer` for a run context; nothing here imports OpenTelemetry until it
is called, and a context without a tracer (the default) costs one attribute check per
traced function. Spans, each tagged with ``semgrad.phase`` (and ``semgrad.node`` where one
node is concerned):

    semgrad.step        one optimization step (``semgrad.step``: its number)
      semgrad.forward   one example through the graph
        semgrad.node    one node
          chat MODEL    one model call (cache hits included, ``semgrad.cached``)
      semgrad.backward  the backward pass of a trace, or of a batch
      semgrad.proposal  the optimizer's proposals
      semgrad.gate      scoring a candidate on the gate set

A model call carries the GenAI semantic-convention attributes: ``gen_ai.operation.name``
("chat"), ``gen_ai.request.model``, the sampling parameters, ``gen_ai.response.
finish_reasons``, ``gen_ai.usage.input_tokens`` and ``gen_ai.usage.output_tokens``. Prompt
and reply text are recorded only with ``capture_content=True`` (as
``gen_ai.input.messages`` / ``gen_ai.output.messages``, JSON).

Spans go to the tracer provider given, else the global one: configure that as for any
OpenTelemetry app, e.g. with the SDK and an OTLP exporter (Jaeger, Arize Phoenix, MLflow
and Langfuse all receive OTLP), see the README's "Observability".
"""

from __future__ import annotations

import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from semgrad.errors import ConfigError
from semgrad.llm.types import LLM, Request, Response, Wrapper

__all__ = ["TracedLLM", "Tracer", "enable", "span", "traced"]

P = ParamSpec("P")
T = TypeVar("T")

AttributeValue = str | bool | int | float | list[str]


class Tracer:
    """semgrad's handle on an OpenTelemetry tracer: what a `RunContext` carries as `tracer`.

    Made by `enable`; `capture_content` says whether prompts and replies are recorded.
    """

    def __init__(self, otel_tracer: Any, *, capture_content: bool = False) -> None:
        self._tracer = otel_tracer
        self.capture_content = capture_content

    def __repr__(self) -> str:
        return f"Tracer(capture_content={self.capture_content})"

    @contextmanager
    def span(
        self,
        name: str,
        attributes: Mapping[str, AttributeValue] | None = None,
        *,
        client: bool = False,
    ) -> Iterator[Any]:
        """A span around the block, current inside it; an exception marks it as an error."""
        from opentelemetry.trace import SpanKind

        kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
        with self._tracer.start_as_current_span(
            name, kind=kind, attributes=dict(attributes or {})
        ) as current:
            yield current

    def wrap(self, llm: LLM) -> LLM:
        """`llm` with a span around each of its calls."""
        return TracedLLM(llm, self)


def enable(tracer_provider: Any = None, *, capture_content: bool = False) -> Tracer:
    """A `Tracer` on `tracer_provider` (an OpenTelemetry `TracerProvider`; default: the
    global one). Put it in a run context (``RunContext(..., tracer=...)``) or pass it to
    `semgrad.fit` (``tracer=``). Prompt and reply text are recorded only with
    `capture_content`."""
    try:
        from opentelemetry import trace
    except ImportError:
        raise ConfigError(
            "semgrad.telemetry needs OpenTelemetry: pip install 'semgrad[otel]' (the "
            "opentelemetry-api and opentelemetry-sdk packages)",
            key="telemetry",
        ) from None
    provider = tracer_provider if tracer_provider is not None else trace.get_tracer_provider()
    return Tracer(provider.get_tracer("semgrad"), capture_content=capture_content)


class _NoSpan:
    """The span of a context without a tracer: nothing, in sync and async `with` alike."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *_exc: object) -> None:
        return None


_NO_SPAN = _NoSpan()


class _Span:
    def __init__(self, tracer: Tracer, name: str, attributes: Mapping[str, AttributeValue]) -> None:
        self._cm = tracer.span(name, attributes)

    def __enter__(self) -> None:
        self._cm.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)

    async def __aenter__(self) -> None:
        self._cm.__enter__()

    async def __aexit__(self, *exc: Any) -> None:
        self._cm.__exit__(*exc)


def span(tracer: Tracer | None, name: str, **attributes: AttributeValue) -> _Span | _NoSpan:
    """``with span(ctx.tracer, "semgrad.node", **{"semgrad.node": name}):`` (or ``async
    with``): a span when the context has a tracer, else nothing at all."""
    if tracer is None:
        return _NO_SPAN
    return _Span(tracer, name, attributes)


def traced(
    name: str, attributes: Callable[..., Mapping[str, AttributeValue]] | None = None
) -> Callable[[Callable[P, Awaitable[T]]], Callable[P, Coroutine[Any, Any, T]]]:
    """Decorate an async function or method so that each call is a span named `name`.

    The tracer is the run context's: the function's ``ctx`` argument, else ``self.ctx``
    of a method. ``semgrad.phase`` is the context's phase; `attributes`, called with the
    function's arguments, adds more (e.g. ``lambda self: {"semgrad.step": self.step}``).
    """

    def decorate(fn: Callable[P, Awaitable[T]]) -> Callable[P, Coroutine[Any, Any, T]]:
        signature = inspect.signature(fn)
        names = list(signature.parameters)
        ctx_at = names.index("ctx") if "ctx" in names else None
        if ctx_at is None and names[:1] != ["self"]:
            raise TypeError(f"@traced needs a ctx parameter or a method: {fn.__qualname__}")

        def context_of(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
            if ctx_at is None:
                return getattr(args[0], "ctx", None)
            return kwargs["ctx"] if "ctx" in kwargs else args[ctx_at]

        @functools.wraps(fn)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
            ctx = context_of(args, kwargs)
            tracer: Tracer | None = getattr(ctx, "tracer", None)
            if tracer is None:
                return await fn(*args, **kwargs)
            attrs: dict[str, AttributeValue] = {"semgrad.phase": str(ctx.phase)}
            if attributes is not None:
                attrs.update(attributes(*args, **kwargs))
            with tracer.span(name, attrs):
                return await fn(*args, **kwargs)

        return wrapper

    return decorate


class TracedLLM(Wrapper):
    """An `LLM` whose every call is a GenAI client span (see the module doc)."""

    def __init__(self, inner: LLM, tracer: Tracer) -> None:
        super().__init__(inner)
        self._tracer = tracer

    def __repr__(self) -> str:
        return f"TracedLLM({self._inner!r})"

    async def complete(self, request: Request) -> Response:
        model = self._inner.model
        attrs: dict[str, AttributeValue] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.request.model": model,
            "gen_ai.request.temperature": request.temperature,
            "gen_ai.request.max_tokens": request.max_tokens,
            "gen_ai.request.top_p": request.top_p,
            "gen_ai.request.seed": request.sampling_seed,
            "semgrad.phase": request.phase,
            "semgrad.node": request.node,
        }
        if self._tracer.capture_content:
            attrs["gen_ai.input.messages"] = json.dumps(
                [{"role": m.role, "content": m.content} for m in request.messages],
                ensure_ascii=False,
            )
        with self._tracer.span(f"chat {model}", attrs, client=True) as current:
            response = await self._inner.complete(request)
            current.set_attribute("gen_ai.response.model", response.model or model)
            current.set_attribute("gen_ai.response.finish_reasons", [response.finish_reason])
            current.set_attribute("gen_ai.usage.input_tokens", response.usage.prompt_tokens)
            current.set_attribute("gen_ai.usage.output_tokens", response.usage.completion_tokens)
            current.set_attribute("semgrad.cached", response.cached)
            if self._tracer.capture_content:
                current.set_attribute(
                    "gen_ai.output.messages",
                    json.dumps(
                        [{"role": "assistant", "content": response.text}], ensure_ascii=False
                    ),
                )
        return response
