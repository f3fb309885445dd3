"""Serving models trained directly through the library (no pipeline run): the diabetes regression set and a data
set with awkward column names and text labels, through tritonclient (V2) and plain HTTP (V1); token auth; sha256
checks at start and at reload; two workers counting every request."""

from __future__ import annotations

import subprocess
import threading
import time

import numpy as np
import pandas as pd
import pytest

from conftest import awkward_frame, command_env
from serving import (
    BIN,
    Server,
    copy_served_files,
    expected_predictions,
    free_port,
    metric,
    model_project,
    v1_instances,
    v2_inputs,
)


@pytest.fixture(scope="module")
def diabetes(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from sklearn.datasets import load_diabetes

    frame = load_diabetes(as_frame=True, scaled=False).frame
    return model_project(tmp_path_factory.mktemp("diabetes") / "project", frame, target="target")


@pytest.fixture(scope="module")
def awkward(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return model_project(
        tmp_path_factory.mktemp("awkward") / "project", awkward_frame(), target="Qualité: label?"
    )


def triton_predict(server: Server, schema, test: pd.DataFrame, *, binary: bool) -> tuple[np.ndarray, dict]:
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=server.address)
    inputs = []
    for column in schema.columns:
        tensor = triton.InferInput(column.name, [len(test)], "FP64" if column.kind == "numeric" else "BYTES")
        tensor.set_data_from_numpy(
            test[column.name].to_numpy(dtype=np.float64 if column.kind == "numeric" else object),
            binary_data=binary,
        )
        inputs.append(tensor)
    result = client.infer(
        "model", inputs, outputs=[triton.InferRequestedOutput("predict", binary_data=binary)]
    )
    return result.as_numpy("predict"), result.get_response()


def test_regression_served_through_onnx_matches_the_pipeline(diabetes: dict) -> None:
    schema, test = diabetes["schema"], diabetes["test"]
    assert diabetes["parity"]["passed"], diabetes["parity"]
    expected = np.asarray(expected_predictions(diabetes["pipeline"], schema, test)[0])
    tolerance = diabetes["parity"]["tolerance"] * np.maximum(1.0, np.abs(expected))
    with Server(diabetes["project"], "--no-prediction-log") as server:
        for binary in (
            True,
            False,
        ):  # diabetes has no missing values: JSON numbers work through tritonclient too
            predicted, response = triton_predict(server, schema, test, binary=binary)
            assert (
                response["outputs"][0]["datatype"] == "FP64" and response["parameters"]["runtime"] == "onnx"
            )
            assert np.all(np.abs(predicted - expected) <= tolerance)
        status, answer, _ = server.call(
            "POST", "/v1/models/model:predict", {"instances": v1_instances(test, schema.columns)}
        )
        assert status == 200 and "probabilities" not in answer
        assert np.all(np.abs(np.asarray(answer["predictions"]) - expected) <= tolerance)
        status, answer, _ = server.call(
            "POST",
            "/v2/models/model/infer",
            {"inputs": v2_inputs(test, schema.columns), "outputs": [{"name": "predict_proba"}]},
        )
        assert status == 400 and "unknown output(s) 'predict_proba'" in answer["error"]
        samples = server.metrics()
        assert metric(samples, "mlops_nb_prediction_value_count") == 3 * len(test)


def test_awkward_names_and_text_labels(awkward: dict) -> None:
    schema, test = awkward["schema"], awkward["test"]
    labels = expected_predictions(awkward["pipeline"], schema, test)[0]
    with Server(awkward["project"], "--no-prediction-log") as server:
        status, metadata, _ = server.call("GET", "/v2/models/model")
        assert [tensor["name"] for tensor in metadata["inputs"]] == [
            "Bill length (mm)",
            "île",
            "body-mass/g%",
            "a b  c",
        ]
        predicted, _ = triton_predict(server, schema, test, binary=True)
        assert [value.decode() if isinstance(value, bytes) else value for value in predicted] == labels
        status, answer, _ = server.call(
            "POST", "/v1/models/model:predict", {"instances": v1_instances(test, schema.columns)}
        )
        assert status == 200 and answer["predictions"] == labels, answer
        assert answer["classes"] == ["bad / worse", "so-so", "très bon"]
        row = v1_instances(test.head(1), schema.columns)[0]
        status, answer, _ = server.call(
            "POST", "/v1/models/model:predict", {"instances": [row, {**row, "body-mass/g%": "lourd"}]}
        )
        assert status == 400 and "input 'body-mass/g%', instance 1" in answer["error"]
        assert 'feature="île"' not in server.call("GET", "/metrics")[1]


def test_token_protects_inference_and_reload_not_health_or_metrics(awkward: dict) -> None:
    token = "s3cret-token-value"
    body = {"instances": v1_instances(awkward["test"].head(2), awkward["schema"].columns)}
    with Server(awkward["project"], "--no-prediction-log", env={"MLOPS_NB_API_TOKEN": token}) as server:
        assert server.call("POST", "/v1/models/model:predict", body)[0] == 401
        status, answer, headers = server.call(
            "POST", "/v1/models/model:predict", body, headers={"Authorization": "Bearer wrong"}
        )
        assert (
            status == 401
            and "Authorization: Bearer" in answer["error"]
            and headers["www-authenticate"] == "Bearer"
        )
        assert server.call("POST", "/v2/repository/models/model/load")[0] == 401
        assert (
            server.call(
                "POST", "/v1/models/model:predict", body, headers={"Authorization": f"Bearer {token}"}
            )[0]
            == 200
        )
        assert (
            server.call(
                "POST", "/v2/repository/models/model/load", headers={"Authorization": f"Bearer {token}"}
            )[0]
            == 200
        )
        assert server.call("GET", "/v2/health/live")[0] == 200 and server.call("GET", "/metrics")[0] == 200
        assert token not in server.log()


@pytest.mark.parametrize("file", ["model.skops", "onnx/model.onnx"])
def test_a_tampered_model_file_stops_the_server_at_start(awkward: dict, tmp_path, file: str) -> None:
    made = {"project": copy_served_files(awkward["project"], tmp_path / "project")}
    with open(made["project"] / "models" / file, "ab") as model:
        model.write(b"tampered")
    result = subprocess.run(
        [str(BIN / "mlops-nb"), "serve", "--port", str(free_port())],
        cwd=made["project"],
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "does not match the recorded" in lines[0], (
        result.stderr
    )


def test_a_tampered_model_at_reload_keeps_the_current_one_serving(awkward: dict, tmp_path) -> None:
    made = {**awkward, "project": copy_served_files(awkward["project"], tmp_path / "project")}
    body = {"instances": v1_instances(made["test"].head(3), made["schema"].columns)}
    with Server(made["project"], "--no-prediction-log") as server:
        status, answer, _ = server.call("POST", "/v2/repository/models/model/load")
        assert (status, answer["version"], answer["runtime"]) == (200, "workspace", "onnx")
        with open(made["project"] / "models" / "model.skops", "ab") as model:
            model.write(b"tampered")
        status, answer, _ = server.call("POST", "/v2/repository/models/model/load")
        assert (
            status == 409
            and "reload failed, still serving workspace" in answer["error"]
            and "does not match" in answer["error"]
        )
        assert server.call("POST", "/v1/models/model:predict", body)[0] == 200
        samples = server.metrics()
        assert (
            metric(samples, "mlops_nb_model_reloads_total", result="success"),
            metric(samples, "mlops_nb_model_reloads_total", result="failure"),
        ) == (1, 1)
        assert "reload failed" in server.log()


def test_two_workers_sum_their_counts(awkward: dict, tmp_path) -> None:
    body = {"instances": v1_instances(awkward["test"].head(2), awkward["schema"].columns)}
    statuses: list[int] = []

    def send(server: Server) -> None:
        for _ in range(5):
            statuses.append(server.call("POST", "/v1/models/model:predict", body)[0])

    def answering_workers() -> set[str]:
        return {path.name.rsplit("-", 1)[-1] for path in (tmp_path / "logs").glob("predictions-*.jsonl")}

    with Server(
        awkward["project"],
        "--workers",
        "2",
        "--metrics-dir",
        str(tmp_path / "metrics"),
        "--log-dir",
        str(tmp_path / "logs"),
    ) as server:
        # Rounds of concurrent requests until both workers have answered (each writes its own log file).
        deadline = time.monotonic() + 90
        while len(answering_workers()) < 2 and time.monotonic() < deadline:
            threads = [threading.Thread(target=send, args=(server,)) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            time.sleep(0.2)
        samples = server.metrics()
    assert len(answering_workers()) == 2
    assert set(statuses) == {200}
    sent = len(statuses)
    assert (
        metric(
            samples,
            "mlops_nb_http_requests_total",
            route="/v1/models/{name}:predict",
            method="POST",
            status="200",
        )
        == sent
    )
    assert metric(samples, "mlops_nb_predicted_rows_total") == 2 * sent
