"""Monitoring: statistical behaviour of the drift tests on three data sets (in process, against a profile built by
the library), and `mlops-nb monitor` end to end (exit codes, determinism, bad inputs) on a real pipeline run."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_diabetes

from mlops_nb.config import MonitorParams
from mlops_nb.data import open_batch, read_source
from mlops_nb.evaluate import compute_metrics, feature_importances
from mlops_nb.monitor import compare_batch
from mlops_nb.profile import build_profile
from mlops_nb.train import build_pipeline, split_xy
from mlops_nb.validate import clean, infer_schema, split_train_test

from conftest import awkward_frame, run, wait_for

RESAMPLES = 20


DATA_SETS = {
    "penguins": (lambda: read_source("sample:penguins")[0], "species", "classification"),
    "diabetes": (lambda: load_diabetes(as_frame=True, scaled=False).frame, "target", "regression"),
    "awkward": (awkward_frame, "Qualité: label?", "classification"),
}


class Fitted:
    """A data set's training split, model and reference profile, as the evaluate stage builds them."""

    def __init__(self, name: str):
        load, target, task = DATA_SETS[name]
        data = clean(load(), target=target)
        self.schema = infer_schema(data, target=target, task=task)
        self.train, test = split_train_test(data, target=target, task=task)
        self.target = target
        self.model = build_pipeline(
            self.schema, model_name="random_forest", hyperparameters={"n_estimators": 50}
        ).fit(*split_xy(self.train, self.schema))
        X_test, y_test = split_xy(test, self.schema)
        self.importances = feature_importances(self.model, X_test, y_test, schema=self.schema)
        self.profile = build_profile(
            self.train,
            schema=self.schema,
            model_sha256="0" * 64,
            importances=self.importances,
            test_predictions=self.model.predict(X_test),
            test_metrics=compute_metrics(self.model, X_test, y_test, schema=self.schema),
        )

    def resample(self, seed: int) -> pd.DataFrame:
        return self.train.sample(n=len(self.train), replace=True, random_state=seed).reset_index(drop=True)

    def continuous(self) -> list[str]:
        """Numeric features with many distinct values, most important first."""
        features = self.profile["features"]
        return [
            name
            for name in self.importances.feature
            if features[name]["kind"] == "numeric" and "values" not in features[name]
        ]


@pytest.fixture(scope="module", params=list(DATA_SETS))
def fitted(request: pytest.FixtureRequest) -> Fitted:
    return Fitted(request.param)


def test_training_data_and_bootstrap_resamples_raise_few_false_alarms(fitted: Fitted) -> None:
    itself = compare_batch(fitted.train, fitted.profile, model=fitted.model)
    assert (itself["drift_detected"], itself["retrain"]) == (False, False), itself["reasons"]
    results = [
        compare_batch(fitted.resample(seed), fitted.profile, model=fitted.model) for seed in range(RESAMPLES)
    ]
    alarms = sum(result["drift_detected"] for result in results)
    assert alarms / RESAMPLES <= 0.05, [result["drifted_features"] for result in results]
    assert not any(result["retrain"] for result in results)


def test_one_sigma_shift_of_the_most_important_numeric_feature_means_retrain(fitted: Fitted) -> None:
    feature = fitted.continuous()[0]
    batch = fitted.resample(100)
    batch[feature] = batch[feature] + batch[feature].std()
    result = compare_batch(batch.drop(columns=[fitted.target]), fitted.profile, model=fitted.model)
    assert result["drifted_features"] == [feature]
    assert (
        result["features"][feature]["test"] == "ks" and result["features"][feature]["p_value_adjusted"] < 0.05
    )
    assert result["retrain"] is True and exit_code_of(result) == 3
    assert any(feature in reason for reason in result["reasons"])


def test_a_parquet_batch_read_a_column_at_a_time_gives_the_same_result(
    fitted: Fitted, tmp_path: Path
) -> None:
    """`open_batch` reads a Parquet batch a column at a time (`ParquetBatch`): the same result as the whole frame,
    with the model's seeded sample taken from each column (here 100 rows of a shifted, labelled batch)."""
    batch = fitted.resample(7)
    feature = fitted.continuous()[0]
    batch[feature] = batch[feature] + batch[feature].std()
    path = tmp_path / "batch.parquet"
    batch.to_parquet(path, index=False)
    lazy, shown = open_batch(str(path))
    assert type(lazy).__name__ == "ParquetBatch" and shown == str(path)
    params = MonitorParams(performance_max_rows=100)
    results = [
        compare_batch(data, fitted.profile, model=fitted.model, params=params)
        for data in (lazy, pd.read_parquet(path))
    ]
    assert results[0]["performance"]["rows"] == 100 and feature in results[0]["drifted_features"]
    assert json.dumps(results[0], sort_keys=True) == json.dumps(results[1], sort_keys=True)


