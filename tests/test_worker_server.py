"""The server worker processes fork from is forked from the calling process when it runs a single thread (no second
interpreter importing the library), gives the same trials, and goes away with its process; a threaded process
(a Jupyter kernel) keeps multiprocessing's own start."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path

from conftest import BIN

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, threading
    from multiprocessing import forkserver

    import optuna
    from mlops_nb import parallel, tune, workers
    from mlops_nb.config import TuneParams
    from mlops_nb.data import read_source
    from mlops_nb.train import split_xy
    from mlops_nb.validate import clean, infer_schema

    def study_of(workers):
        study = optuna.create_study(
            direction="maximize",
            sampler=tune.make_sampler("tpe", space, seed=0),
            pruner=tune.make_pruner("median", cv_folds=3),
        )
        return parallel.run_batched(study, objective, n_trials=6, workers=workers, batch_size=2, show_progress_bar=False)

    if __name__ == "__main__":
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        space = TuneParams.model_validate(
            {"search_space": {"logistic_regression": {"C": {"type": "float", "low": 0.01, "high": 10, "log": True}}}}
        ).search_space_for("logistic_regression")
        penguins = clean(read_source("sample:penguins")[0], target="species")
        schema = infer_schema(penguins, target="species", task="classification")
        X, y = split_xy(penguins, schema)
        objective = tune.make_objective(
            X, y, schema=schema, model_name="logistic_regression", search_space=space, cv_folds=3, seed=0
        )
        if sys.argv[1] == "threaded":
            threading.Thread(target=threading.Event().wait, daemon=True).start()
        started = workers.start_worker_server()
        server = forkserver._forkserver._forkserver_pid
        cmdline = open(f"/proc/{server}/cmdline").read() if started else ""
        again = workers.start_worker_server()
        two = tune.trials_frame(study_of(2))
        server = forkserver._forkserver._forkserver_pid
        one = tune.trials_frame(study_of(1))
        print(json.dumps({
            "started": started, "again": again, "server": server, "same_trials": one.equals(two),
            "forkserver_cmdline": "multiprocessing.forkserver" in cmdline,
        }))
    """
)


def _run(tmp_path: Path, mode: str) -> dict:
    script = tmp_path / "workers.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [str(BIN / "python"), str(script), mode], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def _gone(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state == "Z":  # exited, waiting for init to reap it
            return True
        time.sleep(0.1)
    return False


def test_worker_server_forked_from_a_single_thread(tmp_path: Path) -> None:
    report = _run(tmp_path, "single")
    assert report["started"] is True and report["again"] is False  # once per process
    assert report["forkserver_cmdline"] is False  # a fork of the script, not `python -c ...forkserver...`
    assert report["same_trials"] is True
    assert _gone(report["server"])  # it stopped when its process did


def test_threaded_process_keeps_multiprocessing_start(tmp_path: Path) -> None:
    report = _run(tmp_path, "threaded")
    assert report["started"] is False
    assert report["same_trials"] is True  # the pool started its own server
    assert _gone(report["server"])


def test_stage_forks_the_worker_server_only_when_asked() -> None:
    from mlops_nb.stage import _wants_workers

    assert _wants_workers({"tune": {"workers": 2}}) is True
    assert _wants_workers({"tune": {"workers": 1}}) is False
    assert _wants_workers({"train": {"model": "random_forest"}}) is False
