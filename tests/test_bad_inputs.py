"""Every bad input of the foundation: a clear one-line error, a non-zero exit, the previous model and metrics intact."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from conftest import run, set_params

GUARDED = ("models/model.skops", "models/card.json", "reports/metrics.json")


def _fingerprint(project: Path) -> dict[str, str]:
    return {name: hashlib.sha256((project / name).read_bytes()).hexdigest() for name in GUARDED}


def _write(project: Path, name: str, content: bytes | str) -> str:
    path = project / "data" / "external" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return f"data/external/{name}"


def _penguins_csv(project: Path, name: str, change: Callable[[pd.DataFrame], pd.DataFrame]) -> str:
    import palmerpenguins

    frame = change(palmerpenguins.load_penguins())
    path = project / "data" / "external" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return f"data/external/{name}"


def _with_text(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"body_mass_g": object})
    frame.loc[7, "body_mass_g"] = "4kg"
    return frame


def _sqlite(project: Path) -> None:
    with sqlite3.connect(project / "penguins.db") as connection:
        connection.execute("CREATE TABLE t (a INTEGER)")


CASES: dict[str, tuple[Callable[[Path], dict], str, str]] = {
    # name: (how to break the project -> params to set, the stage that refuses it, what the message says)
    "source file missing": (lambda p: {"data.source": "data/nope.csv"}, "ingest", "file 'data/nope.csv' not found"),
    "empty file": (lambda p: {"data.source": _write(p, "empty.csv", "")}, "ingest", "is empty"),
    "header only": (lambda p: {"data.source": _write(p, "header.csv", "a,b,species\n")}, "ingest", "has a header but no data rows"),
    "binary file": (lambda p: {"data.source": _write(p, "binary.csv", bytes(range(256)) * 8)}, "ingest", "looks binary"),
    "ragged rows": (lambda p: {"data.source": _write(p, "ragged.csv", "a,b,species\n1,2,x\n3,4,y,5\n")}, "ingest", "ragged rows"),
    "target column missing": (lambda p: {"data.target": "specie"}, "prepare", "column 'specie' not found"),
    "target all missing": (
        lambda p: {"data.source": _penguins_csv(p, "no_target.csv", lambda f: f.assign(species=None))}, "prepare", "missing in all 344 rows"
    ),
    "single class": (
        lambda p: {"data.source": _penguins_csv(p, "one.csv", lambda f: f[f.species == "Adelie"])}, "prepare", "has a single class ('Adelie')"
    ),
    "numeric column holding text": (
        lambda p: {"data.source": _penguins_csv(p, "text.csv", _with_text)}, "prepare", "column 'body_mass_g' is numeric but holds text in 1 row(s): '4kg'"
    ),
    "unknown model name": (lambda p: {"train.model": "forest"}, "tune", "train.model = 'forest' is not a known model"),
    "search-space bounds reversed": (
        lambda p: {"tune.search_space": {"max_depth": {"type": "int", "low": 16, "high": 2}}}, "tune", "low (16) is greater than high (2); swap them"
    ),
    "test_size outside (0, 1)": (lambda p: {"prepare.test_size": 1.5}, "prepare", "prepare.test_size = 1.5: Input should be less than 1"),
    "SQL URL that cannot connect": (
        lambda p: (_sqlite(p), {"data.source": "sqlite:///no/such/dir/db.sqlite", "data.query": "SELECT * FROM t"})[1],
        "ingest",
        "cannot connect",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_clearly_and_keeps_the_model(case: str, fresh_run: Path) -> None:
    breaker, stage, message = CASES[case]
    before = _fingerprint(fresh_run)
    set_params(fresh_run, **breaker(fresh_run))
    result = run(["dvc", "repro"], fresh_run, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    error = errors[0]
    assert message in error
    assert f"stage '{stage}' failed: nbs/pipelines/{stage}.ipynb, cell In[" in error
    assert "dvc checkout" in error
    assert "Traceback" not in result.stderr
    assert _fingerprint(fresh_run) == before, "the previous model and metrics must be untouched"
    assert (fresh_run / "reports" / f"{stage}.failed.ipynb").is_file()
