"""The model registry end to end: `mlops-nb models ...` on a real git + DVC repository, with GTO's tags."""

from __future__ import annotations

import collections
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import skops.io

from conftest import run, set_params

pytestmark = pytest.mark.slow


@pytest.fixture
def project(fresh_run: Path) -> Path:
    """A private copy of the pipeline project with its run committed, as a user leaves it before registering."""
    if run(["git", "status", "--porcelain"], fresh_run).stdout.strip():
        run(["git", "add", "-A"], fresh_run)
        run(["git", "commit", "-qm", "run the pipeline"], fresh_run)
    return fresh_run


def models(project: Path, *arguments: str, check: bool = True):
    return run(["mlops-nb", "models", *arguments], project, check=check)


def registry_state(project: Path) -> str:
    """Every tag with what it points at, and HEAD: what a refused command must leave as it was."""
    tags = run(["git", "for-each-ref", "--format=%(refname) %(objectname)", "refs/tags"], project).stdout
    return tags + run(["git", "rev-parse", "HEAD"], project).stdout


def assert_refused(result, *fragments: str) -> None:
    """A one-line `error: ...` on stderr naming `fragments`, no traceback, a non-zero exit."""
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in last, last


def test_register_promote_get_reproduce(project: Path, tmp_path: Path):
    paths_model = project / "models" / "model.skops"
    v1_bytes = paths_model.read_bytes()
    v1_metrics = json.loads((project / "reports" / "metrics.json").read_text())
    assert "registered model@v1.0.0" in models(project, "register", "-m", "baseline").stdout

    set_params(project, **{"train.hyperparameters.random_forest.n_estimators": 40})
    run(["dvc", "repro"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "fewer trees"], project)
    assert "registered model@v1.1.0" in models(project, "register").stdout
    v2_bytes = paths_model.read_bytes()
    assert v2_bytes != v1_bytes

    models(project, "promote", "v1.0.0", "--stage", "prod")
    tags = run(["git", "tag", "--list"], project).stdout.split()
    assert {"model@v1.0.0", "model@v1.1.0", "model#prod#1"} <= set(tags)
    # GTO reads the same registry from the tags.
    gto = run(["gto", "show", "model@v1.0.0", "--json"], project).stdout
    assert json.loads(gto)[0]["stages"][0]["stage"] == "prod"

    out = tmp_path / "prod"
    models(project, "get", "--stage", "prod", "--out", str(out))
    assert (out / "model.skops").read_bytes() == v1_bytes
    assert paths_model.read_bytes() == v2_bytes
    card = json.loads((out / "card.json").read_text())
    assert card["version"] == "v1.0.0" and card["test_metrics"] == v1_metrics
    assert card["registry"]["stages"] == ["prod"] and card["registry"]["message"] == "baseline"
    assert card["artifact"]["sha256"] == hashlib.sha256(v1_bytes).hexdigest()
    assert {"source", "sha256", "rows"} <= set(card["data"]) and card["schema"]["columns"]
    assert {"python", "scikit-learn", "pandas", "numpy", "optuna", "mlops_nb"} <= set(card["libraries"])
    for key in ["created", "git", "params", "cv_metrics", "tuning", "reports", "dependencies"]:
        assert card[key], key
    # The commit and time of the version are the registration's; the train stage's card holds neither.
    v1 = json.loads(models(project, "list", "--json").stdout)[0]
    assert card["git"]["commit"] == v1["commit"] and card["created"] == v1["registered_at"]
    assert "## Test metrics" in (out / "card.md").read_text()
    # The export stage's ONNX model and parity record come with the version, laid out as the server reads them.
    onnx = card["onnx"]
    assert onnx["parity_passed"] is True and onnx["path"] == "models/onnx/model.onnx", onnx
    assert hashlib.sha256((out / "onnx" / "model.onnx").read_bytes()).hexdigest() == onnx["sha256"]
    assert hashlib.sha256((out / "onnx" / "parity.json").read_bytes()).hexdigest() == onnx["parity_sha256"]
    from mlops_nb.serve_runtime import load_from_folder
    from mlops_nb.serve_state import load_version

    assert load_from_folder(out, version="v1.0.0").runtime.name == "onnx"
    served = load_version(project, stage="prod")
    assert (served.version, served.runtime.name, served.sha256) == ("v1.0.0", "onnx", onnx["sha256"])

    listed = json.loads(models(project, "list", "--json").stdout)
    assert [(entry["version"], entry["stages"]) for entry in listed] == [("v1.0.0", ["prod"]), ("v1.1.0", [])]
    assert listed[0]["record"]["data_sha256"] == card["data"]["sha256"]
    table = models(project, "list").stdout
    assert "v1.0.0" in table and "prod" in table and "accuracy" in table
    assert "# Model card: random_forest v1.1.0" in models(project, "show", "v1.1.0").stdout

    reproduced = models(project, "reproduce", "v1.0.0", check=False)
    assert reproduced.returncode == 0, reproduced.stdout + reproduced.stderr
    assert "reproduced: identical" in reproduced.stdout
    # Progress on stderr as the pipeline reruns (each stage, the time elapsed); stdout holds the summary alone.
    assert "running stage 'train'" in reproduced.stderr and "s elapsed)" in reproduced.stderr, (
        reproduced.stderr
    )
    assert "running stage" not in reproduced.stdout and reproduced.stdout.startswith("model@v1.0.0 (commit ")
    assert f"{v1_metrics['test_rows']} of {v1_metrics['test_rows']} identical" in reproduced.stdout
    assert (
        len(run(["git", "worktree", "list"], project).stdout.strip().splitlines()) == 1
    )  # the temporary one is gone

    models(project, "demote", "v1.0.0")
    assert json.loads(models(project, "list", "--json").stdout)[0]["stages"] == []
    assert_refused(
        models(project, "get", "--stage", "prod", check=False), "no version of model is in stage 'prod'"
    )


