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
        ({"prepare.tset_size": 0.2}, "unknown key 'prepare.tset_size'; allowed keys here: drop_duplicates, seed, test_size"),
        ({"train.model": "forest"}, "train.model = 'forest' is not a known model"),
        ({"train.n_trees": 3}, "train.n_trees is not a hyperparameter of random_forest"),
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
