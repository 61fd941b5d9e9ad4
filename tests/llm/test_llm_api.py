"""`semgrad.llm` exports what it says, and every wrapper is itself an `LLM`."""

from __future__ import annotations

import inspect
from pathlib import Path

import semgrad.llm
from semgrad.llm import (
    LLM,
    Cache,
    CachedLLM,
    EchoLLM,
    LimitedLLM,
    Meter,
    MeteredLLM,
    OpenAICompatible,
    RetryingLLM,
    ScriptedLLM,
)


def test_all_names_exist_once() -> None:
    names = semgrad.llm.__all__
    assert [name for name in names if not hasattr(semgrad.llm, name)] == []
    assert len(set(names)) == len(names)
    imported = {
        name
        for name, value in vars(semgrad.llm).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert imported - set(names) == set()  # nothing imported into the package is hidden


def test_every_client_and_wrapper_is_an_llm(tmp_path: Path) -> None:
    echo = EchoLLM(model="m")
    with Cache(tmp_path / "c.sqlite") as cache:
        llms = [
            echo,
            ScriptedLLM([]),
            OpenAICompatible("http://127.0.0.1:1/v1", "m"),
            CachedLLM(echo, cache),
            RetryingLLM(echo),
            LimitedLLM(echo, 2),
            MeteredLLM(echo, Meter()),
        ]
        for llm in llms:
            assert isinstance(llm, LLM), llm
        assert {llm.model for llm in llms[3:]} == {"m"}
