"""Benchmarks of the pipeline against its floor (issue 2, "Performance"), measured side by side in one run.

Each benchmark runs in temporary copies of the project (tracked sources, no run outputs, a fresh git + DVC
repository). The floor is one Python script, generated from the pipeline notebooks by `bench/bare.py`, that makes
the same library calls with the same parameters in one process. Measurements are interleaved and repeated; the
printed figures are medians. Each measured `dvc repro` gets its own warm stage server (`cold_start`): its first
stage runs cold and starts it, the later ones run warm (`mlops_nb.warm`), as in a `dvc repro` after a pause.

    .venv/bin/python bench/bench_pipeline.py            # everything (the 1,000,000-row case takes a few minutes)
    .venv/bin/python bench/bench_pipeline.py --quick    # penguins only
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from bare import STAGES, write_bare_script
from measure import PYTHON, Report, Run, interleave, median, run, spread
from project_copy import BIN, REPO_ROOT, edit_params, make_project
from synthetic import write_synthetic

PER_STAGE_BUDGET = 2.5  # seconds of overhead per stage over the bare run
CHANGED_PARAM_RATIO = 2.0
NOOP_RATIO = 1.5
LARGE_RATIO = 1.15
LARGE_MEMORY_FACTOR = 4.0
# What a changed train parameter reruns: the check of params.yaml (its dependency changed; no bare equivalent, so
# it counts as overhead), then train and the stages after it.
CHANGED_TRAIN_RERUNS = ("check", "train", "evaluate", "export")

# Light settings for the large data set, the same for both sides: a histogram gradient boosting model, two folds,
# two tuning trials, one permutation-importance repeat. The categorical encoding is `--large-encoding` (default
# ordinal codes, which a tree model needs no 0/1 columns for).
LARGE_PARAMS = {
    "train": {
        "model": "hist_gradient_boosting",
        "seed": 42,
        "cv_folds": 2,
        "hyperparameters": {"hist_gradient_boosting": {"max_iter": 50, "max_leaf_nodes": 31}},
    },
    "tune": {
        "n_trials": 2,
        "cv_folds": 2,
        "search_space": {
            "hist_gradient_boosting": {
                "max_leaf_nodes": {"type": "int", "low": 15, "high": 63},
                "learning_rate": {"type": "float", "low": 0.05, "high": 0.3, "log": True},
            },
        },
    },
    "evaluate": {"importance_repeats": 1},
}

# What a stage process imports, each measured in a fresh interpreter (minus the interpreter's own start).
IMPORTS = {
    "pandas": "import pandas",
    "sklearn": "import sklearn",
    "scipy.stats": "import scipy.stats",
    "pandas + sklearn (ensemble, model_selection)": "import pandas, sklearn.ensemble, sklearn.model_selection",
    # Alone, papermill pulls in jsonschema's IRI checker when JupyterLab is installed; mlops_nb.stage skips it.
    "papermill (alone)": "import papermill",
    "execnb.shell (IPython)": "import execnb.shell",
    "mlops_nb.stage": "import mlops_nb.stage",
    "optuna": "import optuna",
    "skops.io": "import skops.io",
    "matplotlib.pyplot": "import matplotlib.pyplot",
    "jsonschema": "import jsonschema",
    "dvc.repo": "import dvc.repo",
    "a stage's imports before its first cell": "import mlops_nb.cli, mlops_nb.stage, papermill, execnb.shell",
    "everything a stage process imports": (
        "import mlops_nb.cli, mlops_nb.stage, execnb.shell, pandas, sklearn.ensemble, sklearn.model_selection, "
        "sklearn.inspection, optuna, skops.io, matplotlib.pyplot"
    ),
}


def stage_walls(result: Run) -> dict[str, float]:
    """From a `dvc repro`'s timed output: each stage's wall time, from DVC's "Running stage" to the stage's last line."""
    walls, current, since = {}, None, 0.0
    for at, line in result.lines:
        if match := re.match(r"Running stage '([^']+)'", line):
            current, since = match[1], at
        elif current and line.startswith(f"stage {current}: report written"):
            walls[current] = at - since
    return walls


def run_stage_times(result: Run) -> dict[str, float]:
    """Each stage's time inside `run_stage` (papermill and the cells), from the stage command's log."""
    return {
        name: float(seconds)
        for name, seconds in re.findall(r"stage (\w+): done in ([\d.]+) s", result.output)
    }


def quiet_project(destination: Path) -> Path:
    """`make_project`, with its git noise kept out of the benchmark's output."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    return make_project(destination)


