"""The benchmark's peak-memory measurement (`bench/peak_rss.py`) reports the command's memory, not its caller's."""

import subprocess
import sys
from pathlib import Path

import numpy as np

from conftest import REPO_ROOT

PEAK_RSS = REPO_ROOT / "bench" / "peak_rss.py"
MB = 1_000_000
ALLOCATE = "import numpy, sys; a = numpy.ones({size} // 8); sys.exit({code})"


def test_peak_rss_counts_the_command_not_the_caller(tmp_path: Path) -> None:
    held = np.ones(400 * MB // 8)  # the caller holds 400 MB, as the benchmark does after writing its data set
    out = tmp_path / "peak"
    child = [sys.executable, "-c", ALLOCATE.format(size=80 * MB, code=0)]
    subprocess.run([sys.executable, str(PEAK_RSS), str(out), *child], check=True)
    peak = int(out.read_text())
    assert 80 * MB < peak < 250 * MB, f"peak {peak / MB:.0f} MB"
    assert held.sum() == held.size


def test_peak_rss_passes_the_exit_code_through(tmp_path: Path) -> None:
    out = tmp_path / "peak"
    result = subprocess.run(
        [sys.executable, str(PEAK_RSS), str(out), sys.executable, "-c", ALLOCATE.format(size=MB, code=3)]
    )
    assert result.returncode == 3
    assert int(out.read_text()) > MB
    assert subprocess.run([sys.executable, str(PEAK_RSS)], capture_output=True).returncode == 2
