"""Warm stage commands (`mlops_nb.warm`): under DVC, `mlops-nb stage` and `mlops-nb check` run in children forked
from a server that has imported the libraries. The same outputs as cold; a failing stage fails the same way through
it; Ctrl-C, and a client killed outright, stop the child; `MLOPS_NB_WARM=0` turns it off."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import nbformat
import pytest
import yaml

from conftest import command_env, run, set_params, wait_for


def warm_folder(temporary: Path) -> Path:
    return temporary / f"mlops-nb-warm-{os.getuid()}"


def server_log(temporary: Path) -> str:
    return "".join(path.read_text() for path in sorted(warm_folder(temporary).glob("*.log")))


@pytest.mark.slow
def test_stages_under_dvc_run_warm_with_the_same_outputs_as_cold(fresh_project: Path, tmp_path: Path) -> None:
    warm_tmp, cold_tmp = tmp_path / "warm-tmp", tmp_path / "cold-tmp"
    warm_tmp.mkdir(), cold_tmp.mkdir()
    run(["dvc", "repro", "check", "prepare"], fresh_project, TMPDIR=str(warm_tmp))
    log = server_log(warm_tmp)
    # The first of the three (DVC picks the order of check and ingest) ran in its own process and started the server;
    # the two after it ran in its children.
    assert "runs mlops-nb stage prepare" in log and len(re.findall(r"child \d+ exited 0", log)) == 2, log
    outputs = (
        "data/raw/data.parquet",
        "data/raw/lineage.json",
        "data/prepared/train.parquet",
        "data/prepared/test.parquet",
        "data/prepared/schema.json",
        "reports/ingest.ipynb",
        "reports/prepare.ipynb",
        "dvc.lock",
    )
    warm = {name: (fresh_project / name).read_bytes() for name in outputs}
    run(
        ["dvc", "repro", "--force", "check", "prepare"],
        fresh_project,
        TMPDIR=str(cold_tmp),
        MLOPS_NB_WARM="0",
    )
    assert not list(warm_folder(cold_tmp).glob("*.sock"))  # turned off: no server
    for name in outputs:
        assert (fresh_project / name).read_bytes() == warm[name], name


def test_a_failing_stage_fails_the_same_way_warm(fresh_project: Path, tmp_path: Path) -> None:
    environment = {"TMPDIR": str(tmp_path)}
    run(["dvc", "repro", "ingest"], fresh_project, **environment)
    set_params(fresh_project, **{"data.source": "data/external/missing.csv"})
    result = run(["dvc", "repro", "ingest"], fresh_project, check=False, **environment)
    assert result.returncode != 0
    assert "data.source: file 'data/external/missing.csv' not found" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    log = server_log(tmp_path)
    # The first `dvc repro` ran ingest in its own process and started the server; the second ran it there.
    assert log.count("runs mlops-nb stage ingest") == 1 and re.search(r"child \d+ exited 1", log), log


def _sleeping_stage(project: Path) -> None:
    """A stage `nap` whose notebook sleeps for a minute."""
    cells = [
        nbformat.v4.new_code_cell("seconds = 60", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import time\n\ntime.sleep(seconds)"),
    ]
    kernelspec = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbformat.write(
        nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": kernelspec}),
        project / "nbs" / "pipelines" / "nap.ipynb",
    )
    path = project / "dvc.yaml"
    document = yaml.safe_load(path.read_text())
    document["stages"]["nap"] = {"cmd": "mlops-nb stage nap", "deps": ["nbs/pipelines/nap.ipynb"]}
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def test_ctrl_c_and_a_killed_client_stop_the_warm_child(fresh_project: Path, tmp_path: Path) -> None:
    _sleeping_stage(fresh_project)
    environment = command_env(TMPDIR=str(tmp_path), DVC_STAGE="check")  # as DVC runs a stage's command
    subprocess.run(["mlops-nb", "check"], cwd=fresh_project, env=environment, check=True, capture_output=True)
    wait_for(lambda: "ready" in server_log(tmp_path), what="the warm server")
    for stop, code in ((signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)):
        before = len(re.findall(r"child (\d+) runs mlops-nb stage nap", server_log(tmp_path)))
        client = subprocess.Popen(
            ["mlops-nb", "stage", "nap"],
            cwd=fresh_project,
            env={**environment, "DVC_STAGE": "nap"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        wait_for(
            lambda before=before: (
                len(re.findall(r"child (\d+) runs mlops-nb stage nap", server_log(tmp_path))) > before
            ),
            what="the child",
        )
        child = int(re.findall(r"child (\d+) runs mlops-nb stage nap", server_log(tmp_path))[-1])
        time.sleep(1)  # into the notebook's sleep
        client.send_signal(stop)
        _, errors = client.communicate(timeout=60)
        assert client.returncode == code, errors
        wait_for(
            lambda child=child: f"child {child} exited" in server_log(tmp_path),
            timeout=30,
            what="the child to stop",
        )
        with pytest.raises(ProcessLookupError):
            os.kill(child, 0)
