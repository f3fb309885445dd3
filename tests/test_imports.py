"""A stage process does not pay for jsonschema's optional IRI checker (a Lark grammar built at import).

JupyterLab (`make lab`) installs `rfc3987_syntax`, which jsonschema imports when present: 1.5 to 4 s in every stage
process. `mlops_nb.stage` imports jsonschema without it. A stand-in module on `PYTHONPATH` records whether it was
imported, so this test needs no JupyterLab installed.
"""

import subprocess
import sys
from pathlib import Path

from conftest import command_env

STAND_IN = """\
import os
import pathlib

pathlib.Path(os.environ["RFC3987_MARKER"]).write_text("imported")


def is_valid_syntax(rule, value):
    return True
"""


def imports_stand_in(code: str, tmp_path: Path) -> bool:
    marker = tmp_path / "marker"
    marker.unlink(missing_ok=True)
    env = command_env(PYTHONPATH=str(tmp_path), RFC3987_MARKER=str(marker))
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path)
    return marker.exists()


def test_stage_imports_skip_the_iri_checker(tmp_path: Path) -> None:
    (tmp_path / "rfc3987_syntax.py").write_text(STAND_IN)
    assert imports_stand_in("import jsonschema", tmp_path), "jsonschema no longer imports rfc3987_syntax"
    assert not imports_stand_in("import mlops_nb.stage, papermill, nbformat.validator", tmp_path)
    # Only while jsonschema loads: code in the stage process can still import the module itself.
    assert imports_stand_in("import mlops_nb.stage; import rfc3987_syntax", tmp_path)
