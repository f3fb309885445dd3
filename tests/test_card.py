"""The model card: cards written by earlier releases still load; the train stage's card identifies its code and data
by the md5s `dvc.lock` records, with no clock time and no commit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from mlops_nb.card import ModelCard

FIXTURES = Path(__file__).parent / "fixtures"
# Written by `dvc repro` of main at 2db353c (before ModelCard): created_at, the training commit, no dependencies.
OLD_CARD = FIXTURES / "card-main-2db353c.json"


def test_card_written_by_earlier_main_loads(tmp_path: Path) -> None:
    raw = json.loads(OLD_CARD.read_text())
    card = ModelCard.load(OLD_CARD)
    assert card.created == raw["created_at"] and card.git.commit == raw["git"]["commit"]
    assert (
        card.model.name == "random_forest" and card.model.hyperparameters == raw["model"]["hyperparameters"]
    )
    assert card.lineage.source == "sample:penguins" and card.lineage.sha256 == raw["data"]["sha256"]
    assert card.schema.feature_columns == [column["name"] for column in raw["schema"]["columns"]]
    assert card.artifact.sha256 == raw["artifact"]["sha256"] and card.tuning == raw["tuning"]
    assert card.dependencies == {} and card.profile is None and card.onnx is None
    markdown = card.to_markdown()
    assert (
        "# Model card: random_forest (not registered)" in markdown
        and "## Cross-validation metrics" in markdown
    )
    # Saved again, the old card keeps what it held (its ingestion time stays in its lineage record).
    card.save(tmp_path / "card.json")
    again = json.loads((tmp_path / "card.json").read_text())
    assert (
        again["data"] == raw["data"]
        and again["schema"] == raw["schema"]
        and again["created"] == raw["created_at"]
    )


def test_registered_old_card_gets_version_fields() -> None:
    card = ModelCard.load(OLD_CARD).with_version(
        "v1.2.0", created="2026-11-25T17:00:00+00:00", commit="f" * 40, test_metrics={"accuracy": 1.0}
    )
    assert (card.version, card.created, card.git.commit, card.test_metrics) == (
        "v1.2.0",
        "2026-11-25T17:00:00+00:00",
        "f" * 40,
        {"accuracy": 1.0},
    )
    assert "## Test metrics" in card.to_markdown()


@pytest.mark.slow
def test_train_card_has_no_clock_time_or_commit(pipeline_project: Path) -> None:
    raw = json.loads((pipeline_project / "models" / "card.json").read_text())
    assert raw["created"] is None and raw["git"] is None and raw["version"] is None
    lock = yaml.safe_load((pipeline_project / "dvc.lock").read_text())
    locked = {dep["path"]: dep["md5"] for dep in lock["stages"]["train"]["deps"]}
    assert raw["dependencies"] == locked
    card = ModelCard.load(pipeline_project / "models" / "card.json")
    assert card.artifact.path == "models/model.skops" and card.schema.task == "classification"