def exit_code_of(result: dict) -> int:
    from mlops_nb.monitor import exit_code

    return exit_code(result)


def test_categorical_skew_is_flagged(fitted: Fitted) -> None:
    categorical = [column.name for column in fitted.schema.columns if column.kind == "categorical"]
    discrete = [name for name, feature in fitted.profile["features"].items() if "values" in feature]
    name = (categorical or discrete)[0]
    batch = fitted.resample(200)
    rarest = batch[name].value_counts().index[-1]
    # Three rows in four of the batch take the rarest value of the training data.
    batch.loc[batch.index % 4 != 0, name] = rarest
    result = compare_batch(batch, fitted.profile)
    assert name in result["drifted_features"], result["features"][name]


def test_shift_of_an_ignored_feature_is_flagged_without_retrain(fitted: Fitted) -> None:
    name = fitted.importances.feature.iloc[-1]  # the lowest permutation importance
    share = compare_batch(fitted.train, fitted.profile)["features"][name]["importance_share"]
    assert share < MonitorParams().retrain.min_importance_share
    batch = fitted.resample(300).drop(columns=[fitted.target])
    if fitted.profile["features"][name]["kind"] == "numeric":
        batch[name] = batch[name] + 2 * batch[name].std()
    else:
        values = sorted(batch[name].unique())
        batch[name] = (
            batch[name]
            .map(dict(zip(values, values[1:] + values[:1], strict=True)))
            .where(batch.index % 3 != 0, values[0])
        )
    result = compare_batch(batch, fitted.profile, model=fitted.model)
    assert result["drifted_features"] == [name]
    assert result["drift_detected"] is True and result["retrain"] is False
    policy = MonitorParams(retrain={"on_ignored_feature_drift": True})
    assert compare_batch(batch, fitted.profile, model=fitted.model, params=policy)["retrain"] is True


def test_shuffled_target_is_model_drift(fitted: Fitted) -> None:
    batch = fitted.resample(400)
    batch[fitted.target] = batch[fitted.target].sample(frac=1, random_state=1).to_numpy()
    result = compare_batch(batch, fitted.profile, model=fitted.model)
    performance = result["performance"]
    assert performance["drifted"] is True and performance["relative_drop"] > 0.2
    assert result["drifted_features"] == [] and result["retrain"] is True


def test_large_samples_use_effect_sizes_from_the_bins() -> None:
    rng = np.random.default_rng(0)

    def draw(rows: int) -> pd.DataFrame:
        frame = pd.DataFrame({f"x{index}": rng.standard_normal(rows) for index in range(6)})
        frame["region"] = rng.choice(["north", "south", "east", "west"], rows)
        frame["label"] = rng.choice(["a", "b"], rows)
        return frame

    reference = draw(50_000)
    schema = infer_schema(reference, target="label", task="classification")
    profile = build_profile(reference, schema=schema)
    calm = compare_batch(draw(80_000), profile)
    assert calm["drifted_features"] == [] and {entry["test"] for entry in calm["features"].values()} == {
        "wasserstein",
        "jensenshannon",
    }
    shifted = draw(80_000)
    shifted["x1"] += 0.5
    shifted["x4"] += 0.5
    shifted["region"] = np.where(rng.random(len(shifted)) < 0.5, "north", shifted["region"])
    result = compare_batch(shifted, profile)
    assert result["drifted_features"] == ["x1", "x4", "region"]
    assert abs(result["features"]["x1"]["statistic"] - 0.5) < 0.03  # Wasserstein / std of a 0.5-sigma shift
    assert result["retrain"] is True  # no importances recorded: every drifted feature counts


# --- `mlops-nb monitor` end to end -------------------------------------------------------------------------------


def monitor(project: Path, *arguments: str) -> tuple[int, str, str]:
    result = run(["mlops-nb", "monitor", *arguments], project, check=False)
    return result.returncode, result.stdout, result.stderr


@pytest.fixture
def batches(fresh_run: Path) -> Path:
    """Batches from the run's own test split: as it is, shifted, with labels shuffled."""
    folder = fresh_run / "batches"
    folder.mkdir()
    test = pd.read_parquet(fresh_run / "data" / "prepared" / "test.parquet")
    test.to_csv(folder / "same.csv", index=False)
    shifted = test.copy()
    shifted["bill_length_mm"] += 2 * shifted["bill_length_mm"].std()
    shifted["flipper_length_mm"] += 2 * shifted["flipper_length_mm"].std()
    shifted.to_parquet(folder / "shifted.parquet", index=False)
    return folder