def ran_stages(output: str) -> list[str]:
    return re.findall(r"Running stage '([^']+)'", output)


def cold_start(index: int) -> dict[str, str]:
    """An environment variable that gives each measured `dvc repro` its own warm stage server (`mlops_nb.warm`, keyed
    by the environment): the first stage of every run starts cold and starts the server, as after a pause of more
    than `MLOPS_NB_WARM_IDLE` seconds; no run uses a server left by an earlier one."""
    return {"MLOPS_NB_BENCH_RUN": f"{os.getpid()}-{index}-{time.monotonic_ns()}"}


def bench_full(work: Path, repeats: int, report: Report) -> dict:
    """Target 1: a full `dvc repro` of the default pipeline against the bare run in one process."""
    print(
        f"\n== 1. full pipeline on penguins: `dvc repro` vs the bare script ({repeats}x, interleaved)",
        flush=True,
    )
    bare_project = quiet_project(work / "bare")
    script = write_bare_script(bare_project, work / "bare_all.py")
    timings = work / "bare_timings.json"
    bare_runs, dvc_runs, warm = [], [], []

    def bare(index: int) -> None:
        bare_runs.append(run([PYTHON, str(script), str(timings)], bare_project, label="bare script"))
        warm.append(json.loads(timings.read_text()))

    def dvc(index: int) -> None:
        dvc_runs.append(
            run(
                ["dvc", "repro"], quiet_project(work / f"dvc-{index}"), label="dvc repro", **cold_start(index)
            )
        )

    def after(index: int) -> None:
        print(
            f"  run {index + 1}: bare {bare_runs[-1].seconds:.2f} s, dvc repro {dvc_runs[-1].seconds:.2f} s",
            flush=True,
        )

    interleave(repeats, bare, dvc, after)
    project = work / f"dvc-{repeats - 1}"
    bare_times = [result.seconds for result in bare_runs]
    dvc_times = [result.seconds for result in dvc_runs]
    same = (project / "reports/metrics.json").read_text() == (
        bare_project / "reports/metrics.json"
    ).read_text()
    print(
        f"  bare: {spread(bare_times)}\n  dvc repro: {spread(dvc_times)}\n  same test metrics on both sides: {same}"
    )
    per_stage = (median(dvc_times) - median(bare_times)) / len(STAGES)
    report.target(
        "1. full dvc repro, overhead per stage",
        f"{per_stage:.2f} s/stage ({median(dvc_times):.1f} vs {median(bare_times):.1f} s, {median(dvc_times) / median(bare_times):.1f}x)",
        f"<= {PER_STAGE_BUDGET} s/stage",
        per_stage <= PER_STAGE_BUDGET and same,
    )
    return {
        "project": project,
        "bare_project": bare_project,
        "dvc": dvc_runs,
        "warm": {name: median([timing[name] for timing in warm]) for name in STAGES},
    }


