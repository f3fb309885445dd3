"""The trusted-type list of mlops_nb.artifacts covers every model of the zoo with every feature setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_nb.artifacts import load_model, save_model, untrusted_types
from mlops_nb.config import FeaturesParams
from mlops_nb.data import read_source
from mlops_nb.models import available_models
from mlops_nb.train import build_pipeline, split_xy
from mlops_nb.validate import clean, infer_schema

DATA = {"classification": ("sample:penguins", "species"), "regression": ("sample:diabetes", "target")}
FEATURES = [
    FeaturesParams(),
    FeaturesParams(scale="robust", categorical_impute="constant", one_hot_max_categories=2),
    FeaturesParams(numeric_impute="mean", categorical_encoding="ordinal", one_hot_max_categories=2),
]
SMALL = {
    "random_forest": {"n_estimators": 3},
    "extra_trees": {"n_estimators": 3},
    "hist_gradient_boosting": {"max_iter": 5},
}


@pytest.mark.parametrize(("task", "name"), [(task, name) for task in DATA for name in available_models(task)])
def test_every_zoo_model_saves_and_loads(task: str, name: str, tmp_path: Path) -> None:
    source, target = DATA[task]
    frame = clean(read_source(source)[0], target=target)
    schema = infer_schema(frame, target=target, task=task)
    X, y = split_xy(frame, schema)
    for features in FEATURES:
        pipeline = build_pipeline(
            schema, model_name=name, hyperparameters=SMALL.get(name), features=features
        ).fit(X, y)
        digest = save_model(pipeline, tmp_path / "model.skops")
        assert untrusted_types(tmp_path / "model.skops") == []
        loaded = load_model(tmp_path / "model.skops", expected_sha256=digest)
        assert (loaded.predict(X) == pipeline.predict(X)).all()


@pytest.mark.parametrize("mode", ["expand", "timestamp"])
def test_a_model_with_date_features_saves_and_loads(mode: str, tmp_path: Path) -> None:
    import pandas as pd

    from mlops_nb.roles import assign_roles

    raw = read_source("sample:penguins")[0].assign(
        seen=pd.date_range("2007-05-01", periods=344, freq="D").strftime("%Y-%m-%d")
    )
    frame, roles = assign_roles(raw, target="species", datetime=mode)
    frame = clean(frame, target="species")
    schema = infer_schema(frame, target="species", task="classification", roles=roles)
    assert schema.datetime_columns == ["seen"]
    X, y = split_xy(frame, schema)
    pipeline = build_pipeline(
        schema,
        model_name="random_forest",
        hyperparameters=SMALL["random_forest"],
        features=FeaturesParams(datetime=mode),
    ).fit(X, y)
    digest = save_model(pipeline, tmp_path / "model.skops")
    assert untrusted_types(tmp_path / "model.skops") == []
    loaded = load_model(tmp_path / "model.skops", expected_sha256=digest)
    assert (loaded.predict(X) == pipeline.predict(X)).all()
    as_text = X.assign(seen=X.seen.dt.strftime("%Y-%m-%d"))  # dates as a server receives them
    assert (loaded.predict(as_text) == pipeline.predict(X)).all()
