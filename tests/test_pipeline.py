"""The pipeline end to end with the real dvc, papermill and Jupyter kernel: caching, experiments, determinism, data sets."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from mlops_nb.stage import stage_parameters

from conftest import REPO_ROOT, awkward_frame, run, set_params, stage_names

pytestmark = pytest.mark.slow
STAGES = stage_names()
LIGHT = {"tune.n_trials": 3, "train.hyperparameters.random_forest.n_estimators": 40, "train.cv_folds": 3}


def ran_stages(output: str) -> list[str]:
    return [stage for stage in STAGES if f"Running stage '{stage}'" in output]


def test_default_run_writes_flat_metrics_and_reports(pipeline_project: Path) -> None:
    metrics = json.loads((pipeline_project / "reports" / "metrics.json").read_text())
    assert set(metrics) >= {"accuracy", "precision_macro", "recall_macro", "f1_macro", "roc_auc"}
    assert all(isinstance(value, (int, float)) for value in metrics.values())
    assert metrics["accuracy"] > 0.9
    for stage in STAGES:
        report = nbformat.read(pipeline_project / "reports" / f"{stage}.ipynb", as_version=4)
        # papermill injected exactly the stage's params from params.yaml (none for a stage without params).
        assert report.metadata.papermill["parameters"] == stage_parameters(stage, root=pipeline_project), (
            stage
        )
        assert "start_time" not in report.metadata.papermill
    card = json.loads((pipeline_project / "models" / "card.json").read_text())
    assert card["data"]["source"] == "sample:penguins" and len(card["data"]["sha256"]) == 64
    assert card["model"]["hyperparameters"]["n_estimators"] == 200
    assert card["tuning"]["n_trials"] == 15


def test_repro_again_runs_nothing(pipeline_project: Path) -> None:
    result = run(["dvc", "repro"], pipeline_project)
    assert ran_stages(result.stdout + result.stderr) == []
    assert "Data and pipelines are up to date" in result.stdout


def test_experiment_reruns_only_what_reads_the_parameter(fresh_run: Path) -> None:
    result = run(
        ["dvc", "exp", "run", "-S", "train.hyperparameters.random_forest.n_estimators=300"], fresh_run
    )
    assert ran_stages(result.stdout) == ["train", "evaluate", "export"]
    shown = json.loads(run(["dvc", "exp", "show", "--json"], fresh_run).stdout)
    assert "300" in json.dumps(shown)
    # What a reader compares, test metrics first: no per-column data-quality figures among the metrics.
    assert list(shown[0]["data"]["metrics"]) == ["reports/metrics.json", "reports/cv_metrics.json"]
    params_diff = run(["dvc", "params", "diff", "--json"], fresh_run).stdout
    changed = json.loads(params_diff)["params.yaml"]["train.hyperparameters.random_forest.n_estimators"]
    assert (changed["old"], changed["new"]) == (200, 300)
    metrics_diff = json.loads(run(["dvc", "metrics", "diff", "--all", "--json"], fresh_run).stdout)
    assert "reports/metrics.json" in metrics_diff
    template = REPO_ROOT / ".cache" / "vega" / "plots.html"
    assert template.is_file(), "the offline page template is missing: `make plots-template` builds it"
    run(["dvc", "config", "--local", "plots.html_template", str(template)], fresh_run)
    shown = run(["dvc", "plots", "show", "-o", "plots_html"], fresh_run)
    assert "failed to load" not in shown.stdout + shown.stderr, shown.stdout + shown.stderr
    plots = json.loads(run(["dvc", "plots", "show", "--json"], fresh_run).stdout)
    assert "errors" not in plots and {
        "reports/plots/confusion/confusion.csv",
        "reports/plots/roc/roc.csv",
        "Residuals",
    } <= set(plots["data"])
    page = (fresh_run / "plots_html" / "index.html").read_text()
    assert "Confusion matrix" in page and "Feature importance" in page and "Residuals" in page
    assert "cdn.jsdelivr" not in page and "vega-embed 6.18.2" in page
    if shutil.which("chromium"):  # `make test` installs it: the charts are drawn with no network
        with tempfile.TemporaryDirectory() as profile:
            dom = subprocess.run(
                [
                    "chromium",
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    f"--user-data-dir={profile}",
                    "--virtual-time-budget=5000",
                    "--dump-dom",
                    (fresh_run / "plots_html" / "index.html").as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=120,
            ).stdout
        assert dom.count("<canvas") + dom.count("<svg") >= 4, dom[-2000:]
    run(["dvc", "plots", "diff", "HEAD", "-o", "plots_diff"], fresh_run)
    assert (fresh_run / "plots_diff" / "index.html").is_file()


def test_switching_model_needs_no_other_edit(fresh_run: Path) -> None:
    # One OpenMP thread: hist gradient boosting's threads spin against each other on a small, busy machine.
    command = [
        "dvc",
        "exp",
        "run",
        "-S",
        "train.model=hist_gradient_boosting",
        "-S",
        "tune.n_trials=2",
        "-S",
        "train.cv_folds=2",
    ]
    result = run(command, fresh_run, OMP_NUM_THREADS="1")
    assert ran_stages(result.stdout) == ["tune", "train", "evaluate", "export"]
    card = json.loads((fresh_run / "models" / "card.json").read_text())
    assert card["model"]["name"] == "hist_gradient_boosting"
    assert card["model"]["hyperparameters"]["max_iter"] == 200  # train.hyperparameters.hist_gradient_boosting
    assert set(json.loads((fresh_run / "models" / "best_params.json").read_text())["best_params"]) == {
        "learning_rate",
        "max_leaf_nodes",
    }


def test_regression_data_set(fresh_project: Path) -> None:
    from sklearn.datasets import load_diabetes

    (fresh_project / "data" / "external").mkdir(parents=True, exist_ok=True)
    load_diabetes(as_frame=True, scaled=False).frame.to_csv(
        fresh_project / "data" / "external" / "diabetes.csv", index=False
    )
    set_params(
        fresh_project, **LIGHT, **{"data.source": "data/external/diabetes.csv", "data.target": "target"}
    )
    run(["dvc", "repro"], fresh_project)
    metrics = json.loads((fresh_project / "reports" / "metrics.json").read_text())
    assert set(metrics) == {"rmse", "mae", "r2", "test_rows"}
    assert metrics["r2"] > 0.2
    assert (
        json.loads((fresh_project / "data" / "prepared" / "schema.json").read_text())["task"] == "regression"
    )
    assert (fresh_project / "reports" / "plots" / "residuals.csv").is_file()
    # Only the plots a regression has are declared (the classification-only folders stay empty): `dvc plots show`
    # loads every one, and so does `dvc plots diff` at the committed run, where git keeps those folders by their .keep.
    assert not any((fresh_project / "reports" / "plots" / "confusion").glob("*.csv"))
    run(["git", "add", "-A"], fresh_project)
    run(["git", "commit", "-qm", "regression run"], fresh_project)
    for command in (["dvc", "plots", "show", "--json"], ["dvc", "plots", "diff", "HEAD", "--json"]):
        result = run(command, fresh_project)
        plots = json.loads(result.stdout)
        assert "errors" not in plots and "failed to load" not in result.stderr, (
            command,
            result.stdout[-2000:],
            result.stderr,
        )
        assert "Residuals" in plots["data"] and "Feature importance" in plots["data"], sorted(plots["data"])
        assert not [name for name in plots["data"] if "confusion" in name or "roc" in name], sorted(
            plots["data"]
        )


def test_awkward_column_names_and_string_labels(fresh_project: Path) -> None:
    frame = awkward_frame()
    (fresh_project / "data" / "external").mkdir(parents=True, exist_ok=True)
    frame.to_csv(fresh_project / "data" / "external" / "awkward file.csv", index=False)
    set_params(
        fresh_project,
        **LIGHT,
        **{"data.source": "data/external/awkward file.csv", "data.target": "Qualité: label?"},
    )
    run(["dvc", "repro"], fresh_project)
    metrics = json.loads((fresh_project / "reports" / "metrics.json").read_text())
    assert metrics["accuracy"] > 0.6
    schema = json.loads((fresh_project / "data" / "prepared" / "schema.json").read_text())
    assert schema["classes"] == ["bad / worse", "so-so", "très bon"]
    assert [column["name"] for column in schema["columns"]] == [
        "Bill length (mm)",
        "île",
        "body-mass/g%",
        "a b  c",
    ]


def test_sqlite_source(fresh_project: Path) -> None:
    import palmerpenguins

    with sqlite3.connect(fresh_project / "penguins.db") as connection:
        palmerpenguins.load_penguins().to_sql("penguins", connection, index=False)
    set_params(
        fresh_project,
        **{"data.source": "sqlite:///penguins.db", "data.query": "SELECT * FROM penguins WHERE year > 2007"},
    )
    run(["dvc", "repro", "prepare"], fresh_project)
    lineage = json.loads((fresh_project / "data" / "raw" / "lineage.json").read_text())
    assert lineage["kind"] == "sql" and lineage["rows"] == 234
    assert len(pd.read_parquet(fresh_project / "data" / "prepared" / "train.parquet")) > 150


def test_stage_with_a_jupyter_kernel_engine(fresh_run: Path) -> None:
    run(["mlops-nb", "stage", "prepare", "--engine", "kernel"], fresh_run)
    report = nbformat.read(fresh_run / "reports" / "prepare.ipynb", as_version=4)
    assert any(cell.get("outputs") for cell in report.cells if cell.cell_type == "code")


def onnx_agreement(pipeline: object, schema: object, test: pd.DataFrame) -> float:
    """The share of `test` rows on which the pipeline converted by skl2onnx, run by onnxruntime, predicts as it does."""
    import onnxruntime
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    from mlops_nb.features import register_onnx_converter

    register_onnx_converter()
    types = [
        (
            column,
            FloatTensorType([None, 1]) if column in schema.numeric_columns else StringTensorType([None, 1]),
        )
        for column in schema.feature_columns
    ]
    model = to_onnx(pipeline, initial_types=types, options={"zipmap": False})
    session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = {
        column: test[[column]].to_numpy(dtype=np.float32 if column in schema.numeric_columns else object)
        for column in schema.feature_columns
    }
    labels = session.run(None, inputs)[0]
    return float((np.asarray(labels) == pipeline.predict(test[schema.feature_columns])).mean())


def test_fitted_pipeline_converts_to_onnx(pipeline_project: Path) -> None:
    from mlops_nb.artifacts import load_model
    from mlops_nb.validate import Schema

    card = json.loads((pipeline_project / "models" / "card.json").read_text())
    pipeline = load_model(
        pipeline_project / "models" / "model.skops", expected_sha256=card["artifact"]["sha256"]
    )
    schema = Schema.load(pipeline_project / "data" / "prepared" / "schema.json")
    test = pd.read_parquet(pipeline_project / "data" / "prepared" / "test.parquet")
    assert onnx_agreement(pipeline, schema, test) > 0.98


def test_ordinal_encoding_converts_to_onnx(pipeline_project: Path) -> None:
    from mlops_nb.config import FeaturesParams
    from mlops_nb.train import build_pipeline, split_xy
    from mlops_nb.validate import Schema

    schema = Schema.load(pipeline_project / "data" / "prepared" / "schema.json")
    train = pd.read_parquet(pipeline_project / "data" / "prepared" / "train.parquet")
    test = pd.read_parquet(pipeline_project / "data" / "prepared" / "test.parquet")
    pipeline = build_pipeline(
        schema,
        model_name="random_forest",
        hyperparameters={"n_estimators": 30},
        features=FeaturesParams(categorical_encoding="ordinal"),
    ).fit(*split_xy(train, schema))
    assert pipeline.named_steps["features"].named_transformers_["categorical"].steps[-1][0] == "ordinal"
    # An island the model never saw is coded -1 and still converts and predicts.
    assert onnx_agreement(pipeline, schema, pd.concat([test, test.head(3).assign(island="Atlantis")])) > 0.98
