"""The files of a run directory, written so that a crash never leaves half a file.

RUN_DIR/
  config.json        the validated config the run started from
  checkpoint.json    the state after the last completed step (atomic replace)
  history.jsonl      one `StepRecord` per completed step (semgrad.optim.records;
                     appended and fsynced; on resume, lines past the checkpoint's step
                     are dropped)
  best_graph.json    the best accepted graph, as a plain graph spec (for a composite
                     graph: the swarm spec with the learned edge logits)
  realised_graph.json  composite graphs only: best_graph.json's deterministic realisation
  summary.json       a `RunSummary`: initial and final scores, the cost by phase and
                     every request sent (budget.json's count)
  budget.json        the budget ledger: every request charged before it was sent, over
                     every process of the run (semgrad.llm.budget; written ahead of each
                     request, so a kill never loses a request it sent)
  data/              the examples (train/gate/test .jsonl) of a run started by
                     semgrad.fit (a config's ``file:`` splits)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from semgrad.atomic import atomic_write_json, atomic_write_text
from semgrad.errors import DataError
from semgrad.optim.records import StepRecord, read_history, read_history_rows
from semgrad.userfiles import parse_json, read_user_text, shown

__all__ = ["RunFiles", "atomic_write_json", "atomic_write_text"]


class RunFiles:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def checkpoint(self) -> Path:
        return self.root / "checkpoint.json"

    @property
    def history(self) -> Path:
        return self.root / "history.jsonl"

    @property
    def initial_graph(self) -> Path:
        return self.root / "initial_graph.json"

    @property
    def best_graph(self) -> Path:
        return self.root / "best_graph.json"

    @property
    def realised_graph(self) -> Path:
        return self.root / "realised_graph.json"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"

    @property
    def budget(self) -> Path:
        return self.root / "budget.json"

    @property
    def report(self) -> Path:
        return self.root / "report.html"

    def read_json(self, path: Path) -> Any:
        """A run file's JSON; every failure is a `DataError` naming the file."""

        def error(message: str) -> DataError:
            return DataError(message, str(path))

        try:
            if self.root.exists() and not self.root.is_dir():
                raise error(
                    f"{shown(self.root)} is a file, not a run directory; pass the directory "
                    f"`semgrad optimize` wrote (runs/<name> or its --out)."
                )
            if not path.exists():
                raise error(
                    f"{shown(path)} is missing: {shown(self.root)} is not a semgrad run "
                    f"directory (or the run never completed its first step)"
                )
        except OSError as exc:
            raise error(f"cannot read {shown(path)} ({exc.strerror or exc})") from None
        what = "a file semgrad wrote; the file is damaged"
        return parse_json(
            read_user_text(path, what=what, error=error), where=str(path), what=what, error=error
        )

    def read_history(self) -> list[dict[str, Any]]:
        """history.jsonl as JSON objects (any version); `read_steps` for typed records."""
        return read_history_rows(self.history)

    def read_steps(self) -> list[StepRecord]:
        """history.jsonl as `StepRecord`s (any version)."""
        return read_history(self.history)

    def truncate_history(self, steps: int) -> None:
        """Keep only the records of steps < `steps` (those the checkpoint includes)."""
        rows = [r for r in self.read_history() if int(r.get("step", -1)) < steps]
        atomic_write_text(
            self.history, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        )
