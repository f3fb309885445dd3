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


def test_stages_after_a_passed_check_skip_scikit_learn(fresh_project: Path) -> None:
    """`check_params` imports scikit-learn for the model check once per params.yaml, not in every stage (ingest)."""
    probe = "from mlops_nb.stage import check_params; import sys; check_params('.'); print('sklearn' in sys.modules)"

    def imports_sklearn() -> bool:
        result = subprocess.run(
            [sys.executable, "-c", probe],
            cwd=fresh_project,
            env=command_env(),
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip() == "True"

    assert imports_sklearn()  # the first check of this params.yaml
    assert not imports_sklearn()  # recorded: the next stage does not pay for it
    (fresh_project / "params.yaml").write_text((fresh_project / "params.yaml").read_text() + "\n# changed\n")
    assert imports_sklearn()  # a changed params.yaml is checked again
