"""Reading a run's result files for the report: a file that cannot be parsed becomes a one-cell
error table (the report still renders), long text cells are shortened; which column of a search's
``trials.csv`` holds its value and what that value is (:func:`value_column`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from effnas.nas.measure import ACCURACY, SCORE, measure_label, measure_name
from effnas.search_spaces.common.errors import first_line

#: Longest text cell shown in a table (block-string lists of whole networks get cut with "...").
MAX_CELL = 60


def read_csv(path: Path) -> pd.DataFrame:
    """The CSV with long text cells shortened; a one-cell error frame if it cannot be parsed."""
    try:
        df = pd.read_csv(path)
    except (pd.errors.EmptyDataError, pd.errors.ParserError) as e:
        return pd.DataFrame([{"error": f"cannot read {path.name}: {first_line(e)}"}])
    for col in df.columns:
        if df[col].dtype == object or pd.api.types.is_string_dtype(df[col]):
            df[col] = df[col].map(lambda v: v if not isinstance(v, str) or len(v) <= MAX_CELL
                                  else v[:MAX_CELL - 3] + "...")
    return df


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        return {"error": f"cannot read {path.name}: {e}"}
    return data if isinstance(data, dict) else {"value": data}


def value_column(columns: Iterable[str], info: dict[str, Any], config: dict[str, Any]) -> tuple[str, str, str]:
    """The column of ``trials.csv`` (``columns``) holding the trials' value, its name (``accuracy`` or
    ``score``) and its axis label: as ``pareto.json`` (``info``) says; for a search written before it
    did, by the column, where a proxy or supernet estimator in the run's ``config`` makes the
    ``accuracy`` column what it was, a score."""
    if info.get("measure") in (ACCURACY, SCORE):
        m = str(info["measure"])
        return m, m, str(info.get("label") or m)
    if SCORE in columns:
        return SCORE, SCORE, SCORE
    estimator = str((config.get("search") or {}).get("estimator") or "train")
    name = measure_name({"estimator": estimator})
    return ACCURACY, name, measure_label({"estimator": estimator}) if name == SCORE else "validation accuracy"
