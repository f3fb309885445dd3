"""The tuning bad inputs of issue 12 through the real stage: a one-line error naming the key, a non-zero exit,
the previous best_params.json and model untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from conftest import run, set_params

pytestmark = pytest.mark.slow
GUARDED = ("models/best_params.json", "models/model.skops", "models/card.json")
SPACE = {
    "max_depth": {"type": "int", "low": 2, "high": 16},
    "min_samples_leaf": {"type": "int", "low": 1, "high": 10},
}

CASES: dict[str, tuple[dict, str]] = {
    "grid over a float range without a step": (
        {
            "tune.sampler": "grid",
            "tune.search_space.random_forest": {"max_features": {"type": "float", "low": 0.2, "high": 1.0}},
        },
        "tune.search_space.random_forest.max_features: the grid sampler cannot enumerate a float range without a step",
    ),
    "unknown sampler": (
        {"tune.sampler": "anneal"},
        "tune.sampler = 'anneal': Input should be 'tpe', 'random', 'grid' or 'cmaes'",
    ),
    "unknown pruner": (
        {"tune.pruner": "asha"},
        "tune.pruner = 'asha': Input should be 'median', 'hyperband' or 'none'",
    ),
    "no workers": ({"tune.workers": 0}, "tune.workers = 0: Input should be greater than or equal to 1"),
    "too many workers": (
        {"tune.workers": 1000},
        "tune.workers = 1000: Input should be less than or equal to 64",
    ),
    "cmaes over categorical choices": (
        {
            "tune.sampler": "cmaes",
            "tune.search_space.random_forest": {
                "criterion": {"type": "categorical", "choices": ["gini", "entropy"]}
            },
        },
        "tune.search_space.random_forest.criterion: tune.sampler = 'cmaes' needs a numeric range",
    ),
}


def _fingerprint(project: Path) -> dict[str, str]:
    return {name: hashlib.sha256((project / name).read_bytes()).hexdigest() for name in GUARDED}


def _fails_clearly(project: Path, message: str) -> None:
    result = run(["dvc", "repro"], project, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0], errors[0]
    # The first stage, `check`, refuses it before DVC removes any output (issue 13); no traceback either way.
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("case", list(CASES))
def test_bad_tuning_input(case: str, fresh_run: Path) -> None:
    changes, message = CASES[case]
    before = _fingerprint(fresh_run)
    set_params(fresh_run, **changes)
    check = run(["mlops-nb", "check"], fresh_run, check=False)
    assert check.returncode == 1 and message in check.stderr and check.stderr.count("\n") == 1, check.stderr
    _fails_clearly(fresh_run, message)
    assert _fingerprint(fresh_run) == before


def test_study_name_with_another_search_space_is_refused_unless_fresh(fresh_run: Path) -> None:
    set_params(fresh_run, **{"tune.study": "shared-name", "tune.n_trials": 3})
    run(["dvc", "repro", "tune"], fresh_run)
    before = _fingerprint(fresh_run)
    set_params(fresh_run, **{"tune.search_space.random_forest": {"max_depth": SPACE["max_depth"]}})
    _fails_clearly(
        fresh_run,
        "tune.study = 'shared-name' in embedded journal file (.optuna/study.journal) was made with another search space or data (differs in: search_space)",
    )
    assert _fingerprint(fresh_run) == before
    set_params(fresh_run, **{"tune.fresh": True})
    run(["dvc", "repro", "tune"], fresh_run)
    assert _fingerprint(fresh_run)["models/best_params.json"] != before["models/best_params.json"]
