"""Benchmarks of tuning (issue 12, "Performance"), measured side by side in one run.

1. `grid`: the tuning path of the stage (TPE, median pruning, 2 worker processes, the embedded journal) against
   scikit-learn's `GridSearchCV(n_jobs=2)` over the seeds' 27-point grid (n_estimators 50/100/200, max_depth
   None/10/20, min_samples_split 2/5/10; 5 folds; accuracy), on penguins and on a synthetic set of `--rows` rows
   (bench/synthetic.py): the time each side takes to reach the grid's best CV score, and both best scores (target:
   Optuna's time <= 1/3 of the grid's). Also shown: when Optuna came within one standard error of the grid's best.
2. `workers`: the same trials with 2 worker processes against 1 (target: >= 1.7x faster; the trial tables equal).
3. `storage`: the embedded journal's overhead per trial: a trivial objective through the same path with the
   journal file and with an in-memory storage (target: the difference <= 20 ms).

    .venv/bin/python bench/bench_tune.py [--part grid|workers|storage|all] [--data penguins|synthetic|both]
                                         [--rows 10000] [--trials 27] [--quick]

The machine may be shared: read the ratios, measured in the same run, rather than the absolute times. Run each
part under `flock -x /work/coord/machine.lock` (PROTOCOL.md); `--part grid --data synthetic` is the longest
(about 5 minutes on a quiet 2-core machine).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

from measure import warm_memory  # noqa: E402
from synthetic import synthetic_frame  # noqa: E402

from mlops_nb.config import TuneParams  # noqa: E402
from mlops_nb.data import read_source  # noqa: E402
from mlops_nb.parallel import run_batched  # noqa: E402
from mlops_nb.study_storage import make_storage  # noqa: E402
from mlops_nb.train import build_pipeline, cv_splitter, split_xy  # noqa: E402
from mlops_nb.tune import make_objective, make_pruner, make_sampler, trials_frame  # noqa: E402
from mlops_nb.validate import clean, infer_schema  # noqa: E402
from mlops_nb.workers import start_worker_server  # noqa: E402

GRID = {"n_estimators": [50, 100, 200], "max_depth": [None, 10, 20], "min_samples_split": [2, 5, 10]}
SPACE = TuneParams.model_validate(
    {
        "search_space": {
            "random_forest": {
                "n_estimators": {"type": "int", "choices": GRID["n_estimators"]},
                "max_depth": {"type": "categorical", "choices": GRID["max_depth"]},
                "min_samples_split": {"type": "int", "choices": GRID["min_samples_split"]},
            }
        }
    }
).search_space_for("random_forest")
FOLDS, SEED, METRIC = 5, 42, "accuracy"
RATIO_GRID, RATIO_WORKERS, STORAGE_MS = 1 / 3, 1.7, 20.0


def data_sets(rows: int, which: str) -> dict[str, tuple]:
    sets = {}
    if which in ("penguins", "both"):
        sets["penguins"] = (clean(read_source("sample:penguins")[0], target="species"), "species")
    if which in ("synthetic", "both"):
        sets[f"synthetic {rows:,} rows"] = (synthetic_frame(rows, seed=0), "label")
    prepared = {}
    for name, (frame, target) in sets.items():
        schema = infer_schema(frame, target=target, task="classification")
        prepared[name] = (schema, *split_xy(frame, schema))
    return prepared


def grid_search(schema, X, y) -> tuple[float, float, float]:
    """GridSearchCV(n_jobs=2): the best score, its standard error over the folds, and the seconds to finish (its
    best is known only then)."""
    from sklearn.model_selection import GridSearchCV

    pipeline = build_pipeline(schema, model_name="random_forest", hyperparameters={}, seed=SEED)
    grid = {f"model__{name}": values for name, values in GRID.items()}
    search = GridSearchCV(
        pipeline, grid, scoring=METRIC, cv=cv_splitter("classification", cv_folds=FOLDS, seed=SEED), n_jobs=2
    )
    started = time.perf_counter()
    search.fit(X, y)
    seconds = time.perf_counter() - started
    standard_error = float(search.cv_results_["std_test_score"][search.best_index_]) / FOLDS**0.5
    return float(search.best_score_), standard_error, seconds


def optuna_search(
    schema, X, y, *, workers: int, n_trials: int, targets: dict[str, float] | None = None
) -> dict:
    """The stage's tuning path: TPE, median pruning, `workers` processes, the embedded journal; with `targets`, the
    seconds until a trial first scored at least each target."""
    objective = make_objective(
        X,
        y,
        schema=schema,
        model_name="random_forest",
        search_space=SPACE,
        cv_folds=FOLDS,
        seed=SEED,
        metric=METRIC,
    )
    folder = Path(tempfile.mkdtemp())
    study = optuna.create_study(
        storage=make_storage(None, journal_path=folder / "study.journal"),
        direction="maximize",
        sampler=make_sampler("tpe", SPACE, seed=SEED),
        pruner=make_pruner("median", cv_folds=FOLDS),
    )
    reached: dict[str, float] = {}
    started = time.perf_counter()
    if workers > 1:  # as `mlops-nb stage` does before it runs a notebook that asks for workers
        start_worker_server()

    def watch(study: optuna.Study, trial) -> None:
        for name, target in (targets or {}).items():
            if name not in reached and trial.value is not None and trial.value >= target - 1e-9:
                reached[name] = time.perf_counter() - started

    run_batched(
        study,
        objective,
        n_trials=n_trials,
        workers=workers,
        batch_size=4,
        pruner="median",
        show_progress_bar=False,
        callbacks=[watch],
    )
    return {
        "best": study.best_value,
        "seconds": time.perf_counter() - started,
        "reached": reached,
        "trials": trials_frame(study),
        "reused": sum("same_as" in trial.user_attrs for trial in study.get_trials(deepcopy=False)),
    }


class _Trivial:
    """An objective that costs nothing: what is left is the storage and the batching."""

    cv_folds = 3

    def __init__(self):
        self.search_space = SPACE

    def __call__(self, trial: optuna.Trial) -> float:
        from mlops_nb.tune import suggest

        point = suggest(trial, self.search_space)
        return float(point["n_estimators"]) / 200


def storage_overhead(n_trials: int, repeats: int = 3) -> tuple[float, float]:
    """Milliseconds per trial through `run_batched` with the journal file and with memory (the best of `repeats`
    alternating runs of each)."""
    timings: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(repeats):
        for journal in (True, False):
            folder = Path(tempfile.mkdtemp())
            storage = make_storage(None, journal_path=folder / "study.journal") if journal else None
            study = optuna.create_study(
                storage=storage, direction="maximize", sampler=make_sampler("tpe", SPACE, seed=0)
            )
            started = time.perf_counter()
            run_batched(
                study,
                _Trivial(),
                n_trials=n_trials,
                workers=1,
                batch_size=4,
                pruner="none",
                show_progress_bar=False,
            )
            timings[journal].append((time.perf_counter() - started) * 1000 / n_trials)
    return min(timings[True]), min(timings[False])


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def grid_part(name: str, schema, X, y, n_trials: int) -> tuple[dict, dict]:
    grid_best, standard_error, grid_seconds = grid_search(schema, X, y)
    two = optuna_search(
        schema,
        X,
        y,
        workers=2,
        n_trials=n_trials,
        targets={"best": grid_best, "within 1 SE": grid_best - standard_error},
    )
    reached = two["reached"].get("best")
    ratio = None if reached is None else reached / grid_seconds
    row = {
        "data": name,
        "grid best": round(grid_best, 4),
        "grid 1 SE": round(standard_error, 4),
        "grid s": round(grid_seconds, 1),
        "optuna best": round(two["best"], 4),
        "optuna s (all trials)": round(two["seconds"], 1),
        "optuna s to grid best": _seconds(reached),
        "ratio (<= 0.33)": None if ratio is None else round(ratio, 2),
        "grid target": verdict(ratio is not None and ratio <= RATIO_GRID),
        "optuna s to within 1 SE": _seconds(two["reached"].get("within 1 SE")),
    }
    return row, two


def _burn(iterations: int = 4_000_000) -> float:
    started = time.perf_counter()
    total = 0
    for index in range(iterations):
        total += index * index
    return time.perf_counter() - started


def cpu_ceiling() -> float:
    """How much faster two processes of pure Python finish two tasks than one process: what the machine can give
    two workers right now (2.0 on two idle cores, less when others are busy)."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2) as pool:
        list(pool.map(_burn, [1, 1]))
        started = time.perf_counter()
        list(pool.map(_burn, [4_000_000] * 2, chunksize=2))  # one process, both tasks
        one = time.perf_counter() - started
        started = time.perf_counter()
        futures = [pool.submit(_burn) for _ in range(2)]
        for future in futures:
            future.result()
        two = time.perf_counter() - started
    return one / two