def test_register_without_trained_model(fresh_project: Path):
    before = registry_state(fresh_project)
    assert_refused(models(fresh_project, "register", check=False), "no trained model", "models/model.skops")
    assert registry_state(fresh_project) == before


def test_register_dirty_workspace(project: Path):
    set_params(project, **{"train.hyperparameters.random_forest.n_estimators": 7})
    before = registry_state(project)
    assert_refused(
        models(project, "register", check=False), "dirty or uncommitted", "params.yaml", "--allow-dirty"
    )
    assert registry_state(project) == before
    models(project, "register", "--allow-dirty")
    assert json.loads(models(project, "list", "--json").stdout)[0]["record"]["dirty"] is True


def test_register_uncommitted_run(project: Path):
    run(["git", "reset", "-q", "--soft", "HEAD~1"], project)
    before = registry_state(project)
    assert_refused(
        models(project, "register", check=False), "uncommitted changes to", "dvc.lock", "is not committed"
    )
    assert registry_state(project) == before


def test_register_version_not_semver(project: Path):
    before = registry_state(project)
    for version in ["1.2", "latest", "1.0.0.0"]:
        assert_refused(
            models(project, "register", f"--version={version}", check=False),
            "is not a semantic version",
            repr(version),
        )
    assert registry_state(project) == before


def test_register_version_that_exists(project: Path):
    models(project, "register", "--version", "2.0.0")
    before = registry_state(project)
    assert_refused(models(project, "register", check=False), "is already registered as model@v2.0.0")
    run(["git", "commit", "-q", "--allow-empty", "-m", "another commit"], project)
    before = registry_state(project)
    assert_refused(
        models(project, "register", "--version", "v2.0.0", check=False), "version v2.0.0 already exists"
    )
    assert registry_state(project) == before


def test_promote_unknown_version_and_bad_stage_names(project: Path):
    models(project, "register")
    before = registry_state(project)
    assert_refused(
        models(project, "promote", "v9.9.9", "--stage", "prod", check=False),
        "model@v9.9.9 is not registered",
        "v1.0.0",
    )
    for stage in ["pr od", "prod..1", "-prod", "prod:x~1"]:
        assert_refused(
            models(project, "promote", "v1.0.0", f"--stage={stage}", check=False),
            "cannot be part of a git tag",
            repr(stage),
        )
    assert registry_state(project) == before


def test_get_artifact_in_no_cache(project: Path, tmp_path: Path):
    models(project, "register")
    shutil.rmtree(project / ".dvc" / "cache")
    before = registry_state(project)
    out = tmp_path / "out"
    assert_refused(
        models(project, "get", "v1.0.0", "--out", str(out), check=False),
        "model@v1.0.0",
        "in no DVC cache or remote",
        "dvc push",
    )
    assert not (out / "model.skops").exists()
    assert registry_state(project) == before


def test_sha256_mismatch_is_refused(project: Path, tmp_path: Path):
    model = project / "models" / "model.skops"
    models(project, "register")
    # A tampered copy in the DVC cache is refused by `get`...
    md5 = hashlib.md5(model.read_bytes()).hexdigest()
    cached = project / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]
    cached.chmod(0o644)
    cached.write_bytes(cached.read_bytes()[:-10])
    out = tmp_path / "out"
    assert_refused(models(project, "get", "v1.0.0", "--out", str(out), check=False), "not the registered")
    assert not (out / "model.skops").exists()
    # ...and a tampered workspace model by `register`.
    run(["git", "commit", "-q", "--allow-empty", "-m", "another commit"], project)
    with open(model, "ab") as stream:
        stream.write(b"tampered")
    before = registry_state(project)
    assert_refused(models(project, "register", check=False), "does not match the recorded")
    assert registry_state(project) == before


def test_untrusted_type_is_refused(project: Path):
    model, card_path = project / "models" / "model.skops", project / "models" / "card.json"
    skops.io.dump({"counts": collections.Counter("abc")}, model)
    card = json.loads(card_path.read_text())
    card["artifact"]["sha256"] = hashlib.sha256(model.read_bytes()).hexdigest()
    card_path.write_text(json.dumps(card))
    before = registry_state(project)
    assert_refused(models(project, "register", check=False), "untrusted type(s) collections.Counter")
    assert registry_state(project) == before
