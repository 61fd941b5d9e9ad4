"""Reading the JSON form of a graph (`Graph.to_dict` / `to_json` write it), for the CLI
and run files.

The spec is validated with pydantic (unknown keys refused, types checked) and then by the
`Graph` constructor (names, references, cycles); both kinds of failure become a `SpecError`
or a `GraphError` whose message names the offending key or node.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

from semgrad.errors import SpecError
from semgrad.graph.core import (
    SPEC_VERSION,
    Demo,
    DemoParameter,
    FunctionNode,
    Graph,
    LLMNode,
    Node,
    Parameter,
)
from semgrad.userfiles import invalid_keys, read_user_text

__all__ = ["SPEC_VERSION", "graph_from_dict", "load_graph"]


class _Strict(BaseModel):
    # Unknown keys refused, and no type coercion: "96" or true is not a max_tokens.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class _DemoSpec(_Strict):
    inputs: dict[str, str]
    output: str


class _LLMNodeSpec(_Strict):
    type: Literal["llm"]
    name: str
    inputs: list[str]
    instruction: str
    role: str = "instruction"
    requires_grad: bool = True
    llm: str = "forward"
    max_tokens: int = Field(256, ge=1, le=32768)
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    demos: list[_DemoSpec] = []


# A built-in function's name, or an import path: dotted module names, ':', an attribute.
_FUNCTION_NAME = re.compile(r"[A-Za-z_]\w*|[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*")


class _FunctionNodeSpec(_Strict):
    type: Literal["function"]
    name: str
    inputs: list[str]
    fn: str

    @field_validator("fn")
    @classmethod
    def _function_name(cls, value: str) -> str:
        if len(value) > 500 or not _FUNCTION_NAME.fullmatch(value):
            raise ValueError(
                "must be a built-in function's name or an import path "
                "'package.module:function' (no relative or empty module names)"
            )
        return value


_NodeSpec = Annotated[_LLMNodeSpec | _FunctionNodeSpec, Field(discriminator="type")]


class _GraphSpec(_Strict):
    semgrad: int = SPEC_VERSION
    name: str = "graph"
    inputs: list[str]
    nodes: list[_NodeSpec]
    output: str


_adapter = TypeAdapter(_GraphSpec)


def _describe(err: ValidationError, model: type[BaseModel] = _GraphSpec) -> str:
    return "; ".join(f"{key}: {problem}" for key, problem in invalid_keys(err, model))


def graph_from_dict(data: Any, *, source: str | None = None) -> Graph:
    if not isinstance(data, dict):
        raise SpecError(
            f"a graph spec must be a JSON object with inputs, nodes and output, "
            f"got {type(data).__name__}",
            source,
        )
    kind = data.get("kind", "graph")
    if kind == "swarm":
        raise SpecError(
            'this is a composite graph ("kind": "swarm"), not a single graph; load it '
            "with semgrad.swarm.load_swarm (or semgrad.swarm.load_spec for either kind)",
            source,
        )
    if kind != "graph":
        raise SpecError(
            f'unknown spec kind {kind!r}; "kind" is "graph" (the default) or "swarm"', source
        )
    data = {k: v for k, v in data.items() if k != "kind"}
    try:
        spec = _adapter.validate_python(data)
    except ValidationError as err:
        raise SpecError(f"invalid graph spec: {_describe(err)}", source) from None
    if spec.semgrad != SPEC_VERSION:
        raise SpecError(
            f"graph spec version {spec.semgrad} is not supported (this semgrad reads version "
            f"{SPEC_VERSION})",
            source,
        )
    nodes: list[Node] = []
    for n in spec.nodes:
        if isinstance(n, _LLMNodeSpec):
            nodes.append(
                LLMNode(
                    name=n.name,
                    inputs=tuple(n.inputs),
                    instruction=Parameter(
                        n.instruction, role=n.role, requires_grad=n.requires_grad
                    ),
                    llm=n.llm,
                    max_tokens=n.max_tokens,
                    temperature=n.temperature,
                    demos=DemoParameter([Demo(d.inputs, d.output) for d in n.demos]),
                )
            )
        else:
            nodes.append(FunctionNode(name=n.name, inputs=tuple(n.inputs), fn=n.fn))
    return Graph(spec.inputs, nodes, spec.output, name=spec.name)


def load_graph(path: str | Path) -> Graph:
    """Read a graph spec from a JSON file, with errors that name the file and the problem."""
    data, source = read_spec_json(path)
    return graph_from_dict(data, source=source)


def parse_spec_json(text: str, source: str | None = None) -> Any:
    """JSON text of a spec -> plain data; a syntax error names its line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(
            f"invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}", source
        ) from None
    except RecursionError:
        raise SpecError(
            "the JSON nests arrays or objects too deeply to read; a spec is a few levels deep",
            source,
        ) from None


def read_spec_json(path: str | Path, *, what: str = "a graph spec") -> tuple[Any, str]:
    """Read a spec file's JSON; every failure is a `SpecError` naming the file."""
    p = Path(path)
    text = read_user_text(p, what=f"{what} (.json)", error=SpecError)
    return parse_spec_json(text, str(p)), str(p)