@pytest.mark.slow
def test_monitor_cli_exit_codes_report_and_determinism(fresh_run: Path, batches: Path) -> None:
    code, out, err = monitor(fresh_run, "--data", "batches/same.csv")
    assert code == 0, err
    drift = fresh_run / "reports" / "drift.json"
    report = fresh_run / "reports" / "monitor.ipynb"
    result = json.loads(drift.read_text())
    assert {
        "drift_detected",
        "retrain",
        "features",
        "quality",
        "performance",
        "rows",
        "model_version",
    } <= set(result)
    assert set(result["features"]) == {
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
        "year",
    }
    for entry in result["features"].values():
        assert {"drifted", "test", "statistic", "p_value", "threshold", "importance"} <= set(entry)
    assert result["model_version"] == "workspace" and result["performance"]["metric"] == "f1_macro"
    first = drift.read_bytes(), report.read_bytes()
    assert monitor(fresh_run, "--data", "batches/same.csv")[0] == 0
    assert (drift.read_bytes(), report.read_bytes()) == first  # identical inputs, identical outputs

    code, out, err = monitor(fresh_run, "--data", str(batches / "shifted.parquet"))
    assert code == 3, err
    result = json.loads(drift.read_text())
    assert {"bill_length_mm", "flipper_length_mm"} <= set(result["drifted_features"]) and result[
        "retrain"
    ] is True
    assert "RECOMMENDED" in out
    assert "bill_length_mm" in report.read_text()
    # The docs site's "Latest run" shows the latest monitoring result and its report.
    from mlops_nb.site import collect_pages, runs_index

    assert "runs/monitor" in [page.docname for page in collect_pages(fresh_run)]
    latest = runs_index(fresh_run, [])
    assert (
        "## Monitoring" in latest
        and "**retrain recommended**" in latest
        and "| bill_length_mm | **yes** |" in latest
    )


@pytest.mark.slow
def test_monitor_bad_inputs_exit_1_with_one_line_and_keep_the_last_report(
    fresh_run: Path, batches: Path
) -> None:
    assert monitor(fresh_run, "--data", "batches/same.csv")[0] == 0
    drift, report = fresh_run / "reports" / "drift.json", fresh_run / "reports" / "monitor.ipynb"
    kept = drift.read_bytes(), report.read_bytes()
    same = pd.read_csv(batches / "same.csv")
    same.drop(columns=["bill_depth_mm"]).to_csv(batches / "no_column.csv", index=False)
    (batches / "empty.csv").write_text("")
    (batches / "header.csv").write_text(",".join(same.columns) + "\n")
    text = same.astype({"body_mass_g": object})
    text.loc[3, "body_mass_g"] = "heavy"
    text.to_csv(batches / "text.csv", index=False)
    # The same mistakes in Parquet, which `mlops-nb monitor` reads a column at a time (`open_batch`).
    same.drop(columns=["bill_depth_mm"]).to_parquet(batches / "no_column.parquet", index=False)
    same.head(0).to_parquet(batches / "header.parquet", index=False)
    text.astype({"body_mass_g": "str"}).to_parquet(batches / "text.parquet", index=False)
    (batches / "broken.parquet").write_bytes(b"PAR1 cut short")
    cases = {
        ("--data", "batches/no_column.csv"): "'bill_depth_mm'",
        ("--data", "batches/empty.csv"): "empty.csv' is empty",
        ("--data", "batches/header.csv"): "header but no data rows",
        ("--data", "batches/text.csv"): "column 'body_mass_g' is numeric",
        ("--data", "batches/missing.csv"): "missing.csv' not found",
        ("--data", "batches/no_column.parquet"): "'bill_depth_mm'",
        ("--data", "batches/header.parquet"): "header but no data rows",
        ("--data", "batches/text.parquet"): "column 'body_mass_g' is numeric",
        ("--data", "batches/broken.parquet"): "not a readable Parquet file",
        ("--data", "batches/same.csv", "--version", "9.9.9"): "v9.9.9 is not registered",
    }
    for arguments, expected in cases.items():
        code, out, err = monitor(fresh_run, *arguments)
        lines = err.strip().splitlines()
        assert code == 1, (arguments, err)
        assert lines[-1].startswith("error: ") and expected in lines[-1], (arguments, err)
        assert "Traceback" not in err
        assert (drift.read_bytes(), report.read_bytes()) == kept, arguments
    assert monitor(fresh_run, "--data", "batches/same.csv", "--since", "1h")[0] == 2


