"""The layout issue 9 asks for: small modules, and notebooks where each exported cell is demonstrated right after.

Both are read from the files (no import, no run): a module's size is its code lines (not blank, not a comment,
not the generated `__all__`); a notebook breaks the rule where an exported cell is followed directly by another.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import REPO_ROOT

MAX_MODULE_LINES = 400
# Modules exempt from the size limit (none today).
LARGE_MODULES: set[str] = set()
# Notebooks exempt from the demonstration rule, by module name (none today).
UNDEMONSTRATED: tuple[str, ...] = ()

MODULES = sorted(path for path in (REPO_ROOT / "mlops_nb").glob("*.py") if path.name != "_modidx.py")
NOTEBOOKS = sorted((REPO_ROOT / "nbs" / "api").glob("*.ipynb"))


def code_lines(module: Path) -> int:
    count, in_all = 0, False
    for line in module.read_text().splitlines():
        stripped = line.strip()
        in_all = in_all or stripped.startswith("__all__ = [")
        if in_all:
            in_all = not stripped.endswith("]")
            continue
        count += bool(stripped) and not stripped.startswith("#")
    return count


def back_to_back_exports(notebook: Path) -> list[int]:
    """The indices of exported cells followed directly by another exported cell."""
    cells = json.loads(notebook.read_text())["cells"]

    def exported(cell: dict) -> bool:
        return cell["cell_type"] == "code" and "".join(cell["source"]).lstrip().startswith(
            ("#| export", "#|export")
        )

    return [
        index
        for index, (cell, following) in enumerate(zip(cells, cells[1:], strict=False))
        if exported(cell) and exported(following)
    ]


@pytest.mark.parametrize(
    "module", [path for path in MODULES if path.stem not in LARGE_MODULES], ids=lambda path: path.stem
)
def test_modules_stay_small(module: Path) -> None:
    assert code_lines(module) <= MAX_MODULE_LINES, (
        f"{module.name}: split it by responsibility into another notebook"
    )


@pytest.mark.parametrize(
    "notebook",
    [path for path in NOTEBOOKS if not path.stem.split("_", 1)[-1].startswith(UNDEMONSTRATED)],
    ids=lambda path: path.stem,
)
def test_each_exported_cell_is_demonstrated(notebook: Path) -> None:
    cells = back_to_back_exports(notebook)
    assert cells == [], (
        f"{notebook.name}: exported cells {cells} are followed directly by another exported cell"
    )


def test_the_counters(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text("# generated\n\n__all__ = ['a',\n           'b']\n\ndef a():\n    return 1\n")
    assert code_lines(module) == 2
    code = {"cell_type": "code", "source": ["#| export\n", "x = 1"]}
    notebook = tmp_path / "notebook.ipynb"
    notebook.write_text(json.dumps({"cells": [code, code, {"cell_type": "code", "source": ["x"]}, code]}))
    assert back_to_back_exports(notebook) == [0]
