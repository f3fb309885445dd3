"""Shared fixtures: a temporary copy of the project as its own git + DVC repository, and a way to run commands in it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# The project-copy helpers live in bench/project_copy.py (on pytest's `pythonpath`), shared with the benchmarks.
from project_copy import BIN, REPO_ROOT, command_env, edit_params, make_project, set_params, stage_names  # noqa: F401


def run(command: list[str] | str, cwd: Path, *, check: bool = True, timeout: int = 600, **extra_env: str) -> subprocess.CompletedProcess:
    """Run `command` in `cwd`; with `check`, fail the test showing its output when it exits non-zero."""
    result = subprocess.run(
        command, cwd=cwd, env=command_env(**extra_env), capture_output=True, text=True, timeout=timeout,
        shell=isinstance(command, str),
    )
    if check and result.returncode != 0:
        pytest.fail(f"{command} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
    return result


@pytest.fixture(scope="session")
def pipeline_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project, with the default pipeline run once by `dvc repro`. Tests that change it take `fresh_run` instead."""
    project = make_project(tmp_path_factory.mktemp("pipeline") / "project")
    run(["dvc", "repro"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "run the pipeline"], project)
    return project


@pytest.fixture
def fresh_run(pipeline_project: Path, tmp_path: Path) -> Path:
    """A private copy of `pipeline_project` (sources, outputs, DVC cache and git history) to change at will."""
    destination = tmp_path / "project"
    shutil.copytree(pipeline_project, destination, symlinks=True)
    return destination


@pytest.fixture
def fresh_project(tmp_path: Path) -> Path:
    """A fresh copy of the project's sources that has never run."""
    return make_project(tmp_path / "project")
