"""Reading a run's result files for the report: a file that cannot be parsed becomes a one-cell
error table (the report still renders), long text cells are shortened."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

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
