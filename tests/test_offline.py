"""No internet at run time: the project's own configuration keeps DVC from phoning home, for every user of the
project (the Makefile and the tests also set DVC_NO_ANALYTICS, a plain `dvc repro` does not)."""

from __future__ import annotations

import os
import subprocess
import sys

from conftest import REPO_ROOT


def _printed_in_project(probe: str) -> str:
    """What `probe` prints, run in the project without the DVC_NO_ANALYTICS variable."""
    env = {name: value for name, value in os.environ.items() if name != "DVC_NO_ANALYTICS"}
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


def test_dvc_sends_no_usage_analytics_from_this_project() -> None:
    assert _printed_in_project("import dvc.analytics; print(dvc.analytics.is_enabled())") == "False"


def test_dvc_checks_for_no_updates_from_this_project() -> None:
    probe = "from dvc.repo import Repo; print(Repo('.').config['core'].get('check_update', True))"
    assert _printed_in_project(probe) == "False"
