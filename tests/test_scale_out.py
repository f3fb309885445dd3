"""Past one machine with DVC's own engines: a queue of experiments run two at a time, and an S3 remote (moto's
standalone S3-compatible server on loopback) from which a fresh clone gets and reproduces a registered version."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from conftest import BIN, command_env, run

pytestmark = pytest.mark.slow
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_queued_experiments_run_two_at_a_time(fresh_run: Path) -> None:
    # Two evaluate seeds: each experiment reruns only the stages its parameter reaches (check and evaluate), which keeps
    # the test light; the queue, the parallel workers and `dvc exp show` are the same for any parameter.
    run(["dvc", "exp", "run", "--queue", "-S", "evaluate.seed=1,2"], fresh_run)
    assert run(["dvc", "queue", "status"], fresh_run).stdout.count("Queued") == 2
    # Not through `run`: the queue's daemon workers inherit the command's output, and a pipe would keep it waiting.
    with (fresh_run.parent / "queue.log").open("w") as log:
        started = subprocess.run(
            ["dvc", "queue", "start", "-j", "2"],
            cwd=fresh_run,
            env=command_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    assert started.returncode == 0, (fresh_run.parent / "queue.log").read_text()
    most_running, deadline, seen = 0, time.monotonic() + 600, []
    while True:
        status = run(["dvc", "queue", "status"], fresh_run).stdout
        seen.append(status)
        most_running = max(most_running, status.count("Running"))
        if "Queued" not in status and "Running" not in status:
            break
        assert time.monotonic() < deadline, status
        time.sleep(1)
    assert status.count("Success") == 2, (
        status + run(["dvc", "queue", "logs", status.split()[0]], fresh_run, check=False).stdout
    )
    assert most_running == 2, "dvc queue start -j 2 runs both experiments at once:\n" + "\n".join(seen)
    shown = json.loads(run(["dvc", "exp", "show", "--json"], fresh_run).stdout)
    experiments = [exp for row in shown for exp in (row.get("experiments") or [])]
    assert len(experiments) == 2
    seeds, reports = set(), set()
    for experiment in experiments:
        revision = experiment["revs"][0]
        data = revision["data"]
        seeds.add(data["params"]["params.yaml"]["data"]["evaluate"]["seed"])
        assert data["metrics"]["reports/metrics.json"]["data"]["accuracy"] > 0.9
        lock = yaml.safe_load(run(["git", "show", f"{revision['rev']}:dvc.lock"], fresh_run).stdout)
        reports |= {
            out["md5"]
            for out in lock["stages"]["evaluate"]["outs"]
            if out["path"] == "reports/evaluate.ipynb"
        }
    assert seeds == {1, 2}
    assert len(reports) == 2, "each experiment has its own evaluate report"


@pytest.fixture
def s3_endpoint(tmp_path: Path):
    """moto's S3-compatible server on a free loopback port, with an empty bucket `mlops-nb`."""
    import boto3

    port = _free_port()
    log = (tmp_path / "moto.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=subprocess.STDOUT
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, (
                    tmp_path / "moto.log"
                ).read_text()
                time.sleep(0.2)
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            **{k.lower(): v for k, v in S3_ENV.items() if k != "AWS_DEFAULT_REGION"},
            region_name="us-east-1",
        ).create_bucket(Bucket="mlops-nb")
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_remote_push_then_a_fresh_clone_gets_and_reproduces(
    s3_endpoint: str, fresh_run: Path, tmp_path: Path
) -> None:
    project = (
        fresh_run  # the session's committed pipeline run: only the reproduction below runs the pipeline again
    )
    run(["dvc", "remote", "add", "-d", "storage", "s3://mlops-nb/cache"], project)
    run(["dvc", "remote", "modify", "storage", "endpointurl", s3_endpoint], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "an S3 remote"], project)
    run(["mlops-nb", "models", "register"], project)
    run(["mlops-nb", "models", "promote", "v1.0.0", "--stage", "prod"], project)
    pushed = run(["dvc", "push"], project, **S3_ENV)
    assert "pushed" in pushed.stdout.lower() or "uploaded" in pushed.stdout.lower(), pushed.stdout

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(project), str(clone)], tmp_path)
    assert not (clone / ".dvc" / "cache").exists(), "the clone starts with an empty cache"
    got = run(
        ["mlops-nb", "models", "get", "--stage", "prod", "--out", str(tmp_path / "prod")], clone, **S3_ENV
    )
    assert (tmp_path / "prod" / "model.skops").read_bytes() == (
        project / "models" / "model.skops"
    ).read_bytes(), got.stderr
    reproduced = run(["mlops-nb", "models", "reproduce", "--stage", "prod"], clone, check=False, **S3_ENV)
    assert reproduced.returncode == 0 and "reproduced: identical" in reproduced.stdout, (
        reproduced.stdout + reproduced.stderr
    )

    # The remote cannot be reached: a one-line error naming it, and nothing written.
    unreachable = f"http://127.0.0.1:{_free_port()}"
    run(["dvc", "remote", "modify", "--local", "storage", "endpointurl", unreachable], clone)
    shutil.rmtree(clone / ".dvc" / "cache", ignore_errors=True)
    failed = run(
        ["mlops-nb", "models", "get", "--stage", "prod", "--out", str(tmp_path / "again")],
        clone,
        check=False,
        AWS_MAX_ATTEMPTS="1",
        **S3_ENV,
    )
    assert failed.returncode == 1, failed.stdout + failed.stderr
    lines = failed.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), failed.stderr
    assert "storage" in lines[0] and "s3://mlops-nb/cache" in lines[0], lines[0]
    assert not (tmp_path / "again" / "model.skops").exists()
