"""One exception hierarchy for all of semgrad.

    SemgradError
    ├── UserInputError                 (bad input from the user; the CLI exits 2 with the message)
    │   ├── GraphError                 (a graph spec that cannot be built)
    │   │   ├── CycleError             .cycle: the node names on the cycle
    │   │   ├── UnknownReferenceError  .node, .reference
    │   │   └── DuplicateNameError     .name
    │   ├── SpecError                  (JSON that is not a graph spec: .path)
    │   ├── ConfigError                (a config value that is wrong: .key)
    │   ├── DataError                  (a data directory or file that cannot be read: .path)
    │   └── ModelError                 (the embedded model is missing or corrupt)
    │       ├── ModelNotInstalledError .model
    │       └── ChecksumMismatchError  .path, .expected, .actual
    ├── LLMError                       (talking to a model failed)
    │   ├── LLMConnectionError         .url  (server unreachable)
    │   ├── LLMTimeoutError            .url
    │   ├── LLMHTTPError               .status, .retry_after, .body
    │   │   └── FatalHTTPError         (401, 403, 404: also a UserInputError; stops the run)
    │   ├── MalformedResponseError     .raw  (the server answered something that is not a completion)
    │   ├── RetryExhaustedError        .attempts, .last_error
    │   └── CacheMissError             .key  (replay-only cache without the entry)
    ├── BudgetExceededError            .resource, .limit, .spent
    └── NodeError                      .node, .example_id  (a node failed during a forward pass)

Every message says what happened, what was expected, and how to fix it, in one paragraph:
values echoed from the input are shortened (`semgrad.text.shorten`) and the whole message is
capped at `semgrad.text.MAX_MESSAGE_CHARS` characters.
"""

from __future__ import annotations

from semgrad.text import MAX_MESSAGE_CHARS, shorten

__all__ = [
    "BudgetExceededError",
    "CacheMissError",
    "ChecksumMismatchError",
    "ConfigError",
    "CycleError",
    "DataError",
    "DuplicateNameError",
    "FatalHTTPError",
    "GraphError",
    "LLMConnectionError",
    "LLMError",
    "LLMHTTPError",
    "LLMTimeoutError",
    "MalformedResponseError",
    "ModelError",
    "ModelNotInstalledError",
    "NodeError",
    "RetryExhaustedError",
    "SemgradError",
    "SpecError",
    "UnknownReferenceError",
    "UserInputError",
]


class SemgradError(Exception):
    """Root of every error semgrad raises on purpose."""

    def __init__(self, *args: object) -> None:
        # One readable paragraph, however long the input it echoes.
        if len(args) == 1 and isinstance(args[0], str):
            args = (shorten(args[0], MAX_MESSAGE_CHARS),)
        super().__init__(*args)


class UserInputError(SemgradError):
    """Something the user gave us is wrong; the message tells them how to fix it."""


class GraphError(UserInputError):
    """A graph cannot be built as specified."""


class CycleError(GraphError):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = list(cycle)
        path = " -> ".join([*self.cycle, self.cycle[0]]) if self.cycle else "?"
        path = shorten(path, 500)
        super().__init__(
            f"the graph has a cycle: {path}. A semgrad graph must be acyclic; "
            f"remove one of these edges (an entry of some node's 'inputs')."
        )


class UnknownReferenceError(GraphError):
    def __init__(self, node: str, reference: str, known: list[str]) -> None:
        self.node = node
        self.reference = reference
        self.known = list(known)
        super().__init__(
            f"node {shorten(repr(node))} refers to {shorten(repr(reference))}, which is neither "
            f"a graph input nor a node. "
            f"Known names: {shorten(', '.join(self.known), 500) or '(none)'}."
        )


class DuplicateNameError(GraphError):
    def __init__(self, name: str, what: str = "node") -> None:
        self.name = name
        super().__init__(
            f"the name {shorten(repr(name))} is used twice ({what}); every input and node needs "
            f"a unique name."
        )


class SpecError(UserInputError):
    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        where = f"{shorten(path)}: " if path else ""
        super().__init__(f"{where}{message}")


class ConfigError(UserInputError):
    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        where = f"config key {shorten(repr(key))}: " if key else ""
        super().__init__(f"{where}{message}")


class DataError(UserInputError):
    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        super().__init__(message)


class ModelError(UserInputError):
    """The embedded model cannot be used."""


