"""The `mlops-nb` command as a user runs it: help everywhere, one-line errors, tracebacks only with --verbose."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import REPO_ROOT, run, set_params

SUBCOMMANDS = ["stage", "check", "metrics", "zoo"]


@pytest.mark.parametrize("arguments", [[], *[[name] for name in SUBCOMMANDS]])
def test_help(arguments: list[str]) -> None:
    result = run(["mlops-nb", *arguments, "--help"], REPO_ROOT)
    assert result.stdout.startswith("usage: mlops-nb")


def test_check_accepts_the_default_params() -> None:
    assert run(["mlops-nb", "check"], REPO_ROOT).stdout.strip().endswith("params.yaml: ok")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"prepare.tset_size": 0.2},
            "unknown key 'prepare.tset_size' (did you mean 'test_size'?); allowed keys here: drop_duplicates, seed, test_size",
        ),
        (
            {"trian.model": "ridge"},
            "unknown section 'trian' (did you mean 'train'?); allowed sections: data, evaluate, features",
        ),
        ({"train.model": "forest"}, "train.model = 'forest' is not a known model"),
        (
            {"train.hyperparameters.random_forest.n_trees": 3},
            "train.hyperparameters.random_forest.n_trees is not a hyperparameter of random_forest",
        ),
        (
            {"train.n_estimators": 3},
            "train/tune.search_space use the old flat layout: move train.n_estimators -> train.hyperparameters.random_forest.n_estimators",
        ),
        (
            {"tune.search_space.random_forest.learning_rate": {"type": "float", "low": 0.1, "high": 0.3}},
            "tune.search_space.random_forest.learning_rate is not a hyperparameter",
        ),
        ({"tune.metric": "acc"}, "tune.metric = 'acc' is not a scikit-learn scorer"),
        ({"data.task": "clustering"}, "data.task = 'clustering'"),
    ],
)
def test_check_names_the_bad_key(fresh_project: Path, changes: dict, message: str) -> None:
    set_params(fresh_project, **changes)
    result = run(["mlops-nb", "check"], fresh_project, check=False)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: ")
    assert message in result.stderr


def test_check_accepts_another_model_without_other_edits(fresh_project: Path) -> None:
    for model in ("hist_gradient_boosting", "extra_trees", "logistic_regression"):
        set_params(fresh_project, **{"train.model": model})
        assert run(["mlops-nb", "check"], fresh_project).stdout.strip().endswith("params.yaml: ok")


def test_stage_checks_the_whole_params_file_first(fresh_project: Path) -> None:
    set_params(fresh_project, **{"trian.model": "ridge"})
    result = run(["mlops-nb", "stage", "ingest"], fresh_project, check=False)
    assert result.returncode == 1
    assert (
        "error: stage 'ingest' did not start: params.yaml: unknown section 'trian' (did you mean 'train'?)"
        in result.stderr
    )
    assert (
        not (fresh_project / "reports" / "ingest.ipynb").exists()
        and not (fresh_project / "data" / "raw").exists()
    )


def test_verbose_shows_the_traceback(fresh_project: Path) -> None:
    set_params(fresh_project, **{"train.model": "forest"})
    result = run(["mlops-nb", "--verbose", "check"], fresh_project, check=False)
    assert result.returncode == 1 and "Traceback" in result.stderr


def test_unknown_stage_and_missing_run(fresh_project: Path) -> None:
    result = run(["mlops-nb", "stage", "deploy"], fresh_project, check=False)
    assert result.returncode == 1 and "dvc.yaml has no stage 'deploy'" in result.stderr
    result = run(["mlops-nb", "metrics"], fresh_project, check=False)
    assert result.returncode == 1 and "run the pipeline first" in result.stderr


def test_outside_a_project(tmp_path: Path) -> None:
    result = run(["mlops-nb", "check"], tmp_path, check=False)
    assert result.returncode == 1 and "no mlops_nb project" in result.stderr
