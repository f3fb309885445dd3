"""Run one stage in this process and record what it touches: the project files it opens or replaces, the
`ProjectPaths` it asks for, and the mlops_nb modules it imports. Used by tests/test_contract.py."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

root, stage_name, output = Path(sys.argv[1]).resolve(), sys.argv[2], Path(sys.argv[3])
os.chdir(root)

from mlops_nb import config, stage  # noqa: E402

touched: set[str] = set()


def _record(path: object) -> None:
    if isinstance(path, int):
        return
    try:
        resolved = Path(os.fsdecode(path)).resolve()
        relative = resolved.relative_to(root)
    except (TypeError, ValueError):
        return
    name = relative.as_posix()
    if "__pycache__" in name or (relative.name.startswith(".") and relative.name.endswith(".tmp")):
        return
    touched.add(name)


def _hook(event: str, arguments: tuple) -> None:
    # Relative names are opened against a folder's descriptor (shutil.rmtree), not the working directory.
    if event == "open" and isinstance(arguments[0], (str, bytes)) and os.path.isabs(arguments[0]):
        _record(arguments[0])
    elif event in ("os.rename", "os.replace"):
        _record(arguments[1])


# ProjectPaths is how notebooks name their files; pyarrow opens Parquet natively, where no audit event fires.
for attribute, value in list(vars(config.ProjectPaths).items()):
    if isinstance(value, property) and attribute != "root":

        def getter(self, _original=value.fget):
            path = _original(self)
            _record(path)
            return path

        setattr(config.ProjectPaths, attribute, property(getter))

sys.addaudithook(_hook)
stage.run_stage(stage_name, root=root, check=False)  # the runner's params check is not the notebook's reading
modules = sorted(name.split(".", 1)[1] for name in sys.modules if name.startswith("mlops_nb."))
output.write_text(json.dumps({"touched": sorted(touched), "modules": modules}))
