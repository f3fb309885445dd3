"""The model server for real: `mlops-nb serve` as a uvicorn subprocess on a free loopback port, called through
`tritonclient.http` (V2) and plain HTTP (V1), its /metrics parsed and checked by promtool, its OpenAPI fuzzed."""

from __future__ import annotations

import http.client
import json
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import command_env
from serving import (
    BIN,
    Server,
    copy_served_files,
    expected_predictions,
    metric,
    parse_metrics,
    v1_instances,
    v2_inputs,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def penguins(pipeline_project: Path, tmp_path_factory: pytest.TempPathFactory):
    """The pipeline's penguins model served from a copy of its files, with small limits to test them."""
    from mlops_nb.artifacts import load_model
    from mlops_nb.files import read_parquet
    from mlops_nb.validate import Schema

    folder = tmp_path_factory.mktemp("penguins")
    project = copy_served_files(pipeline_project, folder / "project")
    card = json.loads((project / "models" / "card.json").read_text())
    logs = folder / "logs"
    server = Server(
        project, "--log-dir", str(logs), "--max-batch-size", "500", "--max-body-bytes", "200000"
    ).start()
    yield {
        "server": server,
        "project": project,
        "logs": logs,
        "pipeline": load_model(
            project / "models" / "model.skops", expected_sha256=card["artifact"]["sha256"]
        ),
        "schema": Schema.model_validate(card["schema"]),
        "test": read_parquet(pipeline_project / "data" / "prepared" / "test.parquet"),
    }
    server.stop()


def logged_rows(folder: Path) -> int:
    return sum(len(path.read_text().splitlines()) for path in folder.glob("predictions-*.jsonl"))


def settled_rows(folder: Path, quiet: float = 0.5) -> int:
    """The log's row count once the writer (which drains its queue every 50 ms) has written what earlier tests sent."""
    count = logged_rows(folder)
    while True:
        time.sleep(quiet)
        if (again := logged_rows(folder)) == count:
            return count
        count = again


def wait_for_rows(folder: Path, expected: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while (found := logged_rows(folder)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return found


def test_tritonclient_v2_and_plain_v1_predict_as_the_pipeline_on_every_test_row(penguins) -> None:
    import tritonclient.http as triton

    server, schema, test = penguins["server"], penguins["schema"], penguins["test"]
    labels, probabilities = expected_predictions(penguins["pipeline"], schema, test)

    client = triton.InferenceServerClient(url=server.address)
    assert client.is_server_live() and client.is_model_ready("model")
    metadata = client.get_model_metadata("model")
    assert [(tensor["name"], tensor["datatype"]) for tensor in metadata["inputs"]] == [
        (column.name, "FP64" if column.kind == "numeric" else "BYTES") for column in schema.columns
    ]
    assert metadata["parameters"]["runtime"] == "onnx"
    inputs = []
    for column in schema.columns:
        tensor = triton.InferInput(column.name, [len(test)], "FP64" if column.kind == "numeric" else "BYTES")
        values = test[column.name].to_numpy(dtype=np.float64 if column.kind == "numeric" else object)
        tensor.set_data_from_numpy(
            values
        )  # the client's default: the binary tensor extension (NaN, "" = missing)
        inputs.append(tensor)
    outputs = [triton.InferRequestedOutput("predict"), triton.InferRequestedOutput("predict_proba")]
    result = client.infer("model", inputs, outputs=outputs, request_id="triton-1")
    assert [
        label.decode() if isinstance(label, bytes) else label for label in result.as_numpy("predict")
    ] == labels
    np.testing.assert_allclose(result.as_numpy("predict_proba"), probabilities, atol=1e-5)
    response = result.get_response()
    assert response["model_version"] == "workspace" and response["id"] == "triton-1"
    assert (
        next(output for output in response["outputs"] if output["name"] == "predict_proba")["parameters"][
            "classes"
        ]
        == schema.classes
    )

    status, answer, _ = server.call(
        "POST", "/v1/models/model:predict", {"instances": v1_instances(test, schema.columns)}
    )
    assert status == 200, answer
    assert answer["predictions"] == labels and answer["classes"] == schema.classes
    np.testing.assert_allclose(answer["probabilities"], probabilities, atol=1e-5)

    status, answer, _ = server.call(
        "POST", "/v2/models/model/versions/workspace/infer", {"inputs": v2_inputs(test, schema.columns)}
    )
    assert status == 200, answer
    assert answer["outputs"][0]["data"] == labels and answer["outputs"][0]["datatype"] == "BYTES"


def test_metrics_count_exactly_what_was_sent_and_the_log_has_one_line_per_row(penguins) -> None:
    server, schema, test = penguins["server"], penguins["schema"], penguins["test"]
    route = "/v2/models/{name}/infer"
    before, logged_before = server.metrics(), settled_rows(penguins["logs"])
    sizes = [1, 3, 7]
    for size in sizes:
        status, _, headers = server.call(
            "POST",
            "/v2/models/model/infer",
            {"inputs": v2_inputs(test.head(size), schema.columns)},
            headers={"x-request-id": f"count-{size}"},
        )
        assert status == 200 and headers["x-request-id"] == f"count-{size}"
    for _ in range(2):
        assert (
            server.call("POST", "/v2/models/model/infer", b"{", headers={"Content-Type": "application/json"})[
                0
            ]
            == 400
        )
    status, text, _ = server.call("GET", "/metrics")
    after = parse_metrics(text)

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("mlops_nb_http_requests_total", route=route, method="POST", status="200") == len(sizes)
    assert delta("mlops_nb_http_requests_total", route=route, method="POST", status="400") == 2
    assert delta("mlops_nb_http_request_duration_seconds_count", route=route, method="POST") == len(sizes) + 2
    assert delta("mlops_nb_predicted_rows_total") == sum(sizes)
    predicted = expected_predictions(penguins["pipeline"], schema, test.head(7))[0]
    expected = {
        label: predicted[:1].count(label) + predicted[:3].count(label) + predicted.count(label)
        for label in schema.classes
    }
    assert {
        label: delta("mlops_nb_predictions_total", **{"class": label}) for label in schema.classes
    } == expected
    assert delta("mlops_nb_invalid_requests_total", reason="malformed_json") == 2
    assert delta("mlops_nb_inference_duration_seconds_count", runtime="onnx") == len(sizes)
    assert (
        metric(
            after,
            "mlops_nb_model_info",
            model="model",
            version="workspace",
            runtime="onnx",
            sha256=json.loads((penguins["project"] / "models" / "onnx" / "parity.json").read_text())[
                "sha256"
            ],
        )
        == 1
    )
    assert (
        "mlops_nb_http_request_duration_seconds_bucket",
        (("le", "0.0005"), ("method", "POST"), ("route", route)),
    ) in after

    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make test` installs Debian's prometheus package"
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    assert wait_for_rows(penguins["logs"], logged_before + sum(sizes)) == logged_before + sum(sizes)
    records = [
        json.loads(line)
        for path in sorted(penguins["logs"].glob("predictions-*.jsonl"))
        for line in path.read_text().splitlines()
    ]
    last = [record for record in records if record["request_id"] == "count-7"]
    assert len(last) == 7 and last[0]["model_version"] == "workspace"
    assert list(last[0]["inputs"]) == schema.feature_columns
    assert [record["output"]["predict"] for record in last] == predicted
    assert len(last[0]["output"]["predict_proba"]) == len(schema.classes)


def good_row(penguins) -> dict:
    return v1_instances(penguins["test"].head(1), penguins["schema"].columns)[0]


def v2_body(penguins, rows: list[dict]) -> dict:
    columns = penguins["schema"].columns
    return {
        "inputs": [
            {
                "name": column.name,
                "shape": [len(rows)],
                "datatype": "FP64" if column.kind == "numeric" else "BYTES",
                "data": [row[column.name] for row in rows],
            }
            for column in columns
        ]
    }


BAD_V2 = {
    "missing column": (lambda body: body["inputs"].pop(0), 400, "missing input(s) 'island'"),
    "unknown extra column": (
        lambda body: body["inputs"].append({**body["inputs"][1], "name": "colour"}),
        400,
        "unknown input(s) 'colour'",
    ),
    "string in a numeric input": (
        lambda body: body["inputs"][1]["data"].__setitem__(1, "long"),
        400,
        "input 'bill_length_mm', instance 1: 'long' (str) is not a number",
    ),
    "inputs of different lengths": (
        lambda body: body["inputs"][1].update(shape=[1], data=[40.0]),
        400,
        "inputs of different lengths",
    ),
    "wrong datatype": (
        lambda body: body["inputs"][0].update(datatype="FP64"),
        400,
        "input 'island' has datatype 'FP64'",
    ),
    "shape not matching": (
        lambda body: body["inputs"][2].update(shape=[5]),
        400,
        "input 'bill_depth_mm': shape [5] does not match",
    ),
    "unknown output": (
        lambda body: body.update(outputs=[{"name": "logits"}]),
        400,
        "unknown output(s) 'logits'",
    ),
    "no inputs field": (lambda body: body.pop("inputs"), 400, "inputs: Field required"),
}


@pytest.mark.parametrize("case", list(BAD_V2))
def test_bad_v2_input_is_a_4xx_naming_the_field(penguins, case: str) -> None:
    change, expected_status, message = BAD_V2[case]
    body = v2_body(penguins, [good_row(penguins), good_row(penguins)])
    change(body)
    status, answer, _ = penguins["server"].call("POST", "/v2/models/model/infer", body)
    assert (status, message in answer["error"]) == (expected_status, True), answer


def raw_body_cases(penguins) -> dict[str, tuple[bytes | str, dict, int, str]]:
    good = json.dumps(v2_body(penguins, [good_row(penguins)]))
    json_type = {"Content-Type": "application/json"}
    return {
        "malformed JSON": ('{"inputs": [', json_type, 400, "not valid JSON"),
        "NaN literal": (
            good.replace("2007.0", "NaN").replace("2008.0", "NaN").replace("2009.0", "NaN"),
            json_type,
            400,
            "not valid JSON",
        ),
        "Infinity literal": (
            '{"inputs": [{"name": "year", "shape": [1], "datatype": "FP64", "data": [Infinity]}]}',
            json_type,
            400,
            "not valid JSON",
        ),
        "deeply nested": ("[" * 5000 + "]" * 5000, json_type, 400, "not valid JSON"),
        "wrong content type": (good, {"Content-Type": "text/plain"}, 415, "content type 'text/plain'"),
        "empty batch": (json.dumps(v2_body(penguins, [])), json_type, 400, "the batch is empty"),
        "batch over the limit": (
            json.dumps(v2_body(penguins, [good_row(penguins)] * 501)),
            json_type,
            400,
            "over the limit of 500",
        ),
        "body over the limit": (good + " " * 200_001, json_type, 413, "over the limit of 200000"),
    }


def test_bad_raw_bodies_limits_and_names_are_4xx_and_the_server_keeps_serving(penguins) -> None:
    server = penguins["server"]
    for case, (body, headers, expected_status, message) in raw_body_cases(penguins).items():
        status, answer, _ = server.call("POST", "/v2/models/model/infer", body, headers=headers)
        assert (status, message in answer["error"]) == (expected_status, True), (case, answer)
    # A body over the limit sent chunked, without a Content-Length, is cut off as it streams in.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(
        "POST",
        "/v2/models/model/infer",
        body=iter([b" " * 100_000] * 3),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    assert connection.getresponse().status == 413
    connection.close()

    good = v2_body(penguins, [good_row(penguins)])
    assert server.call("POST", "/v2/models/elephant/infer", good)[0] == 404
    status, answer, _ = server.call("POST", "/v2/models/model/versions/v9.9.9/infer", good)
    assert status == 404 and "unknown version 'v9.9.9'" in answer["error"]
    assert server.call("GET", "/v2/models/elephant")[0] == 404
    assert server.call("GET", "/nowhere")[0] == 404

    row = good_row(penguins)
    status, answer, _ = server.call(
        "POST", "/v1/models/model:predict", {"instances": [row, {**row, "body_mass_g": "heavy"}]}
    )
    assert (
        status == 400 and "input 'body_mass_g', instance 1: 'heavy' (str) is not a number" in answer["error"]
    ), answer
    status, answer, _ = server.call(
        "POST",
        "/v1/models/model:predict",
        {"instances": [row, {key: value for key, value in row.items() if key != "sex"}]},
    )
    assert status == 400 and "instance 1: missing input(s) 'sex'" in answer["error"], answer
    status, answer, _ = server.call(
        "POST", "/v1/models/model:predict", {"instances": [{**row, "colour": "blue"}]}
    )
    assert status == 400 and "instance 0: unknown input(s) 'colour'" in answer["error"], answer
    assert server.call("POST", "/v1/models/model:predict", {"rows": []})[0] == 400

    # Accepted: null where training saw no missing value (the imputer fills it), and an unseen category (counted).
    before = server.metrics()
    status, answer, _ = server.call(
        "POST", "/v1/models/model:predict", {"instances": [{**row, "year": None, "island": "Atlantis"}]}
    )
    assert status == 200 and len(answer["predictions"]) == 1, answer
    assert (
        metric(server.metrics(), "mlops_nb_unseen_categories_total", feature="island")
        == metric(before, "mlops_nb_unseen_categories_total", feature="island") + 1
    )

    assert server.call("POST", "/v1/models/model:predict", {"instances": [row]})[0] == 200
    after = server.metrics()
    server_errors = [
        key
        for key, value in after.items()
        if key[0] == "mlops_nb_http_requests_total" and dict(key[1])["status"].startswith("5") and value
    ]
    assert not server_errors, server_errors


def test_drift_gauges_come_from_reports_drift_json(penguins) -> None:
    server = penguins["server"]
    drift = {
        "drift_detected": True,
        "retrain": True,
        "rows": 50,
        "model_version": "workspace",
        "quality": {},
        "performance": None,
        "features": {
            "bill_length_mm": {
                "drifted": True,
                "test": "ks",
                "statistic": 0.42,
                "p_value": 0.001,
                "threshold": 0.05,
                "importance": 0.3,
            },
            "island": {
                "drifted": False,
                "test": "chi2",
                "statistic": 1.5,
                "p_value": 0.4,
                "threshold": 0.05,
                "importance": 0.1,
            },
        },
    }
    (penguins["project"] / "reports").mkdir(exist_ok=True)
    (penguins["project"] / "reports" / "drift.json").write_text(json.dumps(drift))
    samples = server.metrics()
    assert metric(samples, "mlops_nb_feature_drift", feature="bill_length_mm") == 0.42
    assert metric(samples, "mlops_nb_feature_drift_detected", feature="bill_length_mm") == 1
    assert ("mlops_nb_feature_drift_detected", (("feature", "island"),)) in samples
    assert metric(samples, "mlops_nb_retrain_recommended") == 1
    (penguins["project"] / "reports" / "drift.json").write_text("{not json")
    assert not any(name.startswith("mlops_nb_feature_drift") for name, _ in server.metrics())


def test_openapi_fuzzing_finds_no_server_error(penguins) -> None:
    server = penguins["server"]
    result = subprocess.run(
        [
            str(BIN / "schemathesis"),
            "run",
            f"http://{server.address}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "15",
            "--seed",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--no-shrink",
        ],
        capture_output=True,
        text=True,
        env=command_env(SCHEMATHESIS_HOOKS=""),
        timeout=300,
        cwd=penguins["project"],
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert server.call("GET", "/v2/health/ready")[0] == 200
