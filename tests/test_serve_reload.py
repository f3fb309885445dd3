"""Hot reload tied to the registry: a server following `--watch-stage prod` picks up a newly promoted version while
under concurrent load, with zero failed requests."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from conftest import run
from serving import Server, metric, v1_instances

pytestmark = pytest.mark.slow


def test_promotion_under_load_is_picked_up_with_zero_failed_requests(fresh_run: Path, tmp_path: Path) -> None:
    from mlops_nb.files import read_parquet
    from mlops_nb.validate import Schema

    run(["mlops-nb", "models", "register"], fresh_run)
    run(["mlops-nb", "models", "promote", "v1.0.0", "--stage", "prod"], fresh_run)
    schema = Schema.load(fresh_run / "data" / "prepared" / "schema.json")
    body = {
        "instances": v1_instances(
            read_parquet(fresh_run / "data" / "prepared" / "test.parquet").head(5), schema.columns
        )
    }
    answers: list[tuple[int, str | None]] = []
    failures: list[str] = []
    stop = threading.Event()

    def load(server: Server) -> None:
        while not stop.is_set():
            try:
                status, answer, _ = server.call("POST", "/v1/models/model:predict", body)
                answers.append((status, answer.get("model_version") if isinstance(answer, dict) else None))
                if status != 200:
                    failures.append(f"{status}: {answer}")
            except OSError as error:
                failures.append(repr(error))
            time.sleep(0.01)  # bounded load: the machine also retrains meanwhile

    with Server(
        fresh_run, "--watch-stage", "prod", "--watch-interval", "0.5", "--log-dir", str(tmp_path / "logs")
    ) as server:
        assert server.call("GET", "/v1/models/model")[1]["model_version_status"][0]["version"] == "v1.0.0"
        threads = [threading.Thread(target=load, args=(server,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            # A second version without a second training run (a version is a commit; the reload does not care
            # whether the model changed, and the suite's time is better spent elsewhere).
            (fresh_run / "CHANGES.md").write_text("v1.1.0: same model, registered again\n")
            run(["git", "add", "CHANGES.md"], fresh_run)
            run(["git", "commit", "-qm", "a second version"], fresh_run)
            run(["mlops-nb", "models", "register"], fresh_run)
            run(["mlops-nb", "models", "promote", "v1.1.0", "--stage", "prod"], fresh_run)
            deadline = time.monotonic() + 120
            while (
                not any(version == "v1.1.0" for _, version in answers[-20:]) and time.monotonic() < deadline
            ):
                time.sleep(0.2)
            time.sleep(1)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        samples = server.metrics()
        log = server.log()
    assert failures == [], failures[:5]
    versions = [version for _, version in answers]
    assert "v1.0.0" in versions and versions[-1] == "v1.1.0", (versions[:3], versions[-3:], log[-2000:])
    assert metric(samples, "mlops_nb_model_reloads_total", result="success") == 1
    assert metric(samples, "mlops_nb_model_reloads_total", result="failure") == 0
    assert len(answers) > 50
