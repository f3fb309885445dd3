"""A fresh clone of a committed run reproduces its own lock file: every stage output is a function of its inputs
(no clock time, no HEAD commit, deterministic archives), so `make run`'s pipeline leaves `git status` clean.

This is also the test that identical inputs give byte-identical outputs, executed notebooks included: `dvc.lock`
records the md5 of every output, and the clone reruns every stage from nothing in another folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import run

pytestmark = pytest.mark.slow


def test_fresh_clone_of_a_committed_run_reproduces_its_lock_file(
    pipeline_project: Path, tmp_path: Path
) -> None:
    assert run(["git", "status", "--porcelain"], pipeline_project).stdout == ""
    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(pipeline_project), str(clone)], tmp_path)
    assert not (
        clone / ".optuna"
    ).exists()  # the tuning journal is git-ignored: the clone's study starts afresh
    # What `make run` runs after setting up (the virtualenv is this one): the check, then the pipeline. The clone
    # has no DVC cache and no outputs, so every stage runs.
    run(["mlops-nb", "check"], clone)
    result = run(["dvc", "repro"], clone)
    assert "Running stage 'train'" in result.stdout
    status = run(["git", "status", "--porcelain"], clone).stdout
    diff = run(["git", "diff"], clone).stdout
    assert status == "", f"the fresh clone's run changed tracked files:\n{status}\n{diff[-4000:]}"
