"""`dvc_md5` gives the values DVC writes to dvc.lock, for files and folders, on a real run."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops_nb.files import dvc_md5

pytestmark = pytest.mark.slow


def test_dvc_md5_matches_dvc_lock(pipeline_project: Path) -> None:
    lock = yaml.safe_load((pipeline_project / "dvc.lock").read_text())
    entries = [
        entry
        for stage in lock["stages"].values()
        for entry in [*stage.get("deps", []), *stage.get("outs", [])]
    ]
    folders = [entry for entry in entries if entry["md5"].endswith(".dir")]
    assert folders, "the run has a folder output (reports/plots)"
    for entry in entries:
        assert dvc_md5(pipeline_project / entry["path"]) == entry["md5"], entry["path"]
