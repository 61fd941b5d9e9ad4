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
    │   ├── MalformedResponseError     .raw  (the server answered something that is not a completion)
    │   ├── RetryExhaustedError        .attempts, .last_error
    │   └── CacheMissError             .key  (replay-only cache without the entry)
    ├── BudgetExceededError            .resource, .limit, .spent
    └── NodeError                      .node, .example_id  (a node failed during a forward pass)

Every message says what happened, what was expected, and how to fix it.
"""

from __future__ import annotations

__all__ = [
    "BudgetExceededError",
    "CacheMissError",
    "ChecksumMismatchError",
    "ConfigError",
    "CycleError",
    "DataError",
    "DuplicateNameError",
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


class UserInputError(SemgradError):
    """Something the user gave us is wrong; the message tells them how to fix it."""


class GraphError(UserInputError):
    """A graph cannot be built as specified."""


class CycleError(GraphError):
    def __init__(self, cycle: list[str]) -> None:
        self.cycle = list(cycle)
        path = " -> ".join([*self.cycle, self.cycle[0]]) if self.cycle else "?"
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
            f"node {node!r} refers to {reference!r}, which is neither a graph input nor a node. "
            f"Known names: {', '.join(self.known) or '(none)'}."
        )


class DuplicateNameError(GraphError):
    def __init__(self, name: str, what: str = "node") -> None:
        self.name = name
        super().__init__(
            f"the name {name!r} is used twice ({what}); every input and node needs a unique name."
        )


class SpecError(UserInputError):
    def __init__(self, message: str, path: str | None = None) -> None:
        self.path = path
        where = f"{path}: " if path else ""
        super().__init__(f"{where}{message}")


class ConfigError(UserInputError):
    def __init__(self, message: str, key: str | None = None) -> None:
        self.key = key
        where = f"config key {key!r}: " if key else ""
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
        super().__init__(f"the model server at {url or '?'} answered HTTP {status}: {body[:300]}")

    @property
    def retryable(self) -> bool:
        return self.status == 429 or self.status >= 500


class MalformedResponseError(LLMError):
    def __init__(self, message: str, raw: str = "") -> None:
        self.raw = raw
        super().__init__(f"{message}; raw response: {raw[:300]!r}")


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
