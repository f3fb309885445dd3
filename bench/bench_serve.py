"""The model server under load, side by side in one run (issue 10, "Performance").

`wrk -t2 -c8` (Debian's wrk; `make bench` installs it) against, in the same run: a no-op FastAPI endpoint (uvicorn
with uvloop and httptools; reads the body, returns a constant: the ceiling), `mlops-nb serve` answering V2 single-row
requests through ONNX Runtime, the same with `--workers 2`, and the scikit-learn fallback. Also one connection's
p50/p99, and a 1,000-row V2 batch against the same runtime's in-process prediction of those rows (plus, to diagnose,
the same batch with `--no-prediction-log`: not a target). The model is the penguins random forest with 200 trees.
Figures are ratios measured in the same run: the machine is shared.

    python bench/bench_serve.py [--duration 15] [--quick] [--mlserver]

`--mlserver` adds MLServer 1.7.1's scikit-learn runtime on the same model (a side-by-side row, not a target), from
a separate venv under `.bench/mlserver-venv` made on first use (pip; `uvloop==0.21.0` for its default worker).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
NOOP_APP = """
from fastapi import FastAPI, Request
from starlette.responses import Response

app = FastAPI()


@app.post("/noop")
async def noop(request: Request) -> Response:
    await request.body()
    return Response(b'{"ok": true}', media_type="application/json")
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status in (200, 405):
                    return
        except OSError as error:
            if getattr(error, "code", None) == 405:
                return
        time.sleep(0.2)
    raise SystemExit(f"{url} not ready in {timeout} s")


class Started:
    def __init__(self, command: list[str], cwd: Path, ready_path: str, port: int):
        self.port = port
        self.process = subprocess.Popen(
            command,
            cwd=cwd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        )
        wait_ready(f"http://127.0.0.1:{port}{ready_path}", self.process)

    def __enter__(self) -> Started:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Refused(Exception):
    """A server answered the benchmark's first request with an error."""


def check_answer(url: str, body: bytes) -> None:
    """One request before the load: a server that refuses the body is named with its answer, not timed."""
    request = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
    except urllib.error.HTTPError as error:
        raise Refused(f"{url} refused the benchmark's request: {error.code} {error.read()[:500]!r}") from None


def wrk(
    url: str, body: bytes, *, threads: int, connections: int, duration: int, folder: Path
) -> dict[str, float]:
    """Requests/s, p50 and p99 latency (ms) and errors of a wrk run POSTing `body`."""
    check_answer(url, body)
    body_file = folder / f"body-{len(body)}.json"
    body_file.write_bytes(body)
    script = folder / f"post-{len(body)}.lua"
    script.write_text(
        textwrap.dedent(f'''
        local file = io.open("{body_file}", "rb")
        wrk.method = "POST"
        wrk.body = file:read("*a")
        file:close()
        wrk.headers["Content-Type"] = "application/json"
    ''')
    )
    result = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    )
    output = result.stdout

    def latency(percentile: str) -> float:
        value, unit = re.search(rf"^\s+{percentile}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(map(int, socket_errors.groups())) if socket_errors else 0),
    }