def bench_changed_param(work: Path, project: Path, bare_project: Path, repeats: int, report: Report) -> None:
    """Target 2: after a changed `train.hyperparameters.random_forest.n_estimators`, the rerun of check, train, evaluate and export against one cold bare script of train, evaluate and export."""
    print(
        f"\n== 2. changed train.hyperparameters.random_forest.n_estimators: `dvc repro` (check, train, evaluate, export) vs a cold bare script of train, evaluate, export ({repeats}x)"
    )
    dvc_times, bare_times = [], []

    def set_value(project: Path, index: int) -> None:
        # A new value each time, so DVC's run cache cannot restore an earlier result.
        edit_params(
            project,
            lambda params: params["train"]["hyperparameters"]["random_forest"].update(
                n_estimators=201 + index
            ),
        )

    def dvc(index: int) -> None:
        set_value(project, index)
        result = run(["dvc", "repro"], project, label="dvc repro after a train change", **cold_start(index))
        if (stages := ran_stages(result.output)) != list(CHANGED_TRAIN_RERUNS):
            raise SystemExit(f"bench: expected {', '.join(CHANGED_TRAIN_RERUNS)} to rerun, dvc ran {stages}")
        dvc_times.append(result.seconds)

    def bare(index: int) -> None:
        set_value(bare_project, index)
        script = write_bare_script(bare_project, work / "bare_train_evaluate.py", CHANGED_TRAIN_RERUNS[1:])
        bare_times.append(
            run([PYTHON, str(script)], bare_project, label="bare train + evaluate + export").seconds
        )

    def after(index: int) -> None:
        print(
            f"  n_estimators={201 + index}: bare {bare_times[-1]:.2f} s, dvc repro {dvc_times[-1]:.2f} s",
            flush=True,
        )

    interleave(repeats, bare, dvc, after)
    ratio = median(dvc_times) / median(bare_times)
    report.target(
        "2. rerun after a train change",
        f"{ratio:.2f}x ({median(dvc_times):.1f} vs {median(bare_times):.1f} s)",
        f"<= {CHANGED_PARAM_RATIO}x",
        ratio <= CHANGED_PARAM_RATIO,
    )


def bench_noop(project: Path, repeats: int, report: Report) -> None:
    """Target 3: a no-op `dvc repro` against `dvc status`."""
    print(f"\n== 3. no-op `dvc repro` vs `dvc status` ({repeats}x, interleaved)")
    status_times, repro_times = [], []

    def status(index: int) -> None:
        status_times.append(run(["dvc", "status"], project).seconds)

    def repro(index: int) -> None:
        result = run(["dvc", "repro"], project)
        if ran_stages(result.output):
            raise SystemExit(f"bench: a no-op dvc repro ran stages: {result.output}")
        repro_times.append(result.seconds)

    interleave(repeats, status, repro, lambda index: None)
    print(f"  dvc status: {spread(status_times)}\n  dvc repro:  {spread(repro_times)}")
    ratio = median(repro_times) / median(status_times)
    report.target(
        "3. no-op dvc repro vs dvc status",
        f"{ratio:.2f}x ({median(repro_times):.2f} vs {median(status_times):.2f} s)",
        f"<= {NOOP_RATIO}x",
        ratio <= NOOP_RATIO,
    )


def measure_stage(name: str, work: Path, full: dict, repeats: int) -> tuple:
    """One row of the per-stage table: `mlops-nb stage NAME` and the bare cold stage, interleaved."""
    project, bare_project = full["project"], full["bare_project"]
    script = write_bare_script(bare_project, work / f"bare_{name}.py", (name,))
    timings = work / "bare_stage_timings.json"
    stage_runs, cold_runs, cold_cells = [], [], []

    def stage(index: int) -> None:
        stage_runs.append(run(["mlops-nb", "stage", name], project, label=f"mlops-nb stage {name}"))

    def bare(index: int) -> None:
        cold_runs.append(run([PYTHON, str(script), str(timings)], bare_project, label=f"bare {name}").seconds)
        cold_cells.append(json.loads(timings.read_text())[name])

    interleave(repeats, stage, bare, lambda index: None)
    wall = median([result.seconds for result in stage_runs])
    inside = median([run_stage_times(result)[name] for result in stage_runs])
    cells, warm = median(cold_cells), full["warm"][name]
    return (name, wall, wall - inside, inside, median(cold_runs), cells, inside - cells, warm, cells - warm)


