"""Tuning on one machine through the real stage: the same trials with 1 or 2 worker processes, deterministic DVC
outputs, the grid sampler and the subsample recorded in the card, optuna-dashboard on loopback."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import BIN, command_env, run, set_params

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _outs(lock: Path) -> dict[str, str]:
    outs = yaml.safe_load(lock.read_text())["stages"]["tune"]["outs"]
    return {out["path"]: out["md5"] for out in outs if not out["path"].endswith(".ipynb")}


def test_two_workers_give_the_trials_of_one(fresh_run: Path) -> None:
    """The session's pipeline tuned with 1 worker; a fresh study with 2 worker processes must give the same table."""
    one_worker = (fresh_run / "reports" / "tune" / "trials.csv").read_bytes()
    best_params = (fresh_run / "models" / "best_params.json").read_bytes()
    _outs_before = _outs(fresh_run / "dvc.lock")
    set_params(fresh_run, **{"tune.workers": 2, "tune.fresh": True})
    result = run(["dvc", "repro", "tune"], fresh_run)
    assert "Running stage 'tune'" in result.stdout
    assert (fresh_run / "reports" / "tune" / "trials.csv").read_bytes() == one_worker
    assert (fresh_run / "models" / "best_params.json").read_bytes() == best_params
    trials = pd.read_csv(fresh_run / "reports" / "tune" / "trials.csv")
    assert len(trials) == 15 and {"max_depth", "min_samples_leaf"} <= set(trials.columns)
    # No clock time in the stage's DVC outputs: their hashes in dvc.lock are those of the 1-worker run (the report
    # differs only in its injected parameters).
    assert _outs(fresh_run / "dvc.lock") == _outs_before


def test_grid_sampler_and_subsample_in_the_card(fresh_run: Path) -> None:
    set_params(
        fresh_run,
        **{
            "tune.sampler": "grid",
            "tune.max_rows": 120,
            "tune.n_trials": 50,
            "tune.search_space.random_forest": {
                "max_depth": {"type": "categorical", "choices": [None, 4]},
                "min_samples_leaf": {"type": "int", "low": 1, "high": 9, "step": 4},
            },
        },
    )
    run(["dvc", "repro", "train"], fresh_run)
    trials = pd.read_csv(fresh_run / "reports" / "tune" / "trials.csv")
    assert len(trials) == 6, "the grid has 2 x 3 points, fewer than n_trials"
    assert sorted(trials.min_samples_leaf.unique()) == [1, 5, 9]
    tuning = json.loads((fresh_run / "models" / "card.json").read_text())["tuning"]
    assert (tuning["sampler"], tuning["rows"], tuning["subsample"]) == ("grid", 120, "stratified")
    assert tuning["rows_total"] > 120 and tuning["reproducible"] is True
    report = (fresh_run / "reports" / "tune.ipynb").read_text()
    assert report.count("image/png") >= 3, "history, importances and parallel coordinates"


def test_dashboard_serves_the_study_on_loopback(pipeline_project: Path, tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "dashboard.log"
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(BIN / "mlops-nb"), "tune", "dashboard", "--port", str(port)],
            cwd=pipeline_project,
            env=command_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as response:
                    studies = json.loads(response.read())
                break
            except OSError:
                assert process.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        names = [study["study_name"] for study in studies["study_summaries"]]
        assert any(name.startswith("random_forest-") for name in names), names
        with pytest.raises(OSError):
            external = socket.gethostbyname(socket.gethostname())
            if external.startswith("127."):
                raise OSError("no address other than loopback to probe")
            urllib.request.urlopen(f"http://{external}:{port}/api/studies", timeout=3)
    finally:
        process.terminate()
        process.wait(timeout=30)
