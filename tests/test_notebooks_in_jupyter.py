"""A pipeline notebook run top to bottom in a Jupyter kernel, as JupyterLab runs it (no papermill), reads its
parameters from the current params.yaml, says so first, and writes what `mlops-nb stage` writes, byte for byte.
Then, on the same project, a changed data file reruns ingest (issue 13, items 1 and 2)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nbformat
import pytest
import yaml
from nbclient import NotebookClient

from conftest import run, set_params

pytestmark = pytest.mark.slow
STAGES = ["ingest", "prepare", "tune", "train", "evaluate"]
# One change read by each stage, kept light (every stage runs twice: in the kernel, then by dvc repro).
CHANGES = {
    "data.source": "data/external/penguins.csv",
    "prepare.test_size": 0.25,
    "tune.n_trials": 2,
    "train.model": "extra_trees",
    "train.cv_folds": 3,
    "train.hyperparameters.extra_trees.n_estimators": 30,
    "evaluate.importance_repeats": 2,
}


def output_files(project: Path) -> dict[str, str]:
    """The sha256 of every file the pipeline stages declare as outs, metrics or plots, except the executed
    notebooks under reports/ (`mlops-nb stage` writes those; a notebook run in JupyterLab is saved where it is)."""
    stages = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]
    declared = [
        next(iter(entry)) if isinstance(entry, dict) else entry
        for name in STAGES
        for key in ("outs", "metrics", "plots")
        for entry in stages[name].get(key) or []
    ]
    files = {}
    for name in declared:
        path = project / name
        for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
            relative = file.relative_to(project).as_posix()
            if file.is_file() and relative != f"reports/{file.stem}.ipynb":
                files[relative] = hashlib.sha256(file.read_bytes()).hexdigest()
    return files


def run_in_kernel(project: Path, name: str) -> nbformat.NotebookNode:
    """Execute nbs/pipelines/NAME.ipynb as it is, in a Jupyter kernel started in nbs/pipelines/ (as JupyterLab)."""
    folder = project / "nbs" / "pipelines"
    notebook = nbformat.read(folder / f"{name}.ipynb", as_version=4)
    NotebookClient(
        notebook, kernel_name="python3", timeout=600, resources={"metadata": {"path": str(folder)}}
    ).execute()
    return notebook


def first_output(notebook: nbformat.NotebookNode) -> str:
    """The first thing the notebook itself says, past warnings a library prints on import (tqdm's in a kernel)."""
    outputs = [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.get("outputs", [])
    ]
    said = [output.get("text", "") for output in outputs if "site-packages" not in output.get("text", "")]
    return said[0] if said else ""


@pytest.fixture(scope="module")
def jupyter_run(pipeline_project: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A copy of the pipeline project, params changed, each pipeline notebook run in a kernel, then `dvc repro`."""
    import os

    import palmerpenguins

    project = tmp_path_factory.mktemp("jupyter") / "project"
    shutil.copytree(pipeline_project, project, symlinks=True)
    saved = {key: os.environ.pop(key, None) for key in ("MLOPS_NB_ROOT", "MLOPS_NB_STAGE")}
    try:
        (project / "data" / "external").mkdir(parents=True, exist_ok=True)
        palmerpenguins.load_penguins().to_csv(project / "data" / "external" / "penguins.csv", index=False)
        set_params(project, **CHANGES)
        defaults = output_files(project)
        first_outputs = {name: first_output(run_in_kernel(project, name)) for name in STAGES}
        in_jupyter = output_files(project)
        card = json.loads((project / "models" / "card.json").read_text())
        lineage = json.loads((project / "data" / "raw" / "lineage.json").read_text())
        repro = run(["dvc", "repro"], project)
    finally:
        os.environ.update({key: value for key, value in saved.items() if value is not None})
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "run on data/external/penguins.csv"], project)
    return {
        "project": project,
        "defaults": defaults,
        "first_outputs": first_outputs,
        "in_jupyter": in_jupyter,
        "card": card,
        "lineage": lineage,
        "repro": repro,
        "by_stage": output_files(project),
    }


def test_notebooks_in_jupyter_read_params_yaml_and_say_so(jupyter_run: dict) -> None:
    project = jupyter_run["project"]
    for name, said in jupyter_run["first_outputs"].items():
        assert f"stage {name}: parameters read from {project / 'params.yaml'}" in said, said
    assert "evaluate.importance_repeats = 2 (cell: 5)" in jupyter_run["first_outputs"]["evaluate"]
    assert (
        "data.source = 'data/external/penguins.csv' (cell: 'sample:penguins')"
        in jupyter_run["first_outputs"]["ingest"]
    )
    card, lineage = jupyter_run["card"], jupyter_run["lineage"]
    assert card["model"]["name"] == "extra_trees" and card["model"]["hyperparameters"]["n_estimators"] == 30
    assert lineage["source"] == CHANGES["data.source"]
    assert jupyter_run["in_jupyter"]["models/model.skops"] != jupyter_run["defaults"]["models/model.skops"]


def test_notebooks_in_jupyter_write_what_mlops_nb_stage_writes(jupyter_run: dict) -> None:
    assert all(f"Running stage '{name}'" in jupyter_run["repro"].stdout for name in STAGES), jupyter_run[
        "repro"
    ].stdout
    in_jupyter, by_stage = jupyter_run["in_jupyter"], jupyter_run["by_stage"]
    different = sorted(name for name in by_stage if in_jupyter.get(name) != by_stage[name])
    assert not different, f"a notebook run in Jupyter and `mlops-nb stage` wrote different bytes: {different}"
    assert sorted(in_jupyter) == sorted(by_stage)


def test_a_changed_data_file_reruns_ingest_and_only_what_it_changes(jupyter_run: dict) -> None:
    project = jupyter_run["project"]
    (project / "data" / "external" / "notes.txt").write_text("not data: the ingested data stays the same\n")
    result = run(["dvc", "repro"], project)
    assert "Running stage 'ingest'" in result.stdout and "Running stage 'prepare'" not in result.stdout, (
        result.stdout
    )
    assert "Data and pipelines are up to date" in run(["dvc", "repro"], project).stdout

    source = project / "data" / "external" / "penguins.csv"
    source.write_text("".join(source.read_text().splitlines(keepends=True)[:301]))  # the header and 300 rows
    status = json.loads(run(["dvc", "status", "--json"], project).stdout)
    assert set(status) == {"ingest"}, status
    run(["dvc", "repro", "ingest"], project)
    assert json.loads((project / "data" / "raw" / "lineage.json").read_text())["rows"] == 300
    assert "prepare" in json.loads(run(["dvc", "status", "--json"], project).stdout)


def test_the_monitor_notebook_in_jupyter_reads_params_yaml_and_monitors_the_test_split(
    jupyter_run: dict,
) -> None:
    """monitor.ipynb is no DVC stage (`mlops-nb monitor` runs it), yet run as it is it reads `monitor:` from
    params.yaml the same way, and with no batch named monitors the held-out test split."""
    import os

    project = jupyter_run["project"]
    saved = {key: os.environ.pop(key, None) for key in ("MLOPS_NB_ROOT", "MLOPS_NB_STAGE")}
    try:
        said = first_output(run_in_kernel(project, "monitor"))
    finally:
        os.environ.update({key: value for key, value in saved.items() if value is not None})
    assert (
        f"stage monitor: parameters read from {project / 'params.yaml'}, as `mlops-nb monitor` would" in said
    ), said
    result = json.loads((project / "reports" / "drift.json").read_text())
    assert result["settings"] == {
        **result["settings"],
        **yaml.safe_load((project / "params.yaml").read_text())["monitor"],
    }
    assert (result["source"], result["model_version"], result["retrain"]) == (
        "data/prepared/test.parquet",
        "workspace",
        False,
    )