def bench_stages(work: Path, full: dict, repeats: int) -> None:
    """Where the time goes, per stage: `mlops-nb stage NAME` against the stage's cells run bare, side by side."""
    print(f"\n== Per stage on penguins (fresh process each, {repeats}x interleaved, medians in seconds)")
    rows = [measure_stage(name, work, full, repeats) for name in STAGES]
    columns = (
        "stage",
        "mlops-nb",
        "cli start",
        "run_stage",
        "bare cold",
        "cold cells",
        "notebook",
        "warm cells",
        "imports",
    )
    print("  " + "".join(f"{column:>11}" for column in columns))
    for row in [*rows, ("sum", *[sum(values) for values in list(zip(*rows, strict=True))[1:]])]:
        print("  " + f"{row[0]:>11}" + "".join(f"{value:>11.2f}" for value in row[1:]))
    walls = [stage_walls(result) for result in full["dvc"]]
    dvc_share = median(
        [result.seconds - sum(wall.values()) for result, wall in zip(full["dvc"], walls, strict=True)]
    )
    print(
        "  mlops-nb: `mlops-nb stage NAME` as DVC runs it (wall); cli start = mlops-nb - run_stage: the interpreter,\n"
        "  the CLI, papermill and nbformat imports, params; run_stage: papermill executing the notebook (the stage's\n"
        "  log); bare cold: the stage's cells alone in a fresh interpreter (wall); cold cells: the cells' own time\n"
        "  there; notebook = run_stage - cold cells: papermill, the execnb shell, rendering outputs, writing the\n"
        "  report; warm cells: the same cells in the one-process bare run of 1.; imports = cold cells - warm cells:\n"
        "  the libraries a fresh process imports again.\n"
        f"  dvc itself in the full runs of 1. (repro wall - the stages' walls): {dvc_share:.2f} s, "
        f"{dvc_share / len(STAGES):.2f} s per stage."
    )


def bench_imports(repeats: int) -> None:
    """Import costs, each in a fresh interpreter, and the import tree of a stage process."""
    print(f"\n== Import time in a fresh interpreter (median of {repeats}, interpreter start subtracted)")
    baseline = median([run([PYTHON, "-c", "pass"], REPO_ROOT).seconds for _ in range(repeats)])
    for name, statement in IMPORTS.items():
        seconds = (
            median([run([PYTHON, "-c", statement], REPO_ROOT).seconds for _ in range(repeats)]) - baseline
        )
        print(f"  {name:<48} {seconds:6.2f} s")
    result = run([PYTHON, "-X", "importtime", "-c", IMPORTS["everything a stage process imports"]], REPO_ROOT)
    print(
        "\n  `python -X importtime` of a stage process's imports: modules >= 0.15 s cumulative, 3 levels deep"
    )
    for _, line in result.lines:
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if match and int(match[2]) >= 150_000 and len(match[3]) <= 5:
            print(f"    {int(match[2]) / 1e6:5.2f} s  {match[3]}{match[4]}")


