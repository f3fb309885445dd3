"""The stage contract: what each pipeline notebook reads and writes is exactly what dvc.yaml declares."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import REPO_ROOT, run

# Every stage but `check` (mlops-nb check on params.yaml, no notebook) runs a pipeline notebook.
STAGES = {
    name: stage
    for name, stage in yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"].items()
    if name != "check"
}
PARAMS = yaml.safe_load((REPO_ROOT / "params.yaml").read_text())
# The runner, its params check and the error types are used by every stage; they shape no output and are not deps.
RUNNER_MODULES = {
    "stage",
    "checks",
    "engines",
    "errors",
    "cli",
    "cli_models",
    "cli_serve",
    "cli_docs",
    "_modidx",
}


def parameters_cell(name: str) -> dict[str, object]:
    notebook = nbformat.read(REPO_ROOT / "nbs" / "pipelines" / f"{name}.ipynb", as_version=4)
    cells = [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(cells) == 1, f"{name}.ipynb needs exactly one cell tagged 'parameters'"
    values = {}
    for node in ast.parse(cells[0].source).body:
        assert isinstance(node, (ast.Assign, ast.AnnAssign)), (
            f"{name}: only assignments in the parameters cell"
        )
        target = node.targets[0] if isinstance(node, ast.Assign) else node.target
        values[target.id] = ast.literal_eval(node.value)
    return values


def declared_params(name: str) -> dict[str, object]:
    flat = {}
    for entry in STAGES[name].get("params", []):
        section, _, key = entry.partition(".")
        if key:
            flat[entry] = PARAMS[section][key]
        else:
            flat.update({f"{section}.{inner}": value for inner, value in PARAMS[section].items()})
    return flat


@pytest.mark.parametrize("name", list(STAGES))
def test_parameters_cell_matches_dvc_params(name: str) -> None:
    cell = parameters_cell(name)
    flat = {f"{section}.{key}": value for section, values in cell.items() for key, value in values.items()}
    assert flat == declared_params(name)


@pytest.mark.parametrize("name", list(STAGES))
def test_stage_cmd_runs_its_notebook(name: str) -> None:
    assert STAGES[name]["cmd"] == f"mlops-nb stage {name}"
    assert f"nbs/pipelines/{name}.ipynb" in STAGES[name]["deps"]
    assert f"reports/{name}.ipynb" in [
        next(iter(out)) if isinstance(out, dict) else out for out in STAGES[name]["outs"]
    ]


def _paths(entries: list) -> set[str]:
    return {next(iter(entry)) if isinstance(entry, dict) else entry for entry in entries or []}


def test_notebooks_touch_exactly_their_deps_and_outs(fresh_run: Path, tmp_path: Path) -> None:
    """Run every stage in order with an audit hook: each file it touches is declared, each declared file is touched."""
    for name, stage in STAGES.items():
        record = tmp_path / f"{name}.json"
        run(
            [sys.executable, str(REPO_ROOT / "tests" / "audit_stage.py"), str(fresh_run), name, str(record)],
            fresh_run,
        )
        seen = json.loads(record.read_text())
        deps, outs = (
            _paths(stage.get("deps")),
            _paths(stage.get("outs")) | _paths(stage.get("metrics")) | _paths(stage.get("plots")),
        )
        declared = deps | outs | {"params.yaml", "dvc.yaml"}
        undeclared = {
            path
            for path in seen["touched"]
            # an out's own folder, or its transient companions (Optuna's journal lock files: OUT.lock<uuid>)
            if path not in declared
            and not any(path.startswith(out) for out in outs)
            and not path.startswith(
                ("mlops_nb/", ".optuna/")
            )  # Optuna's journal: git-ignored, not a DVC output
        }
        assert not undeclared, f"stage {name} touches files dvc.yaml does not declare: {sorted(undeclared)}"
        # data/external is the folder of the user's data files, watched for changes; the default source is a sample
        data_deps = {dep for dep in deps if not dep.startswith(("mlops_nb/", "nbs/", "data/external"))}
        assert data_deps <= set(seen["touched"]), (
            f"stage {name} declares deps it never reads: {sorted(data_deps - set(seen['touched']))}"
        )
        imported = {f"mlops_nb/{module}.py" for module in seen["modules"] if module not in RUNNER_MODULES}
        imported -= {"mlops_nb/data.py"} if "mlops_nb/data.py" not in imported else set()
        module_deps = {dep for dep in deps if dep.startswith("mlops_nb/")}
        assert imported == module_deps, (
            f"stage {name}: imports {sorted(imported)} but declares {sorted(module_deps)}"
        )


def test_check_stage_comes_first_and_reads_params_yaml() -> None:
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    assert next(iter(stages)) == "check"
    assert stages["check"] == {"cmd": "mlops-nb check", "deps": ["params.yaml"]}