def workers_part(name: str, schema, X, y, n_trials: int, two: dict | None = None) -> dict:
    if two is None:
        warm_memory()
        two = optuna_search(schema, X, y, workers=2, n_trials=n_trials)
    warm_memory()
    one = optuna_search(schema, X, y, workers=1, n_trials=n_trials)
    speed_up = one["seconds"] / two["seconds"]
    return {
        "data": name,
        "CPU ceiling (2 processes / 1)": round(cpu_ceiling(), 2),
        "1 worker s": round(one["seconds"], 1),
        "2 workers s": round(two["seconds"], 1),
        "speed-up (>= 1.7)": round(speed_up, 2),
        "workers target": verdict(speed_up >= RATIO_WORKERS),
        "same trials": one["trials"].equals(two["trials"]),
        "pruned": int((one["trials"].state == "pruned").sum()),
        "points asked again (not re-run)": one["reused"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--part",
        choices=["grid", "workers", "storage", "all"],
        default="all",
        help="what to measure (default all)",
    )
    parser.add_argument(
        "--data", choices=["penguins", "synthetic", "both"], default="both", help="data sets (default both)"
    )
    parser.add_argument(
        "--rows", type=int, default=10_000, help="rows of the synthetic data set (default 10,000)"
    )
    parser.add_argument(
        "--trials", type=int, default=27, help="Optuna's trial budget (default 27, the grid's size)"
    )
    parser.add_argument("--quick", action="store_true", help="penguins only")
    arguments = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with open("/proc/loadavg") as load:
        print("load average before:", " ".join(load.read().split()[:3]), flush=True)
    grid_rows, worker_rows = [], []
    if arguments.part != "storage":
        which = "penguins" if arguments.quick else arguments.data
        for name, (schema, X, y) in data_sets(arguments.rows, which).items():
            two = None
            if arguments.part in ("grid", "all"):
                row, two = grid_part(name, schema, X, y, arguments.trials)
                grid_rows.append(row)
                print(pd.DataFrame([row]).T.to_string(header=False), flush=True)
            if arguments.part in ("workers", "all"):
                worker_rows.append(workers_part(name, schema, X, y, arguments.trials, two))
                print(pd.DataFrame(worker_rows[-1:]).T.to_string(header=False), flush=True)
    for rows in (grid_rows, worker_rows):
        if rows:
            print()
            print(pd.DataFrame(rows).to_string(index=False))
    if arguments.part in ("storage", "all"):
        journal_ms, memory_ms = storage_overhead(200)
        overhead = journal_ms - memory_ms
        print(
            f"\nstorage per trial (trivial objective, 200 trials, best of 3): journal file {journal_ms:.1f} ms, "
            f"in memory {memory_ms:.1f} ms: journal overhead {overhead:.1f} ms (<= {STORAGE_MS:.0f}) {verdict(overhead <= STORAGE_MS)}"
        )
    with open("/proc/loadavg") as load:
        print("load average after:", " ".join(load.read().split()[:3]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
