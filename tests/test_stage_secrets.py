"""Passwords in database URLs reach the notebook but never its report, the failed report or the error message."""

from __future__ import annotations

from pathlib import Path

import nbformat
import yaml

from conftest import run, set_params

PASSWORD = "s3cret-pw"
STORAGE = f"postgresql://optuna:{PASSWORD}@127.0.0.1:9/optuna"
SOURCE = f"postgresql://reader:{PASSWORD}@127.0.0.1:9/shop?sslmode=disable"


def _probe_notebook(path: Path, *, fail: bool) -> None:
    """A pipeline notebook that records what it was given, prints it, and (with `fail`) fails naming it."""
    cells = [
        nbformat.v4.new_code_cell("tune: dict = {}\ndata: dict = {}", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "from pathlib import Path\n\n"
            "Path('../../seen.txt').write_text(tune['storage'] + '\\n' + data['source'])\n"
            "print('connecting to', tune['storage'], 'and', data['source'])"
        ),
    ]
    if fail:
        cells.append(nbformat.v4.new_code_cell("raise ConnectionError(f\"cannot reach {data['source']}\")"))
    kernelspec = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernelspec}), path)


def _add_probe_stage(project: Path) -> None:
    path = project / "dvc.yaml"
    document = yaml.safe_load(path.read_text())
    document["stages"]["probe"] = {
        "cmd": "mlops-nb stage probe",
        "deps": ["nbs/pipelines/probe.ipynb"],
        "params": ["tune.storage", "data.source"],
        "outs": ["reports/probe.ipynb"],
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_passwords_are_hidden_in_reports_and_errors(fresh_project: Path) -> None:
    _add_probe_stage(fresh_project)
    set_params(fresh_project, **{"tune.storage": STORAGE, "data.source": SOURCE, "data.query": "select 1"})
    notebook = fresh_project / "nbs" / "pipelines" / "probe.ipynb"
    report = fresh_project / "reports" / "probe.ipynb"
    failed = fresh_project / "reports" / "probe.failed.ipynb"

    _probe_notebook(notebook, fail=False)
    run(["mlops-nb", "stage", "probe"], fresh_project)
    assert (
        fresh_project / "seen.txt"
    ).read_text() == f"{STORAGE}\n{SOURCE}"  # the notebook got the real values
    text = report.read_text()
    assert PASSWORD not in text
    assert "postgresql://optuna:***@127.0.0.1:9/optuna" in text  # the injected cell and the printed output
    assert "postgresql://reader:***@127.0.0.1:9/shop" in text
    report_before = report.read_bytes()

    _probe_notebook(notebook, fail=True)
    result = run(["mlops-nb", "stage", "probe"], fresh_project, check=False)
    assert result.returncode == 1
    assert PASSWORD not in result.stderr + result.stdout
    assert "ConnectionError: cannot reach postgresql://reader:***@127.0.0.1:9/shop" in result.stderr
    assert failed.is_file() and PASSWORD not in failed.read_text()
    assert report.read_bytes() == report_before  # the previous good report is untouched


def test_bad_database_source_error_hides_the_password(fresh_project: Path) -> None:
    set_params(fresh_project, **{"data.source": SOURCE, "data.query": "select 1"})
    checked = run(["mlops-nb", "check"], fresh_project)  # a warning: DVC would record it in dvc.lock
    assert "data.source holds a password" in checked.stderr and "dvc.lock" in checked.stderr
    assert PASSWORD not in checked.stderr + checked.stdout
    result = run(["mlops-nb", "stage", "ingest"], fresh_project, check=False)
    assert result.returncode == 1 and "error: stage 'ingest' failed" in result.stderr
    assert PASSWORD not in result.stderr + result.stdout
    assert "postgresql://reader:***@127.0.0.1:9/shop" in result.stderr
    failed = fresh_project / "reports" / "ingest.failed.ipynb"
    assert not failed.exists() or PASSWORD not in failed.read_text()
