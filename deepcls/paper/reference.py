"""The reference report's experiments as data (a copy of its tables, shipped with the package).

``paper_tables.csv`` has one row per reported run: table, row, settings and the reported
highest train/test accuracy (percent; empty where the report gives none).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import pandas as pd

REPORT_TITLE = "Deeper Networks for Image Classification"

# Claims the report makes in prose, with the numbers it gives.
SE_BIRD_AS_AIRPLANE = {"without_se": 113, "with_se": 66}
STEM_BASELINE_TEST_ACC = 81.39


@lru_cache(maxsize=1)
def _paper_table() -> pd.DataFrame:
    with resources.files(__package__).joinpath("paper_tables.csv").open() as f:
        table = pd.read_csv(f, dtype={"variant": "string", "augmentation": "string"})
    table["variant"] = table["variant"].fillna("")
    return table


def paper_table(table: str | None = None) -> pd.DataFrame:
    """The reported rows, all or those of one table, as a fresh DataFrame."""
    frame = _paper_table()
    if table is not None:
        frame = frame[frame["table"] == table]
    return frame.reset_index(drop=True).copy()
