"""Temporary copies of the project, for the tests (tests/conftest.py) and the benchmarks (bench/*.py).

A copy holds the project's sources (tracked and untracked-but-not-ignored files, no run outputs) in a fresh git
repository with one commit. Both pytest (`pythonpath` in pyproject.toml) and the benchmark scripts (their own
folder) import this module by its name: `from project_copy import make_project`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# What a run produces, never copied into a fresh project.
GENERATED = (
    "data/raw",
    "data/prepared",
    "models",
    "reports",
    "_docs",
    "_proc",
    ".venv",
    ".git",
    ".dvc/cache",
    ".dvc/tmp",
)


def command_env(**extra: str) -> dict[str, str]:
    """The environment commands run with: the venv first on PATH, no analytics, no root override."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["DVC_NO_ANALYTICS"] = "1"
    env["MPLBACKEND"] = "Agg"
    env.pop("MLOPS_NB_ROOT", None)
    env.pop("MLOPS_NB_STAGE", None)
    env.update(extra)
    return env


def _git(project: Path, *arguments: str) -> None:
    subprocess.run(
        ["git", *arguments], cwd=project, env=command_env(), check=True, capture_output=True, text=True
    )


def _generated(name: str) -> bool:
    # By whole path components: `.gitignore` is a source even though `.git` is generated.
    return any(name == folder or name.startswith(f"{folder}/") for folder in GENERATED)


def source_files(root: Path = REPO_ROOT) -> list[str]:
    """The project's source files under `root`: tracked or untracked-but-not-ignored, without run outputs."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    return [name for name in listed if not _generated(name) and (root / name).is_file()]


def make_project(destination: Path) -> Path:
    """A fresh copy of the project's sources (no run outputs) at `destination`, committed in a new git repository."""
    for name in source_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    # A fresh project has no lock file and no metrics of an earlier run.
    (destination / "dvc.lock").unlink(missing_ok=True)
    _git(destination, "init", "-q", "-b", "main")
    _git(destination, "config", "user.email", "tests@mlops-nb.invalid")
    _git(destination, "config", "user.name", "mlops_nb tests")
    _git(destination, "add", "-A")
    _git(destination, "commit", "-qm", "project")
    return destination


def edit_params(project: Path, change: Callable[[dict[str, Any]], None]) -> None:
    """Apply `change` to the project's params.yaml, read as a dict, and write it back."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    change(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def set_params(project: Path, **changes: object) -> None:
    """Set dotted keys of the project's params.yaml, e.g. `set_params(p, **{"data.source": "x.csv"})`; each part
    of a key is one level (`train.hyperparameters.random_forest.n_estimators`)."""

    def apply(params: dict[str, Any]) -> None:
        for dotted, value in changes.items():
            *parents, key = dotted.split(".")
            node = params
            for part in parents:
                node = node.setdefault(part, {})
            node[key] = value

    edit_params(project, apply)


def stage_names(root: Path = REPO_ROOT) -> list[str]:
    """The pipeline's notebook stages (`mlops-nb stage NAME`) in `dvc.yaml`'s order: not the `check` stage."""
    from mlops_nb.config import read_stages

    return [name for name, stage in read_stages(root).items() if stage.get("cmd") == f"mlops-nb stage {name}"]
