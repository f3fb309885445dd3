"""The shipped Prometheus config, alert rules and Grafana dashboard: promtool accepts and unit-tests them, and every
metric they name is one the server exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from conftest import REPO_ROOT
from serving import model_project, parse_metrics, v1_instances

PROMETHEUS = REPO_ROOT / "deploy" / "prometheus"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "mlops_nb_serving.json"
METRIC_NAME = re.compile(r"\bmlops_nb_[a-z_]+")


def promtool(*arguments: str) -> subprocess.CompletedProcess:
    tool = shutil.which("promtool")
    assert tool, "promtool missing: `make test` installs Debian's prometheus package"
    return subprocess.run([tool, *arguments], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120)


def test_promtool_accepts_the_config_and_the_alerts_fire_as_tested() -> None:
    checked = promtool("check", "config", "prometheus.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr
    alerts = {
        rule["alert"]
        for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert {"MlopsNbHighErrorRate", "MlopsNbHighLatencyP99", "MlopsNbRetrainRecommended"} <= alerts


@pytest.fixture(scope="module")
def exported_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The metric names of a server that answered one request, with a drift result present."""
    from fastapi.testclient import TestClient

    from mlops_nb.data import read_source
    from mlops_nb.serve import ServeSettings, create_app

    made = model_project(
        tmp_path_factory.mktemp("deploy") / "project",
        read_source("sample:penguins")[0],
        target="species",
        hyperparameters={"n_estimators": 5},
    )
    (made["project"] / "reports").mkdir()
    (made["project"] / "reports" / "drift.json").write_text(
        json.dumps(
            {
                "drift_detected": False,
                "retrain": False,
                "features": {"island": {"drifted": False, "statistic": 0.1}},
            }
        )
    )
    settings = ServeSettings(root=made["project"], prediction_log=False)
    with TestClient(create_app(settings)) as client:
        instances = v1_instances(made["test"].head(2), made["schema"].columns)
        instances[0]["island"] = "Atlantis"  # an unseen category, counted
        assert client.post("/v1/models/model:predict", json={"instances": instances}).status_code == 200
        assert client.post("/v2/repository/models/model/load").status_code == 200
        assert client.post("/v1/models/model:predict", json={"instances": []}).status_code == 400
        samples = parse_metrics(client.get("/metrics").text)
    return {name for name, _ in samples}


def test_every_metric_in_the_alerts_and_the_dashboard_is_exported(exported_names: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    titles = " ".join(panel["title"] for panel in dashboard["panels"]).lower()
    for wanted in ("request rate", "errors", "p50", "p99", "predictions by class", "model version"):
        assert wanted in titles, wanted
    expressions += [
        rule["expr"]
        for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    ]
    named = {name for expression in expressions for name in METRIC_NAME.findall(expression)}
    # Counters are exported as NAME_total, histograms as NAME_bucket/_sum/_count: all appear in the parsed samples.
    missing = sorted(named - exported_names)
    assert not missing, f"named but not exported: {missing}"
    assert len(named) >= 10