def server_seconds(port: int) -> dict[str, float]:
    """The server's own sums and counts of its infer requests' latency and of the runtime's predict (`/metrics`):
    scraped before and after a run, they split the run's time into HTTP, the request path and the prediction."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as response:
        text = response.read().decode()
    totals = dict.fromkeys(["request_sum", "request_count", "inference_sum", "inference_count"], 0.0)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            kind = sample.name.rsplit("_", 1)[-1]
            if kind not in ("sum", "count"):
                continue
            route = sample.labels.get("route", "")
            if sample.name.startswith("mlops_nb_http_request_duration_seconds") and "infer" in route:
                totals[f"request_{kind}"] += sample.value
            elif sample.name.startswith("mlops_nb_inference_duration_seconds"):
                totals[f"inference_{kind}"] += sample.value
    return totals


def make_model(project: Path) -> dict:
    from mlops_nb.artifacts import save_model
    from mlops_nb.data import read_source
    from mlops_nb.files import write_json
    from mlops_nb.serve_runtime import ONNX_FOLDER, export_onnx
    from mlops_nb.train import build_pipeline, split_xy
    from mlops_nb.validate import clean, infer_schema, split_train_test

    frame = clean(read_source("sample:penguins")[0], target="species")
    schema = infer_schema(frame, target="species", task="classification")
    train, test = split_train_test(frame, target="species", task="classification")
    pipeline = build_pipeline(schema, model_name="random_forest", hyperparameters={"n_estimators": 200}).fit(
        *split_xy(train, schema)
    )
    (project / "models").mkdir(parents=True)
    (project / "params.yaml").write_text("{}\n")
    (project / "dvc.yaml").write_text("stages: {}\n")
    write_json(
        {
            "schema": schema.model_dump(mode="json"),
            "artifact": {"sha256": save_model(pipeline, project / "models" / "model.skops")},
        },
        project / "models" / "card.json",
    )
    export_onnx(pipeline, schema, test, project / ONNX_FOLDER)
    return {"schema": schema, "frame": frame, "pipeline": pipeline}


def v2_body(schema, rows: list[dict]) -> bytes:
    inputs = [
        {
            "name": column.name,
            "shape": [len(rows)],
            "datatype": "FP64" if column.kind == "numeric" else "BYTES",
            "data": [row[column.name] for row in rows],
        }
        for column in schema.columns
    ]
    return json.dumps({"inputs": inputs}).encode()


def rows_of(frame, schema, n: int) -> list[dict]:
    rows = []
    for record in frame.sample(n=n, replace=True, random_state=0).to_dict(orient="records"):
        rows.append(
            {
                column.name: (
                    None
                    if (
                        record[column.name] == ""
                        if column.kind == "categorical"
                        else record[column.name] != record[column.name]
                    )
                    else record[column.name]
                )
                for column in schema.columns
            }
        )
    return rows


NO_LOG_BATCH = "V2 ONNX, 1,000-row batch, 1 connection, --no-prediction-log (diagnostic)"
MLSERVER_PACKAGES = [
    "mlserver==1.7.1",
    "mlserver-sklearn==1.7.1",
    "uvloop==0.21.0",
    "scikit-learn==1.9.1",
    "pandas==3.1.1",
    "numpy==2.4.6",
]


def mlserver_venv(folder: Path) -> tuple[Path | None, str]:
    """A venv with MLServer's scikit-learn runtime (made once from PyPI), or None and why it cannot be had."""
    if not (folder / "bin" / "mlserver").exists():
        print(f"installing MLServer into {folder} (once) ...", flush=True)
        made = subprocess.run([sys.executable, "-m", "venv", str(folder)], capture_output=True, text=True)
        if made.returncode != 0:
            return None, f"python -m venv failed: {made.stderr.strip()[-300:]}"
        installed = subprocess.run(
            [str(folder / "bin" / "pip"), "install", "-q", *MLSERVER_PACKAGES], capture_output=True, text=True
        )
        if installed.returncode != 0:
            shutil.rmtree(folder, ignore_errors=True)
            return (
                None,
                f"pip could not install {' '.join(MLSERVER_PACKAGES)}: {installed.stderr.strip()[-300:]}",
            )
    return folder, ""


def mlserver_body(schema, rows: list[dict]) -> bytes:
    """The V2 request MLServer's scikit-learn runtime takes for a pipeline of named columns: the request decoded as a
    pandas DataFrame (`content_type: pd`), each text input marked `str` so that its bytes become Python text."""
    inputs = []
    for column in schema.columns:
        tensor = {"name": column.name, "shape": [len(rows)], "data": [row[column.name] for row in rows]}
        if column.kind == "numeric":
            tensor["datatype"] = "FP64"
        else:
            tensor.update(datatype="BYTES", parameters={"content_type": "str"})
        inputs.append(tensor)
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs}).encode()


def mlserver_model(folder: Path, pipeline, port: int) -> None:
    """The same fitted pipeline for MLServer (joblib; our column-wise median imputer as the SimpleImputer it is)."""
    import copy

    import joblib
    from sklearn.impute import SimpleImputer

    plain = copy.deepcopy(pipeline)
    features = plain.named_steps["features"]
    # Both the fitted transformers and the unfitted ones the ColumnTransformer keeps as its parameter: MLServer's
    # venv has no mlops_nb, so no object of the pickle may name it.
    for _, transformer, _ in [*features.transformers_, *features.transformers]:
        for _, step in getattr(transformer, "steps", []):
            if type(step).__name__ == "ColumnwiseImputer":
                step.__class__ = SimpleImputer
    folder.mkdir(parents=True)
    joblib.dump(plain, folder / "model.joblib")
    (folder / "model-settings.json").write_text(
        json.dumps(
            {
                "name": "model",
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "v1"},
            }
        )
    )
    (folder / "settings.json").write_text(
        json.dumps(
            {
                "host": "127.0.0.1",
                "http_port": port,
                "grpc_port": free_port(),
                "metrics_port": free_port(),
                "debug": False,
            }
        )
    )


