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


def _penguins_as(project: Path, name: str, **to_csv: object) -> str:
    """The penguins written as data/external/NAME: CSV with `to_csv` options, or Excel for a .xlsx name."""
    import palmerpenguins

    path = project / "data" / "external" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = palmerpenguins.load_penguins()
    if name.endswith(".xlsx"):
        frame.to_excel(path, sheet_name="penguins", index=False)
    else:
        frame.to_csv(path, index=False, **to_csv)
    return f"data/external/{name}"


def _with_text(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype({"body_mass_g": object})
    frame.loc[7, "body_mass_g"] = "4kg"
    return frame


def _latin1_csv(project: Path) -> str:
    """The penguins as data/external/latin.csv in Latin-1, with an accent UTF-8 cannot read."""
    source = _penguins_as(project, "latin.csv")
    path = project / source
    path.write_bytes(path.read_bytes().replace(b"Torgersen", "Torgersén".encode("latin-1"), 1))
    return source


def _dated_csv() -> str:
    rows = [
        f"2021-{month:02d}-{day:02d},{kind},{value}"
        for month in range(1, 5)
        for day in range(1, 9)
        for kind, value in (("a", 1), ("b", 2))
    ]
    return "day,species,size\n" + "\n".join(rows) + "\n"


def _rename_section(project: Path, old: str, new: str) -> dict:
    path = project / "params.yaml"
    path.write_text(path.read_text().replace(f"\n{old}:\n", f"\n{new}:\n"))
    return {}


def _sqlite(project: Path) -> None:
    with sqlite3.connect(project / "penguins.db") as connection:
        connection.execute("CREATE TABLE t (a INTEGER)")


CASES: dict[str, tuple[Callable[[Path], dict], str, str | tuple[str, ...]]] = {
    # name: (how to break the project -> params to set, the stage that refuses it, what the message says: one or more parts)
    "source file missing": (
        lambda p: {"data.source": "data/nope.csv"},
        "ingest",
        "file 'data/nope.csv' not found",
    ),
    "empty file": (lambda p: {"data.source": _write(p, "empty.csv", "")}, "ingest", "is empty"),
    "header only": (
        lambda p: {"data.source": _write(p, "header.csv", "a,b,species\n")},
        "ingest",
        "has a header but no data rows",
    ),
    "binary file": (
        lambda p: {"data.source": _write(p, "binary.csv", bytes(range(256)) * 8)},
        "ingest",
        "looks binary",
    ),
    "ragged rows": (
        lambda p: {"data.source": _write(p, "ragged.csv", "a,b,species\n1,2,x\n3,4,y,5\n")},
        "ingest",
        "ragged rows",
    ),
    "target column missing": (lambda p: {"data.target": "specie"}, "prepare", "column 'specie' not found"),
    "target all missing": (
        lambda p: {"data.source": _penguins_csv(p, "no_target.csv", lambda f: f.assign(species=None))},
        "prepare",
        "missing in all 344 rows",
    ),
    "single class": (
        lambda p: {"data.source": _penguins_csv(p, "one.csv", lambda f: f[f.species == "Adelie"])},
        "prepare",
        "has a single class ('Adelie')",
    ),
    "numeric column holding text": (
        lambda p: {"data.source": _penguins_csv(p, "text.csv", _with_text)},
        "prepare",
        "column 'body_mass_g' is numeric but holds text in 1 row(s): '4kg'",
    ),
    "unknown model name": (
        lambda p: {"train.model": "forest"},
        "tune",
        "train.model = 'forest' is not a known model",
    ),
    "search-space bounds reversed": (
        lambda p: {"tune.search_space.random_forest": {"max_depth": {"type": "int", "low": 16, "high": 2}}},
        "tune",
        "low (16) is greater than high (2); swap them",
    ),
    "semicolon CSV read with sep ','": (
        lambda p: {
            "data.source": _penguins_as(p, "semicolons.csv", sep=";"),
            "data.read_options": {"sep": ","},
        },
        "ingest",
        "semicolons.csv' was read as the one column 'species;island;bill_length_mm;",
    ),
    ".xlsx without the named sheet": (
        lambda p: {"data.source": _penguins_as(p, "penguins.xlsx"), "data.sheet": "2021"},
        "ingest",
        "data.sheet: sheet '2021' not found in file",
    ),
    "Latin-1 file read as UTF-8": (
        lambda p: {"data.source": _latin1_csv(p)},
        "ingest",
        (
            "latin.csv' is not utf-8 text (invalid continuation byte",
            "Hint: set data.read_options.encoding to the file's encoding",
        ),
    ),
    "date column that does not parse with its format": (
        lambda p: {
            "data.source": _write(p, "dated.csv", _dated_csv()),
            "data.read_options": {"parse_dates": {"day": "%d/%m/%Y"}},
        },
        "ingest",
        ("data.read_options.parse_dates: column 'day' of file", "'%d/%m/%Y'"),
    ),
    "read_options with an unknown key": (
        lambda p: {"data.read_options": {"delimiter": ";"}},
        "ingest",
        "unknown key 'data.read_options.delimiter'; allowed keys here: decimal, encoding, na_values, parse_dates, sep, thousands",
    ),
    "features.exclude naming a missing column": (
        lambda p: {"features.exclude": ["bill_lenght_mm"]},
        "prepare",
        "features.exclude: column 'bill_lenght_mm' not found; the columns are: island, bill_length_mm",
    ),
    "excluding every feature": (
        lambda p: {
            "features.exclude": [
                "island",
                "bill_length_mm",
                "bill_depth_mm",
                "flipper_length_mm",
                "body_mass_g",
                "sex",
                "year",
            ]
        },
        "prepare",
        "no feature columns are left of island, bill_length_mm",
    ),
    "params section typo (trian:)": (
        lambda p: _rename_section(p, "train", "trian"),
        "tune",
        "unknown section 'trian' (did you mean 'train'?); allowed sections: data, evaluate, features",
    ),
    "hyperparameter of another model": (
        lambda p: {
            "train.model": "hist_gradient_boosting",
            "train.hyperparameters.hist_gradient_boosting": {"n_estimators": 200},
        },
        "tune",
        "train.hyperparameters.hist_gradient_boosting.n_estimators is not a hyperparameter of hist_gradient_boosting",
    ),
    "old flat params layout": (
        lambda p: {"train.n_estimators": 300},
        "tune",
        "params.yaml: train/tune.search_space use the old flat layout: move train.n_estimators -> train.hyperparameters.random_forest.n_estimators",
    ),
    "test_size outside (0, 1)": (
        lambda p: {"prepare.test_size": 1.5},
        "prepare",
        "prepare.test_size = 1.5: Input should be less than 1",
    ),
    "SQL URL that cannot connect": (
        lambda p: (
            _sqlite(p),
            {"data.source": "sqlite:///no/such/dir/db.sqlite", "data.query": "SELECT * FROM t"},
        )[1],
        "ingest",
        "cannot connect",
    ),
}

# Refused by the `check` stage (mlops-nb check on the whole of params.yaml), which DVC runs first when params.yaml changed.
REFUSED_BEFORE_START = {
    "read_options with an unknown key",
    "unknown model name",
    "search-space bounds reversed",
    "test_size outside (0, 1)",
    "params section typo (trian:)",
    "hyperparameter of another model",
    "old flat params layout",
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
    for fragment in (message,) if isinstance(message, str) else message:
        assert fragment in error, (fragment, error)
    assert "Traceback" not in result.stderr
    if (
        case in REFUSED_BEFORE_START
    ):  # dvc.yaml's first stage, `mlops-nb check`, before DVC removes any output
        assert error.startswith("error: params.yaml: "), error
        assert "Running stage 'check'" in result.stdout and "Running stage 'ingest'" not in result.stdout
        assert (fresh_run / "models" / "best_params.json").is_file() and (
            fresh_run / "reports" / f"{stage}.ipynb"
        ).is_file()
    else:
        assert f"stage '{stage}' failed: nbs/pipelines/{stage}.ipynb, cell In[" in error
        assert (fresh_run / "reports" / f"{stage}.failed.ipynb").is_file()
        assert "dvc checkout" in error
    assert _fingerprint(fresh_run) == before, "the previous model and metrics must be untouched"


@pytest.mark.slow
def test_semicolon_csv_without_options_is_detected_and_reported(fresh_run: Path) -> None:
    """The other way a semicolon CSV is handled at ingest: with no `read_options`, its separator is detected, said in
    the ingest report, and the columns come out right."""
    import palmerpenguins

    set_params(fresh_run, **{"data.source": _penguins_as(fresh_run, "semicolons.csv", sep=";")})
    run(["dvc", "repro", "ingest"], fresh_run)
    report = (fresh_run / "reports" / "ingest.ipynb").read_text()
    assert "file semicolons.csv: separator ';' detected (data.read_options.sep sets it)" in report
    ingested = pd.read_parquet(fresh_run / "data" / "raw" / "data.parquet")
    assert list(ingested.columns) == list(palmerpenguins.load_penguins().columns) and len(ingested) == 344