@pytest.mark.slow
def test_monitor_reports_unseen_target_classes(fresh_run: Path, batches: Path) -> None:
    same = pd.read_csv(batches / "same.csv")
    same.loc[: len(same) // 2, "species"] = "Unicorn"
    same.to_csv(batches / "unicorns.csv", index=False)
    code, out, err = monitor(fresh_run, "--data", "batches/unicorns.csv")
    assert code == 3, err  # reported, not a crash: the model cannot predict a class it never saw
    result = json.loads((fresh_run / "reports" / "drift.json").read_text())
    assert result["performance"]["unseen_classes"] == {"Unicorn": len(same) // 2 + 1}


# --- the retrain loop end to end ---------------------------------------------------------------------------------

LIGHT = [
    "--set",
    "tune.n_trials=3",
    "--set",
    "train.hyperparameters.random_forest.n_estimators=40",
    "--set",
    "train.cv_folds=3",
]


def log_lines(folder: Path) -> int:
    return (
        sum(len(path.read_bytes().splitlines()) for path in folder.glob("*.jsonl")) if folder.is_dir() else 0
    )


@pytest.mark.slow
def test_the_loop_with_a_running_server_log_monitor_retrain_reload(fresh_run: Path, tmp_path: Path) -> None:
    """The whole loop on one real server (`mlops-nb serve --watch-stage prod`): its prediction log monitored,
    drifted data retrained, v1.1.0 promoted and served, a worse challenger kept out."""
    from mlops_nb.files import read_parquet
    from mlops_nb.monitor_inputs import read_prediction_log
    from mlops_nb.registry import find_version, open_version
    from mlops_nb.validate import Schema

    from serving import Server, metric, v1_instances, v2_inputs

    run(["mlops-nb", "models", "register"], fresh_run)
    run(["mlops-nb", "models", "promote", "v1.0.0", "--stage", "prod"], fresh_run)
    schema = Schema.load(fresh_run / "data" / "prepared" / "schema.json")
    test = read_parquet(fresh_run / "data" / "prepared" / "test.parquet")
    v1_rows, v2_rows = test.iloc[: len(test) // 2], test.iloc[len(test) // 2 :]
    v2_body = {"inputs": v2_inputs(v2_rows, schema.columns)}
    log = fresh_run / "logs" / "predictions"

    with Server(
        fresh_run, "--watch-stage", "prod", "--watch-interval", "0.5", log=tmp_path / "server.log"
    ) as server:
        # 1. The server's own prediction log, monitored (V1 and V2 requests; a truncated line appended).
        status, v1_answer, _ = server.call(
            "POST", "/v1/models/model:predict", {"instances": v1_instances(v1_rows, schema.columns)}
        )
        assert status == 200 and v1_answer["model_version"] == "v1.0.0", v1_answer
        status, v2_answer, _ = server.call("POST", "/v2/models/model/infer", v2_body)
        assert status == 200 and v2_answer["model_version"] == "v1.0.0", v2_answer
        wait_for(lambda: log_lines(log) == len(test), timeout=30, what="the prediction log")
        newest = max(log.glob("*.jsonl"))
        with open(newest, "a", encoding="utf-8") as stream:
            stream.write(newest.read_text().splitlines()[0][:50])  # a crash mid-line
        code, out, err = monitor(fresh_run, "--predictions", "logs/predictions/", "--stage", "prod")
        assert code == 0, err
        result = json.loads((fresh_run / "reports" / "drift.json").read_text())
        assert result["rows"] == len(test) and result["quality"]["skipped_lines"] == 1, result["quality"]
        assert (
            result["quality"]["model_versions"] == {"v1.0.0": len(test)}
            and result["model_version"] == "v1.0.0"
        )
        assert result["drifted_features"] == [] and result["prediction"]["drifted"] is False
        answered = v1_answer["predictions"] + next(
            output["data"] for output in v2_answer["outputs"] if output["name"] == "predict"
        )
        assert read_prediction_log(log).predictions.tolist() == answered  # one line per row, in request order
        assert (
            metric(server.metrics(), "mlops_nb_retrain_recommended") == 0
        )  # the gauges follow reports/drift.json

        # 2. Drifted data: retrain, register v1.1.0, promote it; the watching server reloads it.
        drifted = read_source("sample:penguins")[0]
        for name in ("bill_length_mm", "flipper_length_mm"):
            drifted[name] = drifted[name] + drifted[name].std()
        drifted.to_csv(tmp_path / "drifted.csv", index=False)
        result = run(["mlops-nb", "retrain", "--data", str(tmp_path / "drifted.csv"), *LIGHT], fresh_run)
        assert "v1.1.0 is now in stage prod" in result.stdout, result.stdout
        for step in (
            "monitor: exit 3",
            "branch:",
            "data: replace",
            "repro:",
            "commit:",
            "register: registered model@v1.1.0",
            "compare: f1_macro",
            "promote: v1.1.0 promoted",
        ):
            assert step in result.stdout, (step, result.stdout)
        wait_for(
            lambda: server.call("POST", "/v2/models/model/infer", v2_body)[1]["model_version"] == "v1.1.0",
            what="the server to serve v1.1.0",
        )
        assert (
            metric(server.metrics(), "mlops_nb_retrain_recommended") == 1
        )  # the retrain's monitor run said so

        # 3. A worse challenger (a one-split stump) is registered but not promoted: the server keeps v1.1.0.
        result = run(
            [
                "mlops-nb",
                "retrain",
                "--data",
                str(tmp_path / "drifted.csv"),
                "--force",
                *LIGHT,
                "--set",
                "train.hyperparameters.random_forest.max_depth=1",
                "--set",
                "train.hyperparameters.random_forest.n_estimators=3",
            ],
            fresh_run,
        )
        assert "v1.2.0 registered but not promoted; v1.1.0 stays in stage prod" in result.stdout, (
            result.stdout
        )
        time.sleep(2)  # four watch intervals
        status, answer, _ = server.call("POST", "/v2/models/model/infer", v2_body)
        assert status == 200 and answer["model_version"] == "v1.1.0"
        samples = server.metrics()
    assert metric(samples, "mlops_nb_model_reloads_total", result="success") == 1
    assert find_version(stage="prod", root=fresh_run).version == "v1.1.0"
    branch = run(["git", "branch", "--show-current"], fresh_run).stdout.strip()
    assert branch.startswith("retrain/replace-")
    record = json.loads((fresh_run / "logs" / "retrain" / f"{branch.replace('/', '-')}.json").read_text())
    assert record["promoted"] is False and record["champion"] == "v1.1.0" and record["challenger"] == "v1.2.0"
    # The profile is part of the version: `models get` fetches it with the model.
    run(["mlops-nb", "models", "get", "--stage", "prod", "--out", str(tmp_path / "prod")], fresh_run)
    card = json.loads((tmp_path / "prod" / "card.json").read_text())
    assert (
        json.loads((tmp_path / "prod" / "profile.json").read_text())["model_sha256"]
        == card["artifact"]["sha256"]
    )
    assert card["data"]["source"].startswith("data/retrain/")

    # The workspace now holds v1.2.0; a profile of v1.0.0 put beside it is refused, naming both versions.
    old = open_version(find_version("v1.0.0", root=fresh_run), root=fresh_run).read_text(
        "models/profile.json"
    )
    (fresh_run / "models" / "profile.json").write_text(old)
    code, out, err = monitor(fresh_run, "--data", str(tmp_path / "drifted.csv"))
    assert code == 1 and "v1.0.0" in err and "v1.2.0" in err, err
    # Monitoring a registered version reads its own profile at its commit.
    assert monitor(fresh_run, "--data", str(tmp_path / "drifted.csv"), "--stage", "prod")[0] == 0


@pytest.mark.slow
def test_retrain_step_failure_promotes_nothing(fresh_run: Path, tmp_path: Path) -> None:
    run(["mlops-nb", "models", "register"], fresh_run)
    run(["mlops-nb", "models", "promote", "v1.0.0", "--stage", "prod"], fresh_run)
    drifted = read_source("sample:penguins")[0]
    drifted["bill_length_mm"] = drifted["bill_length_mm"] + 2 * drifted["bill_length_mm"].std()
    drifted.to_csv(tmp_path / "drifted.csv", index=False)
    result = run(
        [
            "mlops-nb",
            "retrain",
            "--data",
            str(tmp_path / "drifted.csv"),
            "--set",
            "train.model=no_such_model",
        ],
        fresh_run,
        check=False,
    )
    assert result.returncode == 1
    assert "no_such_model" in result.stderr.strip().splitlines()[-1]
    assert "FAILED" not in result.stdout  # the error line is the one line; the log has the failed step
    from mlops_nb.registry import find_version, list_versions

    assert [found.version for found in list_versions(root=fresh_run)] == ["v1.0.0"]
    assert find_version(stage="prod", root=fresh_run).version == "v1.0.0"