def in_process_seconds(project: Path, schema, rows: list[dict], *, repeats: int = 30) -> float:
    """The median time of the runtime's own predict of `rows`, with the thread count one server worker uses."""
    from mlops_nb.serve_runtime import load_from_folder
    from mlops_nb.serve_schema import RequestDecoder
    from mlops_nb.serve_state import ServeSettings

    threads = ServeSettings(root=project).onnx_threads()
    served = load_from_folder(project / "models", version="bench", threads=threads)
    columns = RequestDecoder(schema).decode_v1(rows).columns
    served.runtime.predict(columns, probabilities=True)
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        served.runtime.predict(columns, probabilities=True)
        timings.append(time.perf_counter() - started)
    return float(np.median(timings))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds per wrk run (default 15)")
    parser.add_argument("--quick", action="store_true", help="5 s runs")
    parser.add_argument(
        "--mlserver",
        action="store_true",
        help="add MLServer's scikit-learn runtime (separate venv, made once)",
    )
    arguments = parser.parse_args()
    duration = 5 if arguments.quick else arguments.duration
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: `make wrk` (Debian's wrk package)")
    print(f"load average at start: {os.getloadavg()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    model = make_model(work / "onnx")
    schema = model["schema"]
    fallback = work / "sklearn"
    shutil.copytree(work / "onnx", fallback)
    shutil.rmtree(fallback / "models" / "onnx")
    complete = model["frame"][
        model["frame"][schema.feature_columns].ne("").all(axis=1)
        & model["frame"][schema.numeric_columns].notna().all(axis=1)
    ]
    single = rows_of(complete, schema, 1)
    one_row = v2_body(schema, single)
    batch_rows = rows_of(model["frame"], schema, 1000)
    batch = v2_body(schema, batch_rows)
    (work / "noop.py").write_text(NOOP_APP)
    results: dict[str, dict[str, float]] = {}

    def serve(project: Path, *extra: str) -> Started:
        port = free_port()
        return Started(
            [str(BIN / "mlops-nb"), "serve", "--port", str(port), "--log-dir", str(work / "logs"), *extra],
            project,
            "/v2/health/ready",
            port,
        )

    port = free_port()
    with Started(
        [
            str(BIN / "python"),
            "-m",
            "uvicorn",
            "noop:app",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ],
        work,
        "/noop",
        port,
    ) as noop:
        url = f"http://127.0.0.1:{noop.port}/noop"
        results["no-op FastAPI, 8 connections"] = wrk(
            url, one_row, threads=2, connections=8, duration=duration, folder=work
        )
        results["no-op FastAPI, 1 connection"] = wrk(
            url, one_row, threads=1, connections=1, duration=duration, folder=work
        )
    with serve(work / "onnx") as server:
        url = f"http://127.0.0.1:{server.port}/v2/models/model/infer"
        results["V2 ONNX, 8 connections"] = wrk(
            url, one_row, threads=2, connections=8, duration=duration, folder=work
        )
        results["V2 ONNX, 1 connection"] = wrk(
            url, one_row, threads=1, connections=1, duration=duration, folder=work
        )
        before = server_seconds(server.port)
        results["V2 ONNX, 1,000-row batch, 1 connection"] = wrk(
            url, batch, threads=1, connections=1, duration=duration, folder=work
        )
        after = server_seconds(server.port)
        inside = {name: after[name] - before[name] for name in after}
        # The runtime's own time for the same rows, right after (the server idle): side by side, not minutes apart.
        in_process = in_process_seconds(work / "onnx", schema, batch_rows)
    with serve(work / "onnx", "--no-prediction-log") as server:
        # A diagnostic, not the target: what the prediction log costs a back-to-back batch.
        url = f"http://127.0.0.1:{server.port}/v2/models/model/infer"
        results[NO_LOG_BATCH] = wrk(url, batch, threads=1, connections=1, duration=duration, folder=work)
    with serve(work / "onnx", "--workers", "2", "--metrics-dir", str(work / "metrics")) as server:
        time.sleep(5)  # the second worker loads its model
        url = f"http://127.0.0.1:{server.port}/v2/models/model/infer"
        results["V2 ONNX, --workers 2, 8 connections"] = wrk(
            url, one_row, threads=2, connections=8, duration=duration, folder=work
        )
    with serve(fallback) as server:
        url = f"http://127.0.0.1:{server.port}/v2/models/model/infer"
        results["V2 scikit-learn fallback, 8 connections"] = wrk(
            url, one_row, threads=2, connections=8, duration=duration, folder=work
        )
    skipped: dict[str, str] = {}
    if arguments.mlserver:
        name = "MLServer 1.7.1 sklearn runtime, 8 connections"
        venv, why = mlserver_venv(Path(__file__).resolve().parents[1] / ".bench" / "mlserver-venv")
        if venv is None:
            skipped[name] = why
        else:
            port = free_port()
            mlserver_model(work / "mlserver", model["pipeline"], port)
            try:
                with Started(
                    [str(venv / "bin" / "mlserver"), "start", str(work / "mlserver")],
                    work / "mlserver",
                    "/v2/health/ready",
                    port,
                ) as mlserver:
                    url = f"http://127.0.0.1:{mlserver.port}/v2/models/model/infer"
                    results[name] = wrk(
                        url,
                        mlserver_body(schema, single),
                        threads=2,
                        connections=8,
                        duration=duration,
                        folder=work,
                    )
            except (Refused, SystemExit) as error:
                skipped[name] = str(error)

    width = max(map(len, [*results, *skipped]))
    print(f"\n{'':<{width}}  {'req/s':>9}  {'p50 ms':>8}  {'p99 ms':>8}  errors")
    for name, figures in results.items():
        print(
            f"{name:<{width}}  {figures['rps']:>9.0f}  {figures['p50_ms']:>8.2f}  {figures['p99_ms']:>8.2f}  {figures['errors']}"
        )
    for name, why in skipped.items():
        print(f"{name:<{width}}  skipped: {why}")

    def ratio(numerator: str, denominator: str, *, by: str = "rps") -> float | None:
        """`numerator / denominator`, or None (and why) when either row had errors: no figure from failed requests."""
        failed = [name for name in (numerator, denominator) if name not in results or results[name]["errors"]]
        if failed:
            print(f"no ratio {numerator} / {denominator}: {', '.join(failed)} had errors or did not run")
            return None
        return results[numerator][by] / results[denominator][by]

    print()
    v2 = results["V2 ONNX, 8 connections"]
    single = ratio("V2 ONNX, 8 connections", "no-op FastAPI, 8 connections")
    batch_row = results["V2 ONNX, 1,000-row batch, 1 connection"]
    batch_ratio = None if batch_row["errors"] else batch_row["p50_ms"] / 1000 / in_process
    if not results[NO_LOG_BATCH]["errors"]:
        print(
            "1,000-row batch p50 / in-process, --no-prediction-log (diagnostic, not the target): "
            f"{results[NO_LOG_BATCH]['p50_ms'] / 1000 / in_process:.2f}x"
        )
    if inside["request_count"] and inside["inference_count"]:
        request_ms = inside["request_sum"] / inside["request_count"] * 1000
        inference_ms = inside["inference_sum"] / inside["inference_count"] * 1000
        print(
            f"1,000-row batch, the server's own means (diagnostic): request {request_ms:.2f} ms, of which the "
            f"runtime's predict {inference_ms:.2f} ms (in process {in_process * 1000:.2f} ms); wrk's p50 "
            f"{batch_row['p50_ms']:.2f} ms"
        )
    targets = [
        (
            "V2 single row / no-op, 8 connections",
            single,
            f"{single:.3f}x" if single else "errors",
            single is not None and single >= 0.15,
            ">= 0.15x",
        ),
        (
            "V2 single row p99, 8 connections",
            v2,
            f"{v2['p99_ms']:.2f} ms",
            not v2["errors"] and v2["p99_ms"] <= 10,
            "<= 10 ms",
        ),
        ("V2 errors", v2, str(v2["errors"]), v2["errors"] == 0, "0"),
        (
            "1,000-row batch p50 / in-process ONNX predict",
            batch_ratio,
            f"{batch_ratio:.2f}x ({in_process * 1000:.2f} ms in process)"
            if batch_ratio
            else f"{batch_row['errors']} errors",
            batch_ratio is not None and batch_ratio <= 1.5,
            "<= 1.5x",
        ),
    ]
    for label, numerator, denominator in [
        ("--workers 2 / 1 worker", "V2 ONNX, --workers 2, 8 connections", "V2 ONNX, 8 connections"),
        ("scikit-learn fallback / ONNX", "V2 scikit-learn fallback, 8 connections", "V2 ONNX, 8 connections"),
        (
            "V2 ONNX / MLServer sklearn runtime",
            "V2 ONNX, 8 connections",
            "MLServer 1.7.1 sklearn runtime, 8 connections",
        ),
        ("V2 ONNX 1 connection / no-op 1 connection", "V2 ONNX, 1 connection", "no-op FastAPI, 1 connection"),
    ]:
        if (
            numerator in results
            and denominator in results
            and (figure := ratio(numerator, denominator)) is not None
        ):
            print(f"{label}: {figure:.3f}x")
    for name, _, measured, passed, target in targets:
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {measured} (target {target})")
    print(f"load average at end: {os.getloadavg()}")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if all(passed for _, _, _, passed, _ in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
