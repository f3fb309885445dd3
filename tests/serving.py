"""Helpers of the serving tests: a real `mlops-nb serve` subprocess on a free loopback port, plain HTTP calls, small
model projects trained directly through the library, and /metrics parsed with prometheus_client's parser."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from prometheus_client.parser import text_string_to_metric_families

from conftest import command_env

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """`mlops-nb serve ARGS` in `project`, started on a free port, stopped on exit."""

    def __init__(
        self, project: Path, *arguments: str, env: dict[str, str] | None = None, log: Path | None = None
    ):
        self.project = project
        self.arguments = arguments
        self.env = env or {}
        self.port = free_port()
        self.output = log or project / f"server-{self.port}.log"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 120) -> Server:
        with open(self.output, "wb") as output:
            self.process = subprocess.Popen(
                [str(BIN / "mlops-nb"), "serve", "--port", str(self.port), *self.arguments],
                cwd=self.project,
                env=command_env(**self.env),
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited with {self.process.returncode}:\n{self.log()}")
            try:
                if self.call("GET", "/v2/health/ready")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server did not get ready in {timeout} s:\n{self.log()}")

    def log(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def call(
        self,
        method: str,
        path: str,
        body: bytes | str | dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """One request on a new connection: (status, parsed JSON or text, headers)."""
        headers = dict(headers or {})
        if isinstance(body, dict):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            raw = response.read()
        finally:
            connection.close()
        kind = response.getheader("content-type", "")
        content = json.loads(raw) if kind.startswith("application/json") else raw.decode()
        return response.status, content, {key.lower(): value for key, value in response.getheaders()}

    def metrics(self) -> dict[tuple[str, tuple], float]:
        status, text, _ = self.call("GET", "/metrics")
        assert status == 200
        return parse_metrics(text)


def parse_metrics(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a /metrics page as {(name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(samples: dict[tuple[str, tuple], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def v1_instances(frame: pd.DataFrame, columns: list[Any]) -> list[dict[str, Any]]:
    """Rows as V1 instances: a missing number or category (NaN or "") as null."""
    instances = []
    for row in frame.to_dict(orient="records"):
        instance = {}
        for column in columns:
            value = row[column.name]
            missing = value == "" if column.kind == "categorical" else pd.isna(value)
            instance[column.name] = None if missing else (float(value) if column.kind == "numeric" else value)
        instances.append(instance)
    return instances


def v2_inputs(frame: pd.DataFrame, columns: list[Any]) -> list[dict[str, Any]]:
    """The columns of `frame` as V2 JSON inputs, missing values as null."""
    instances = v1_instances(frame, columns)
    return [
        {
            "name": column.name,
            "shape": [len(frame)],
            "datatype": "FP64" if column.kind == "numeric" else "BYTES",
            "data": [instance[column.name] for instance in instances],
        }
        for column in columns
    ]


def model_project(
    destination: Path,
    frame: pd.DataFrame,
    *,
    target: str,
    model_name: str = "random_forest",
    hyperparameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A project folder holding only what `mlops-nb serve` reads (models/ with card, skops, ONNX export), trained
    directly through the library on `frame`; returns the pipeline, schema and test split."""
    from mlops_nb.artifacts import save_model
    from mlops_nb.files import write_json
    from mlops_nb.serve_runtime import ONNX_FOLDER, export_onnx
    from mlops_nb.train import build_pipeline, split_xy
    from mlops_nb.validate import check_dataset, clean, infer_schema, split_train_test

    task = check_dataset(frame, target=target)
    cleaned = clean(frame, target=target)
    schema = infer_schema(cleaned, target=target, task=task)
    train, test = split_train_test(cleaned, target=target, task=task)
    pipeline = build_pipeline(
        schema, model_name=model_name, hyperparameters=hyperparameters or {"n_estimators": 30}
    ).fit(*split_xy(train, schema))
    destination.mkdir(parents=True, exist_ok=True)
    (destination / "params.yaml").write_text("{}\n")
    (destination / "dvc.yaml").write_text("stages: {}\n")
    sha256 = save_model(pipeline, destination / "models" / "model.skops")
    write_json(
        {
            "schema": schema.model_dump(mode="json"),
            "artifact": {"path": "models/model.skops", "sha256": sha256},
        },
        destination / "models" / "card.json",
    )
    parity = export_onnx(pipeline, schema, test, destination / ONNX_FOLDER)
    return {"project": destination, "pipeline": pipeline, "schema": schema, "test": test, "parity": parity}


def copy_served_files(project: Path, destination: Path) -> Path:
    """The files `mlops-nb serve` needs from a pipeline project, copied (never linked) to `destination`."""
    destination.mkdir(parents=True)
    for name in ("params.yaml", "dvc.yaml"):
        shutil.copy(project / name, destination / name)
    shutil.copytree(project / "models", destination / "models", symlinks=False)
    return destination


def expected_predictions(
    pipeline: Any, schema: Any, frame: pd.DataFrame
) -> tuple[list[Any], np.ndarray | None]:
    """What the in-process scikit-learn pipeline predicts for `frame` (and its probabilities for a classifier)."""
    from mlops_nb.train import split_xy

    X = split_xy(frame, schema)[0]
    probabilities = pipeline.predict_proba(X) if schema.task == "classification" else None
    return pipeline.predict(X).tolist(), probabilities
