"""Shared fixtures: a temporary copy of the project as its own git + DVC repository, and a way to run commands in it."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

# The project-copy helpers live in bench/project_copy.py (on pytest's `pythonpath`), shared with the benchmarks.
from project_copy import BIN, REPO_ROOT, command_env, edit_params, make_project, set_params, stage_names  # noqa: F401


def awkward_frame(size: int = 300) -> pd.DataFrame:
    """A small classification set with awkward names: unicode, spaces and punctuation in column names, text labels
    with spaces and slashes, missing categories (the pipeline, serving and monitoring tests all use it)."""
    rng = np.random.default_rng(0)
    label = rng.choice(["très bon", "so-so", "bad / worse"], size=size)
    return pd.DataFrame(
        {
            "Bill length (mm)": rng.normal(40, 5, size) + (label == "très bon") * 8,
            "île": rng.choice(["Dream", "Biscoe", None], size=size),
            "body-mass/g%": rng.normal(4000, 300, size) - (label == "bad / worse") * 600,
            "a b  c": rng.integers(0, 5, size).astype(float),
            "Qualité: label?": label,
        }
    )


def wait_for(condition, *, timeout: float = 120, what: str = "") -> None:
    """Poll `condition()` until it is true; fail the test after `timeout` seconds, naming `what` it waited for."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def run(
    command: list[str] | str, cwd: Path, *, check: bool = True, timeout: int = 600, **extra_env: str
) -> subprocess.CompletedProcess:
    """Run `command` in `cwd`; with `check`, fail the test showing its output when it exits non-zero."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=command_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=timeout,
        shell=isinstance(command, str),
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{command} exited {result.returncode}\n--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
        )
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


# --- PostgreSQL for shared tuning studies (issue 12): a real server from a temporary folder, on a loopback port ---


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        pytest.fail("PostgreSQL's server is not installed: `make postgresql` (Debian's postgresql package)")
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """A PostgreSQL server started for the session (as `nobody` when the tests run as root, which PostgreSQL
    refuses), trusting loopback connections; yields the URL of its `postgres` database for the user `optuna`."""
    import os
    import shutil
    import subprocess
    import tempfile

    binaries = _postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="mlops_nb_pg_"))
    as_user: dict[str, str] = {}
    if os.geteuid() == 0:
        shutil.chown(folder, "nobody", "nogroup")
        as_user = {"user": "nobody", "group": "nogroup"}
    data, port = folder / "data", _free_port()

    def postgres(*arguments: str) -> None:
        result = subprocess.run(
            [str(binaries / arguments[0]), *arguments[1:]],
            capture_output=True,
            text=True,
            cwd=folder,
            timeout=120,
            **as_user,
        )
        if result.returncode != 0:
            pytest.fail(f"{arguments[0]} failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")

    postgres("initdb", "-D", str(data), "-U", "optuna", "--auth=trust", "-E", "UTF8", "--no-sync")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100"
    postgres("pg_ctl", "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start")
    try:
        yield f"postgresql://optuna@127.0.0.1:{port}/postgres"
    finally:
        postgres("pg_ctl", "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: str, request: pytest.FixtureRequest) -> str:
    """A new, empty database on the session's PostgreSQL server, for one test."""
    import re

    import psycopg

    name = "test_" + re.sub(r"\W", "_", request.node.name.lower())[:50]
    with psycopg.connect(postgres_server, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return postgres_server.rsplit("/", 1)[0] + "/" + name
