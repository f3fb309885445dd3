"""The docs site: built from the notebooks with `sphinx-build -W`, checked in its HTML and in a real headless browser."""

from __future__ import annotations

import html
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from mlops_nb.site import page_name

from conftest import command_env

REPO_ROOT = Path(__file__).resolve().parents[1]
SITE = REPO_ROOT / "_docs"
API_NOTEBOOKS = sorted((REPO_ROOT / "nbs" / "api").glob("*.ipynb"))
TUTORIALS = sorted((REPO_ROOT / "nbs" / "tutorials").glob("*.ipynb"))
STALE_PAGES = ["api/removed_notebook.html", "_sources/api/removed_notebook.ipynb.txt"]


# Experiments are git refs, shared by every worktree of the repository: a name of this session's own.
EXPERIMENT = f"docs-site-test-{os.getpid()}"
EXPERIMENT_PARAM = "evaluate.importance_repeats=2"  # reruns the evaluate stage only


def _dvc(*arguments: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [str(Path(sys.executable).parent / "dvc"), *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        env=command_env(),
    )
    assert result.returncode == 0 or not check, (
        f"dvc {' '.join(arguments)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    )
    return result


@pytest.fixture(scope="session")
def site() -> Path:
    """The site as `make docs` builds it (warnings are errors); the pipeline runs first only when reports/ is missing.
    Beside the workspace's run, one experiment (`dvc exp run --temp`: the workspace is left as it is) whose evaluate
    report differs, so the All runs page has an experiment and an older report to link to; removed afterwards."""
    mlops_nb = str(Path(sys.executable).parent / "mlops-nb")
    build = [mlops_nb, "docs", "build", "--pipeline", "missing"]
    # What an earlier build left of a notebook removed since: Sphinx's incremental output keeps its page.
    for name in STALE_PAGES:
        (REPO_ROOT / "_proc" / "html" / name).parent.mkdir(parents=True, exist_ok=True)
        (REPO_ROOT / "_proc" / "html" / name).write_text("<html>a removed notebook</html>")
    if not (REPO_ROOT / "reports" / "evaluate.ipynb").exists():
        _dvc("repro")
    _dvc("exp", "remove", EXPERIMENT, check=False)
    _dvc("exp", "run", "--temp", "-n", EXPERIMENT, "-S", EXPERIMENT_PARAM)
    try:
        result = subprocess.run(build, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1200)
        assert result.returncode == 0, f"docs build failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
        yield SITE
    finally:
        _dvc("exp", "remove", EXPERIMENT, check=False)


def page_text(path: Path) -> str:
    """The visible text of a page's article (tags stripped, entities decoded)."""
    document = path.read_text()
    article = document[document.find("<article") : document.rfind("</article>")]
    return html.unescape(re.sub(r"<[^>]+>", "", article))


def all_pages(site: Path) -> list[Path]:
    return sorted(path for path in site.rglob("*.html") if "_static" not in path.parts)


def test_every_notebook_has_a_page(site: Path):
    expected = ["index.html", "runs/index.html", "runs/history.html"]
    expected += [f"api/{page_name(notebook)}.html" for notebook in API_NOTEBOOKS]
    expected += [f"tutorials/{page_name(notebook)}.html" for notebook in TUTORIALS]
    expected += [f"runs/{notebook.stem}.html" for notebook in (REPO_ROOT / "reports").glob("*.ipynb")]
    assert [name for name in expected if not (site / name).exists()] == []
    assert len(TUTORIALS) >= 3


def test_pages_of_removed_notebooks_are_gone(site: Path):
    assert [
        name
        for name in STALE_PAGES
        if (site / name).exists() or (REPO_ROOT / "_proc" / "html" / name).exists()
    ] == []


def test_navigation_follows_notebook_order(site: Path):
    home = (site / "index.html").read_text()
    order = [f"api/{page_name(notebook)}.html" for notebook in API_NOTEBOOKS]
    positions = [home.find(f'href="{name}"') for name in order]
    assert -1 not in positions and positions == sorted(positions)


def _documented_symbols(notebook: Path) -> list[tuple[str, str]]:
    """(module, name) of each public function and class a library notebook exports."""
    match = re.search(r"#\|\s*default_exp\s+([\w.]+)", notebook.read_text())
    module = importlib.import_module(f"mlops_nb.{match.group(1)}")
    return [
        (module.__name__, name)
        for name in getattr(module, "__all__", [])
        if (inspect.isfunction(getattr(module, name, None)) or inspect.isclass(getattr(module, name, None)))
        and getattr(getattr(module, name), "__module__", "") == module.__name__
    ]


@pytest.mark.parametrize("notebook", API_NOTEBOOKS, ids=lambda path: path.stem)
def test_api_entries_with_signatures_and_source_links(site: Path, notebook: Path):
    page = (site / "api" / f"{page_name(notebook)}.html").read_text()
    symbols = _documented_symbols(notebook)
    assert symbols, f"{notebook.name} exports no public function or class"
    missing = [
        name
        for _, name in symbols
        if not re.search(rf"<h[2-4][^>]*>{re.escape(name)}<a class=\"headerlink\"", page)
    ]
    assert missing == [], f"no show_doc entry on the page of {notebook.name} for {missing}"
    module_file = symbols[0][0].replace(".", "/") + ".py"
    assert re.search(rf'href="https://github.com/[^"]+/blob/main/{module_file}#L\d+"', page), "no source link"
    assert 'class="highlight-python' in page  # the signatures


def test_hidden_cells_and_directives_do_not_show(site: Path):
    markers = (
        "default_exp",
        "from fastcore.test import",
        "#| ",
        "WARNING: THIS FILE WAS AUTOGENERATED",
        'target="_blank" style=',
    )
    leaks = {}
    for path in all_pages(site):
        text = page_text(path)
        # The docs modules' own pages describe and demonstrate the conversion on cells holding the last three markers.
        checked = markers[:2] if path in (site / "api" / "myst.html", site / "api" / "site.html") else markers
        found = [marker for marker in checked if marker in text]
        if found:
            leaks[str(path.relative_to(site))] = found
    assert leaks == {}


def test_cell_options_are_honoured(site: Path):
    page = (site / "tutorials" / "exploration_to_pipeline.html").read_text()
    text = page_text(site / "tutorials" / "exploration_to_pipeline.html")
    assert "quality_report(frame" not in text  # `echo: false`: the code is removed ...
    assert "missing_cells" in text or "<table" in page  # ... its output table stays
    assert "hide-input" in page and "<details" in page  # `code-fold: true`: the code is folded
    assert 'class="math' in page and "_static/mathjax/tex-svg.js" in page  # math, with the bundled MathJax


def test_search_index_lists_api_names(site: Path):
    index = (site / "searchindex.js").read_text()
    names = [name for notebook in API_NOTEBOOKS for _, name in _documented_symbols(notebook)]
    assert [
        name for name in names if f'"{name.lower()}"' not in index.lower() and f"{name}" not in index
    ] == []


def test_latest_run_pages_show_the_current_metrics(site: Path):
    metrics = json.loads((REPO_ROOT / "reports" / "metrics.json").read_text())
    latest = (site / "runs" / "index.html").read_text()
    for name, value in metrics.items():
        assert re.search(
            rf"<td[^>]*><p>{re.escape(name)}</p></td>\s*<td[^>]*><p>{re.escape(str(value))}</p></td>", latest
        ), (name, value)
    evaluate = site / "runs" / "evaluate.html"
    if evaluate.exists():
        assert "<img" in evaluate.read_text()  # the plots of the run


def _runs_table(page: Path) -> tuple[list[str], dict[str, dict[str, str]]]:
    """The header and the rows (run name -> column -> cell's HTML) of the All runs table."""
    document = page.read_text()
    table = document[document.find("<table") : document.find("</table>")]
    header = [html.unescape(name) for name in re.findall(r"<th>(.*?)</th>", table)]
    rows = {}
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]:
        cells = re.findall(r"<td>(.*?)</td>", row, re.S)
        rows[html.unescape(cells[0])] = dict(zip(header, cells, strict=True))
    return header, rows


def test_all_runs_page_lists_every_run_with_links_to_its_reports(site: Path):
    page = site / "runs" / "history.html"
    header, rows = _runs_table(page)
    assert {"workspace", EXPERIMENT} <= set(rows) and any(row["kind"] == "commit" for row in rows.values()), (
        sorted(rows)
    )
    metrics = json.loads((REPO_ROOT / "reports" / "metrics.json").read_text())
    assert rows["workspace"]["test accuracy"] == str(round(metrics["accuracy"], 4))  # the test metrics ...
    assert [name for name in header if name.startswith("cv")], header  # ... then the cross-validation ones
    assert (
        rows[EXPERIMENT]["param evaluate.importance_repeats"] == "2"
        and rows[EXPERIMENT]["kind"] == "experiment"
    )
    assert (
        rows["workspace"]["data"] and rows["workspace"]["data"] == rows[EXPERIMENT]["data"]
    )  # the data's hash
    links = {
        name: {
            stage: target for target, stage in re.findall(r'<a href="([^"]+)">([^<]+)</a>', row["reports"])
        }
        for name, row in rows.items()
    }
    stages = [
        notebook.stem for notebook in (REPO_ROOT / "reports").glob("*.ipynb") if notebook.stem != "monitor"
    ]
    assert sorted(links["workspace"]) == sorted(stages), links["workspace"]
    assert all(target == f"{stage}.html" for stage, target in links["workspace"].items())
    # The experiment reran evaluate only: its other reports are the workspace's pages, its evaluate report its own.
    assert links[EXPERIMENT]["train"] == "train.html"
    assert re.fullmatch(r"reports/evaluate-[0-9a-f]{10}\.html", links[EXPERIMENT]["evaluate"]), links[
        EXPERIMENT
    ]
    for run_links in links.values():
        for target in run_links.values():
            assert (page.parent / target).is_file(), target
    assert "Test-set metrics" in page_text(
        page.parent / links[EXPERIMENT]["evaluate"]
    )  # the experiment's own report


def test_site_works_offline(site: Path):
    remote = {}
    for path in all_pages(site):
        found = re.findall(r'<(?:script|link|img)[^>]+(?:src|href)="(https?://[^"]+)"', path.read_text())
        if found:
            remote[str(path.relative_to(site))] = found
    assert remote == {}
    assert (site / "_static" / "mathjax" / "tex-svg.js").stat().st_size > 1_000_000


def _chromium(*arguments: str, profile: Path) -> subprocess.CompletedProcess:
    command = [
        shutil.which("chromium"),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1400,1000",
        "--virtual-time-budget=5000",
        *arguments,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium is not installed: `make test` installs it"
)
def test_pages_render_in_a_real_browser(site: Path):
    with tempfile.TemporaryDirectory() as profile:
        home = _chromium("--dump-dom", (site / "index.html").as_uri(), profile=Path(profile))
        assert "<title>mlops_nb" in home.stdout and "make run" in re.sub(r"<[^>]+>", "", home.stdout)
        api = _chromium("--dump-dom", (site / "api" / "data.html").as_uri(), profile=Path(profile))
        assert "<title>data" in api.stdout and "<table" in api.stdout and "read_source" in api.stdout
        # Sphinx's search runs in the page's JavaScript: the result list links to the API page.
        search = _chromium(
            "--dump-dom", (site / "search.html").as_uri() + "?q=read_source", profile=Path(profile)
        )
        assert re.search(r'<a [^>]*href="[^"]*api/data\.html[^"]*"', search.stdout), search.stdout[-2000:]
        runs = _chromium("--dump-dom", (site / "runs" / "history.html").as_uri(), profile=Path(profile))
        assert (
            "<title>All runs" in runs.stdout
            and f">{EXPERIMENT}<" in runs.stdout
            and "runs-table" in runs.stdout
        )
        for name, page in (("home", "index.html"), ("api", "api/data.html")):
            shot = site / f"screenshot-{name}.png"
            shot.unlink(missing_ok=True)
            _chromium(f"--screenshot={shot}", (site / page).as_uri(), profile=Path(profile))
            assert shot.exists() and shot.stat().st_size > 20_000, f"no screenshot of {page}"
