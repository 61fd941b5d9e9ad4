"""Examples, deterministic splits, dataset loaders and tasks."""

from semgrad.data.arith import ARITH_SIZES, arith_split_of, generate_arith
from semgrad.data.example import Example
from semgrad.data.files import load_file, load_file_task
from semgrad.data.loaders import (
    DATA_DIR_ENV,
    LIAR_LABELS,
    bbh_target_format,
    gsm8k_target,
    liar_question,
    list_bbh_tasks,
    load_bbh,
    load_gsm8k,
    load_hf,
    load_liar,
    resolve_data_dir,
)
from semgrad.data.splits import assert_disjoint, split, split_sizes
from semgrad.data.tasks import BBH_SIZES, GSM8K_VAL_SIZE, Task, list_tasks, load_task

__all__ = [
    "ARITH_SIZES",
    "BBH_SIZES",
    "DATA_DIR_ENV",
    "GSM8K_VAL_SIZE",
    "LIAR_LABELS",
    "Example",
    "Task",
    "arith_split_of",
    "assert_disjoint",
    "bbh_target_format",
    "generate_arith",
    "gsm8k_target",
    "liar_question",
    "list_bbh_tasks",
    "list_tasks",
    "load_bbh",
    "load_file",
    "load_file_task",
    "load_gsm8k",
    "load_hf",
    "load_liar",
    "load_task",
    "resolve_data_dir",
    "split",
    "split_sizes",
]
