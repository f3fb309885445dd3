"""Shared fixtures: a temporary copy of the project as its own git + DVC repository, and a way to run commands in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# What a run produces, never copied into a fresh project.
_GENERATED = ("data/raw", "data/prepared", "models", "reports", "_docs", "_proc", ".venv", ".git", ".dvc/cache", ".dvc/tmp")


def command_env(**extra: str) -> dict[str, str]:
    """The environment the tests run commands with: the venv first on PATH, no analytics, no root override."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["MPLBACKEND"] = "Agg"
    env.pop("MLOPS_NB_ROOT", None)
    env.pop("MLOPS_NB_STAGE", None)
    env.update(extra)
    return env


def run(command: list[str] | str, cwd: Path, *, check: bool = True, timeout: int = 600, **extra_env: str) -> subprocess.CompletedProcess:
    """Run `command` in `cwd`; with `check`, fail the test showing its output when it exits non-zero."""
    result = subprocess.run(
        command, cwd=cwd, env=command_env(**extra_env), capture_output=True, text=True, timeout=timeout,
        shell=isinstance(command, str),
    )
    if check and result.returncode != 0:
        pytest.fail(f"{command} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
    return result


def _tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return [name for name in listed if not name.startswith(_GENERATED) and (REPO_ROOT / name).is_file()]


def make_project(destination: Path) -> Path:
    """A fresh copy of the project's sources (no run outputs) at `destination`, committed in a new git repository."""
    for name in _tracked_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    # A fresh project has no lock file and no metrics of an earlier run.
    (destination / "dvc.lock").unlink(missing_ok=True)
    run(["git", "init", "-q", "-b", "main"], destination)
    run(["git", "config", "user.email", "tests@mlops-nb.invalid"], destination)
    run(["git", "config", "user.name", "mlops_nb tests"], destination)
    run(["git", "add", "-A"], destination)
    run(["git", "commit", "-qm", "project"], destination)
    return destination


def set_params(project: Path, **changes: object) -> None:
    """Set dotted keys of the project's params.yaml, e.g. `set_params(p, **{"data.source": "x.csv"})`."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        section, key = dotted.split(".", 1)
        params.setdefault(section, {})[key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


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
