"""Measurement helpers shared by the benchmarks: timed runs of commands (with their peak memory), interleaved
repeats, medians, and the table of targets a benchmark prints at the end.

Machines are shared and noisy: every comparison runs both sides in the same run, interleaved, with their order
swapped each repeat, memory warmed before each run (`warm_memory`), and compares medians.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from project_copy import command_env

BENCH_DIR = Path(__file__).resolve().parent
PYTHON = sys.executable


@dataclass
class Run:
    """One finished command: wall time, peak memory and timed output."""

    seconds: float
    peak_rss: int  # bytes: the largest RSS of the command and of every process under it (0: not measured)
    lines: list[tuple[float, str]]  # (seconds since the start, line) of stdout and stderr together

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)


def run(command: Sequence[str], cwd: Path, *, label: str = "", peak: bool = False, **extra_env: str) -> Run:
    """Run `command`, fail loudly on a non-zero exit; its wall time, timed output and, with `peak`, peak memory.

    The peak is measured through `peak_rss.py` (see there why not from this process, which may hold a large data
    set); that costs one small Python start, so it is only done where the peak is reported.
    """
    peak_file = Path(tempfile.mkstemp(prefix="peak-rss-")[1]) if peak else None
    started = time.perf_counter()
    process = subprocess.Popen(
        [PYTHON, str(BENCH_DIR / "peak_rss.py"), str(peak_file), *command] if peak_file else command,
        cwd=cwd,
        env=command_env(PYTHONHASHSEED="0", PYTHONUNBUFFERED="1", **extra_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
    )
    lines = [(time.perf_counter() - started, line.rstrip("\n")) for line in process.stdout]
    process.wait()
    seconds = time.perf_counter() - started
    process.stdout.close()
    peak_rss = 0
    if peak_file:
        peak_rss = int(peak_file.read_text() or 0)
        peak_file.unlink()
    result = Run(seconds, peak_rss, lines)
    if process.returncode != 0:
        raise SystemExit(
            f"bench: {label or ' '.join(command)} exited {process.returncode} in {cwd}\n{result.output[-4000:]}"
        )
    return result


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """`median 1.23 s (n=3: 1.20, 1.23, 1.40)`."""
    return f"median {median(values):.2f} s (n={len(values)}: {', '.join(f'{value:.2f}' for value in values)})"


def interleave(
    repeats: int, first: Callable[[int], None], second: Callable[[int], None], after: Callable[[int], None]
) -> None:
    """Run `first` and `second` `repeats` times, swapping their order each time (a drifting load hits both), with
    memory warmed before each (`warm_memory`)."""
    for index in range(repeats):
        for step in (first, second) if index % 2 == 0 else (second, first):
            warm_memory()
            step(index)
        after(index)


WARM_BYTES = 1_600_000_000


def warm_memory(size: int = WARM_BYTES) -> None:
    """Touch and free `size` bytes in a short-lived process. On a virtual machine whose host takes back the guest's
    free memory, memory a process touches first can cost 10-50x more at some moments than at others (seen here:
    0.1 s to 5.5 s for the same 400 MB); memory freed a moment ago is cheap again. Called before each timed run of
    both sides of a comparison, it makes the measurement about the code, not the host."""
    subprocess.run(
        [PYTHON, "-c", f"import numpy; numpy.ones({size // 8}).sum()"], check=True, capture_output=True
    )


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the report's header and footer."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


class Report:
    """Collects the targets and prints them as a table at the end."""

    def __init__(self, title: str = "Targets") -> None:
        self.title = title
        self.rows: list[tuple[str, str, str, bool]] = []

    def target(self, name: str, measured: str, target: str, passed: bool) -> None:
        self.rows.append((name, measured, target, passed))
        print(f"  -> {name}: {measured} (target {target}): {'PASS' if passed else 'FAIL'}", flush=True)

    @property
    def passed(self) -> bool:
        return all(row[3] for row in self.rows)

    def print(self) -> None:
        print(f"\n== {self.title}")
        width = max((len(row[0]) for row in self.rows), default=0)
        for name, measured, target, passed in self.rows:
            print(f"  {'PASS' if passed else 'FAIL'}  {name:<{width}}  {measured:<28} target {target}")
