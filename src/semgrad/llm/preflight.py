"""Pre-flight check of an OpenAI-compatible endpoint, before any work starts.

A wrong model name, a missing ``/v1`` or a refused key otherwise shows up as every
example failing, one by one. `preflight` asks the server once (``GET {base_url}/models``;
when that is not served, one 1-token chat completion) and raises `PreflightError`
(a `UserInputError`: the CLI exits 2) with a message naming the problem:

- 401/403: the server refused the API key in ``$ENV`` (or wants one);
- the model is not among the models the server lists (they are named), or a 404 for it;
- the server is unreachable, or answers something that is not the OpenAI API: the URL is
  named, with "is the server running? does the URL end in /v1?".

A server error (5xx) or a timeout on the check is not decided here: it is logged and the
run goes on, so a slow or briefly overloaded server is left to the retry policy.

`preflight_models` checks every role of a `[models]` config that names a server (once per
distinct server, model and key), before `semgrad optimize`, `resume` or `sg.fit` start.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import httpx

from semgrad.errors import UserInputError
from semgrad.llm.config import ModelConfig, ModelsConfig
from semgrad.llm.openai import _redact

__all__ = ["PreflightError", "model_listed", "preflight", "preflight_models"]

log = logging.getLogger(__name__)

_HINT = "Is the server running? Does the URL end in /v1 (e.g. http://127.0.0.1:8080/v1)?"


class PreflightError(UserInputError):
    """The endpoint cannot serve this run; the message says why and what to change."""

    def __init__(self, message: str, url: str) -> None:
        self.url = url
        super().__init__(message)


def model_listed(model: str, offered: Sequence[str]) -> bool:
    """Whether the server's list names `model`: exactly, as Ollama's ``NAME:latest``, or as
    the file name of a path-like id (llama.cpp lists ``models/foo.gguf``)."""
    for name in offered:
        stem = name.rsplit("/", 1)[-1].removesuffix(".gguf")
        if model in (name, stem) or name == f"{model}:latest":
            return True
    return False


def _key(api_key_env: str | None, url: str) -> str | None:
    if api_key_env is None:
        return None
    key = os.environ.get(api_key_env)
    if not key:
        raise PreflightError(
            f"the environment variable {api_key_env} is not set or is empty, and the API key "
            f"for {url} is read from it. Set it (export {api_key_env}=...) or drop "
            f"--api-key-env for a server that needs no key.",
            url,
        )
    return key


def _refused(status: int, url: str, api_key_env: str | None, body: str) -> PreflightError:
    if api_key_env:
        what = f"refused the API key in ${api_key_env}"
        fix = f"check the key in ${api_key_env} (and that it may use this model)"
    else:
        what = "requires an API key"
        fix = "pass --api-key-env NAME, the name of the environment variable holding it"
    return PreflightError(f"the server at {url} {what} (HTTP {status}: {body[:200]}); {fix}.", url)


def preflight(
    base_url: str,
    model: str,
    *,
    api_key_env: str | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> tuple[str, ...]:
    """Check that `base_url` is an OpenAI-compatible API that accepts the key and serves
    `model`; return the model ids it lists (empty when it has no ``/models``)."""
    root = base_url.rstrip("/")
    key = _key(api_key_env, root)
    headers = {"Accept": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    with httpx.Client(timeout=timeout, transport=transport) as client:
        try:
            reply = client.get(f"{root}/models", headers=headers)
            if reply.status_code == 404:
                return _probe(client, root, model, headers, api_key_env, key)
        except httpx.TimeoutException:
            log.warning("pre-flight: %s did not answer within %g s; going on", root, timeout)
            return ()
        except httpx.TransportError as exc:
            detail = _redact(str(exc) or type(exc).__name__, key)
            raise PreflightError(
                f"cannot reach the model server at {root} ({detail}). {_HINT}", root
            ) from None
    body = _redact(reply.text, key)
    if reply.status_code in (401, 403):
        raise _refused(reply.status_code, root, api_key_env, body)
    if reply.status_code >= 500:
        log.warning("pre-flight: GET %s/models answered HTTP %d; going on", root, reply.status_code)
        return ()
    offered = _model_ids(reply)
    if offered is None:
        raise PreflightError(
            f"the server at {root} answered GET /models with HTTP {reply.status_code} and "
            f"something that is not an OpenAI model list ({body[:120]!r}). {_HINT}",
            root,
        )
    if offered and not model_listed(model, offered):
        raise PreflightError(
            f"the server at {root} does not serve the model {model!r}; it offers: "
            f"{', '.join(offered[:20])}{' …' if len(offered) > 20 else ''}. Pass one of "
            f"these with --model.",
            root,
        )
    log.info("pre-flight: %s serves %s", root, model)
    return tuple(offered)


def preflight_models(
    models: ModelsConfig,
    *,
    roles: Sequence[str] | None = None,
    timeout: float = 10.0,
    transport: httpx.BaseTransport | None = None,
) -> None:
    """`preflight` each role of `models` that names a server (`base_url`), each distinct
    server, model and key once; embedded models are not checked here (a missing one fails
    when the stack is built), nor anything in ``cache_mode = "replay-only"``, which calls
    no model. The error names the roles the endpoint serves. `roles` defaults to every
    role (the teacher only when `[models] teacher` names its own model)."""
    if models.cache_mode == "replay-only":
        return
    if roles is None:
        roles = ("forward", "backward", "optimizer", *(("teacher",) if models.teacher else ()))
    checked: dict[tuple[str, str | None, str | None], list[str]] = {}
    for role in roles:
        spec: ModelConfig = models.role(role)
        if spec.base_url:
            checked.setdefault(spec.key(), []).append(role)
    for (model, base_url, api_key_env), used_by in checked.items():
        assert base_url is not None
        try:
            preflight(
                base_url, model, api_key_env=api_key_env, timeout=timeout, transport=transport
            )
        except PreflightError as exc:
            where = ", ".join(f"[models] {role}" for role in used_by)
            raise PreflightError(f"{where}: {exc}", exc.url) from None


def _model_ids(reply: httpx.Response) -> list[str] | None:
    if not reply.is_success:
        return None
    try:
        data = reply.json()
    except ValueError:
        return None
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list):
        return None
    return [str(item["id"]) for item in items if isinstance(item, dict) and "id" in item]


def _probe(
    client: httpx.Client,
    root: str,
    model: str,
    headers: dict[str, str],
    api_key_env: str | None,
    key: str | None,
) -> tuple[str, ...]:
    """No ``/models``: one 1-token completion tells whether the API, key and model work."""
    body = {"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
    reply = client.post(f"{root}/chat/completions", json=body, headers=headers)
    text = _redact(reply.text, key)
    if reply.status_code in (401, 403):
        raise _refused(reply.status_code, root, api_key_env, text)
    if reply.status_code == 404:
        raise PreflightError(
            f"the server at {root} answered 404 to GET /models and to a chat completion for "
            f"model {model!r} ({text[:200]}). Is the model name right? {_HINT}",
            root,
        )
    if reply.status_code in (400, 422) and model in text:
        raise PreflightError(
            f"the server at {root} refused the model {model!r} (HTTP {reply.status_code}: "
            f"{text[:200]}); pass a model it serves with --model.",
            root,
        )
    if not reply.is_success:
        log.warning(
            "pre-flight: %s answered HTTP %d to a 1-token request; going on",
            root,
            reply.status_code,
        )
    return ()
