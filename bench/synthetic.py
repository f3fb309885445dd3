"""A synthetic classification data set for the large-data benchmark: 20 numeric and 3 categorical columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

N_NUMERIC = 20
CATEGORIES = {"region": 8, "channel": 5, "segment": 12}


def synthetic_frame(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """`rows` rows: `x00`..`x19` (float, 1% missing), three string categoricals, a 3-class string target `label`."""
    rng = np.random.default_rng(seed)
    numeric = rng.standard_normal((rows, N_NUMERIC))
    columns: dict[str, object] = {f"x{index:02d}": numeric[:, index] for index in range(N_NUMERIC)}
    score = numeric[:, :5] @ np.array([1.0, -0.8, 0.6, 0.4, -0.3])
    for name, n_categories in CATEGORIES.items():
        codes = rng.integers(0, n_categories, rows)
        score += (codes % 3 - 1) * 0.3
        columns[name] = pd.Categorical.from_codes(
            codes, [f"{name}_{code}" for code in range(n_categories)]
        ).astype(str)
    score += rng.normal(scale=0.8, size=rows)
    columns["label"] = np.array(["low", "mid", "high"])[
        np.digitize(score, np.quantile(score, [1 / 3, 2 / 3]))
    ]
    frame = pd.DataFrame(columns)
    # A few missing values, as real data has, so imputation does real work.
    missing = rng.random(rows) < 0.01
    frame.loc[missing, "x00"] = np.nan
    return frame


def write_synthetic(path: Path, rows: int, *, seed: int = 0) -> int:
    """Write the data set as Parquet to `path`; return its in-memory size in bytes (`memory_usage(deep=True)`)."""
    frame = synthetic_frame(rows, seed=seed)
    frame.to_parquet(path, index=False)
    # Measured as the pipeline reads it back, so the size matches what the stages hold in memory.
    return int(pd.read_parquet(path).memory_usage(deep=True).sum())