class ModelNotInstalledError(ModelError):
    def __init__(self, model: str, detail: str = "") -> None:
        self.model = model
        extra = f" ({detail})" if detail else ""
        super().__init__(
            f"the embedded model {model!r} is not installed{extra}. "
            f"Install it with: semgrad models install {model}"
        )


class ChecksumMismatchError(ModelError):
    def __init__(self, path: str, expected: str, actual: str) -> None:
        self.path = path
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"the model file {path} has sha256 {actual}, expected {expected}. "
            f"The file is corrupt or not the model it claims to be; it was not used. "
            f"Reinstall it with: semgrad models install --force <model>"
        )


class LLMError(SemgradError):
    """A model call failed."""


class LLMConnectionError(LLMError):
    def __init__(self, url: str, detail: str) -> None:
        self.url = url
        super().__init__(
            f"cannot reach the model server at {url}: {detail}. "
            f"Check that the server is running and that --base-url is right."
        )


class LLMTimeoutError(LLMError):
    def __init__(self, url: str, timeout: float) -> None:
        self.url = url
        self.timeout = timeout
        super().__init__(f"the model server at {url} did not answer within {timeout:g} s.")


class LLMHTTPError(LLMError):
    def __init__(
        self, status: int, body: str, url: str = "", retry_after: float | None = None
    ) -> None:
        self.status = status
        self.body = body
        self.url = url
        self.retry_after = retry_after
        super().__init__(
            f"the model server at {shorten(url or '?')} answered HTTP {status}: "
            f"{shorten(body, 300)}"
        )

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


# What each status means for a user who cannot fix it by waiting.
_FATAL_HINTS = {
    401: "unauthorized: the server refused the API key. Check that the environment variable "
    "named by --api-key-env holds a valid key for this server",
    403: "forbidden: the API key is valid but may not use this model or endpoint. Check the "
    "key's permissions and the model name",
    404: "not found: the server does not know this model, or the URL is wrong. Check --model "
    "and that --base-url is the API root (usually ending in /v1)",
}


class FatalHTTPError(LLMHTTPError, UserInputError):
    """401, 403 or 404: every later call would fail the same way, so the run stops at once
    (the CLI exits 2) instead of recording each example as failed."""

    STATUSES = frozenset(_FATAL_HINTS)

    def __init__(self, status: int, body: str, url: str = "", model: str = "") -> None:
        super().__init__(status, body, url=url)
        which = f" (model {shorten(repr(model))})" if model else ""
        Exception.__init__(
            self,
            shorten(
                f"the model server at {shorten(url or '?')}{which} answered HTTP {status}, "
                f"{_FATAL_HINTS.get(status, 'a request error')}. The server said: "
                f"{shorten(body, 300)}",
                MAX_MESSAGE_CHARS,
            ),
        )

    @property
    def retryable(self) -> bool:
        return False


class MalformedResponseError(LLMError):
    """A reply that is not a completion. `retryable` when it came over a network (a proxy or
    an overloaded server may have cut or garbled the body: sending again may well work),
    not when a local model produced it (it would produce it again)."""

    def __init__(self, message: str, raw: str = "", *, retryable: bool = False) -> None:
        self.raw = raw
        self.retryable = retryable
        super().__init__(f"{message}; raw response: {shorten(repr(raw), 300)}")


class RetryExhaustedError(LLMError):
    def __init__(self, attempts: int, last_error: BaseException) -> None:
        self.attempts = attempts
        self.last_error = last_error
        super().__init__(f"gave up after {attempts} attempts; last error: {last_error}")


class CacheMissError(LLMError):
    def __init__(self, key: str) -> None:
        self.key = key
        super().__init__(
            f"the cache has no entry for request {key[:16]}… and the cache is in replay-only "
            f"mode, which never calls a model. Use mode 'read-write' to fill it."
        )


class BudgetExceededError(SemgradError):
    def __init__(self, resource: str, limit: int, spent: int) -> None:
        self.resource = resource
        self.limit = limit
        self.spent = spent
        super().__init__(
            f"budget for {resource} reached: {spent} of {limit} spent; the run stopped cleanly."
        )


class NodeError(SemgradError):
    def __init__(self, node: str, message: str, example_id: str | None = None) -> None:
        self.node = node
        self.example_id = example_id
        where = f" on example {example_id!r}" if example_id is not None else ""
        super().__init__(f"node {node!r} failed{where}: {message}")
