"""A shared study on a real PostgreSQL: the tune stage with two extra `mlops-nb tune worker` processes, one of them
killed with SIGKILL mid-trial; and the one-line errors of a database that cannot be reached."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import BIN, REPO_ROOT, command_env, run, set_params

N_TRIALS = 14


def _study(url: str):
    import optuna

    from mlops_nb.study_storage import make_storage

    storage = make_storage(url, journal_path="", heartbeat=1)
    (summary,) = storage.get_all_studies()
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def _worker(project: Path, url: str, log: Path) -> subprocess.Popen:
    with log.open("w") as output:
        return subprocess.Popen(
            [str(BIN / "mlops-nb"), "tune", "worker", "--storage", url],
            cwd=project,
            env=command_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )


@pytest.mark.slow
def test_stage_and_two_workers_share_a_study_and_survive_a_killed_worker(
    fresh_run: Path, postgres_url: str, tmp_path: Path
) -> None:
    from optuna.trial import TrialState

    space = {
        "n_estimators": {"type": "int", "choices": [40, 80]},
        "max_depth": {"type": "int", "low": 2, "high": 12},
    }
    set_params(
        fresh_run,
        **{
            "tune.storage": postgres_url,
            "tune.n_trials": N_TRIALS,
            "tune.heartbeat": 1,
            "tune.search_space.random_forest": space,
        },
    )
    victim = _worker(fresh_run, postgres_url, tmp_path / "victim.log")
    survivor = _worker(fresh_run, postgres_url, tmp_path / "survivor.log")
    with (tmp_path / "stage.log").open("w") as output:
        stage = subprocess.Popen(
            ["dvc", "repro", "tune"],
            cwd=fresh_run,
            env=command_env(),
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        # Kill the victim while it runs a trial (each trial records the worker that runs it).
        deadline, killed = time.monotonic() + 240, None
        while killed is None:
            assert time.monotonic() < deadline, (tmp_path / "victim.log").read_text()
            assert victim.poll() is None, (tmp_path / "victim.log").read_text()
            try:
                running = _study(postgres_url).get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            except ValueError:  # no study yet
                running = []
            mine = [
                trial for trial in running if trial.user_attrs.get("worker", "").endswith(f":{victim.pid}")
            ]
            if mine:
                os.kill(victim.pid, signal.SIGKILL)
                killed = mine[0].number
            time.sleep(0.2)
        assert stage.wait(timeout=400) == 0, (tmp_path / "stage.log").read_text()[-3000:]
        assert survivor.wait(timeout=120) == 0, (tmp_path / "survivor.log").read_text()[-3000:]
    finally:
        for process in (victim, survivor, stage):
            if process.poll() is None:
                process.kill()
    trials = _study(postgres_url).get_trials(deepcopy=False)
    numbers = [trial.number for trial in trials]
    assert numbers == list(range(len(trials))), "every trial recorded once"
    finished = [trial for trial in trials if trial.state in (TrialState.COMPLETE, TrialState.PRUNED)]
    assert len(finished) >= N_TRIALS
    assert trials[killed].state == TrialState.FAIL, (
        "the killed worker's trial is failed by a live worker's heartbeat check"
    )
    retries = [trial for trial in trials if trial.system_attrs.get("failed_trial") == killed]
    assert len(retries) <= 1
    assert not [trial for trial in trials if trial.state == TrialState.RUNNING]
    workers = {trial.user_attrs.get("worker") for trial in finished}
    assert len(workers) >= 2, f"trials ran in one process only: {workers}"
    summary = json.loads((fresh_run / "models" / "best_params.json").read_text())
    assert summary["reproducible"] is False and "not bit-reproducible" in summary["note"]
    assert summary["storage"] == postgres_url and summary["n_trials"] == len(trials)
    assert len((fresh_run / "reports" / "tune" / "trials.csv").read_text().splitlines()) == len(trials) + 1


@pytest.mark.slow
def test_unreachable_database_is_one_line_without_the_password(fresh_run: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"postgresql://optuna:hunter2@127.0.0.1:{closed_port}/optuna"
    guarded = {
        name: (fresh_run / name).read_bytes() for name in ("models/best_params.json", "models/model.skops")
    }
    set_params(fresh_run, **{"tune.storage": url})
    result = run(["dvc", "repro"], fresh_run, check=False)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    assert (
        f"tune.storage: cannot connect to postgresql://optuna:***@127.0.0.1:{closed_port}/optuna" in errors[0]
    )
    assert "hunter2" not in result.stderr + result.stdout
    assert {name: (fresh_run / name).read_bytes() for name in guarded} == guarded

    worker = run(["mlops-nb", "tune", "worker", "--storage", url], fresh_run, check=False)
    assert worker.returncode == 1
    assert worker.stderr.count("\n") == 1 and "cannot connect to postgresql://optuna:***@" in worker.stderr
    assert "hunter2" not in worker.stderr


def test_worker_help() -> None:
    result = run(["mlops-nb", "tune", "worker", "--help"], REPO_ROOT)
    assert "--storage" in result.stdout and "--study" in result.stdout