def bench_large(work: Path, rows: int, repeats: int, report: Report, *, encoding: str = "ordinal") -> None:
    """Target 4: the full pipeline on a large synthetic data set against the bare script; peak memory."""
    print(
        f"\n== 4. {rows:,} synthetic rows (20 numeric + 3 categorical, 3 classes): `dvc repro` vs the bare script "
        f"(features.categorical_encoding = {encoding})"
    )
    data = work / "synthetic.parquet"
    size = write_synthetic(data, rows)
    print(
        f"  data: {data.stat().st_size / 1e6:.0f} MB Parquet, {size / 1e6:.0f} MB in memory (memory_usage(deep=True))"
    )

    def configure(params: dict) -> None:
        params["data"].update(source=str(data), target="label", task="classification")
        params["train"] = dict(LARGE_PARAMS["train"])
        params["tune"].update(LARGE_PARAMS["tune"])
        params["evaluate"].update(LARGE_PARAMS["evaluate"])
        params["features"]["categorical_encoding"] = encoding

    bare_project = quiet_project(work / "large-bare")
    edit_params(bare_project, configure)
    run(["mlops-nb", "check"], bare_project, label="mlops-nb check of the large-data params")
    script = write_bare_script(bare_project, work / "bare_large.py")
    bare_runs, dvc_runs = [], []
    timings = work / "large_timings.json"

    def bare(index: int) -> None:
        bare_runs.append(
            run([PYTHON, str(script), str(timings)], bare_project, label="bare script, large data", peak=True)
        )

    def dvc(index: int) -> None:
        project = quiet_project(work / f"large-dvc-{index}")
        edit_params(project, configure)
        dvc_runs.append(
            run(["dvc", "repro"], project, label="dvc repro, large data", peak=True, **cold_start(index))
        )

    def after(index: int) -> None:
        print(
            f"  run {index + 1}: bare {bare_runs[-1].seconds:.1f} s, dvc repro {dvc_runs[-1].seconds:.1f} s",
            flush=True,
        )

    interleave(repeats, bare, dvc, after)
    stages = json.loads(timings.read_text())
    walls, inside = stage_walls(dvc_runs[-1]), run_stage_times(dvc_runs[-1])
    print("  per stage, bare cells / in dvc (run_stage), s:")
    print(
        "    "
        + ", ".join(
            f"{name} {stages[name]:.1f} / {walls.get(name, 0):.1f} ({inside.get(name, 0):.1f})"
            for name in STAGES
        )
    )
    print(f"  dvc itself: {dvc_runs[-1].seconds - sum(walls.values()):.1f} s")
    bare_seconds = median([result.seconds for result in bare_runs])
    dvc_seconds = median([result.seconds for result in dvc_runs])
    ratio = dvc_seconds / bare_seconds
    report.target(
        f"4a. {rows:,} rows, full pipeline",
        f"{ratio:.2f}x ({dvc_seconds:.1f} vs {bare_seconds:.1f} s)",
        f"<= {LARGE_RATIO}x",
        ratio <= LARGE_RATIO,
    )
    peak = max(result.peak_rss for result in dvc_runs)
    bare_peak = max(result.peak_rss for result in bare_runs)
    report.target(
        f"4b. {rows:,} rows, peak memory ({encoding})",
        f"{peak / size:.2f}x data ({peak / 1e6:.0f} MB; bare {bare_peak / 1e6:.0f} MB = {bare_peak / size:.2f}x)",
        f"< {LARGE_MEMORY_FACTOR}x {size / 1e6:.0f} MB",
        peak < LARGE_MEMORY_FACTOR * size,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the large synthetic data set")
    parser.add_argument(
        "--rows", type=int, default=1_000_000, help="rows of the synthetic data set (default 1,000,000)"
    )
    parser.add_argument(
        "--repeats", type=int, default=3, help="repeats of each penguins measurement (default 3)"
    )
    parser.add_argument(
        "--large-repeats", type=int, default=1, help="repeats of the large-data measurement (default 1)"
    )
    parser.add_argument("--large-only", action="store_true", help="run only the large synthetic data set")
    parser.add_argument(
        "--large-encoding",
        choices=["ordinal", "one_hot"],
        default="ordinal",
        help="features.categorical_encoding for the large data set (default ordinal)",
    )
    parser.add_argument("--no-breakdown", action="store_true", help="skip the per-stage and import breakdown")
    parser.add_argument(
        "--omp-threads",
        type=int,
        default=None,
        help="set OMP_NUM_THREADS for both sides (OpenMP models such as hist_gradient_boosting spin badly on a loaded machine)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary projects and print where they are"
    )
    arguments = parser.parse_args(argv)
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    if arguments.omp_threads:
        os.environ["OMP_NUM_THREADS"] = str(arguments.omp_threads)
    work = Path(tempfile.mkdtemp(prefix="mlops-nb-bench-"))
    report = Report("Targets (issue 2)")
    started = time.perf_counter()
    print(
        f"mlops_nb benchmarks: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, work dir {work}, "
        f"load average {os.getloadavg()[0]:.1f}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        flush=True,
    )
    try:
        if not arguments.large_only:
            full = bench_full(work, arguments.repeats, report)
            bench_changed_param(work, full["project"], full["bare_project"], arguments.repeats, report)
            bench_noop(full["project"], max(5, arguments.repeats), report)
        if not (arguments.no_breakdown or arguments.large_only):
            bench_stages(work, full, arguments.repeats)
            bench_imports(arguments.repeats)
        if not arguments.quick:
            bench_large(
                work, arguments.rows, arguments.large_repeats, report, encoding=arguments.large_encoding
            )
    finally:
        if arguments.keep:
            print(f"\nprojects kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    report.print()
    print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{load:.1f}" for load in os.getloadavg()))
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
