"""The params check every stage runs first: its cost in the `ingest` stage, with the model check recorded by an
earlier stage (`mlops-nb check`, first in `dvc repro`) against the same stage re-checking the models (no record).

The model check imports scikit-learn and the zoo's estimators; ingest needs neither. Both sides run `mlops-nb stage
ingest` in the same fresh project copy, interleaved; the record is deleted before each "no record" run.

    python bench/bench_check.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from measure import Report, interleave, load_average, median, run, spread
from project_copy import make_project

from mlops_nb.config import project_paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs of each side (default 5)")
    arguments = parser.parse_args()
    print(f"check benchmark: load average {load_average()}", flush=True)
    project = make_project(Path(tempfile.mkdtemp(prefix="bench-check-")) / "project")
    stamp = project_paths(project).check_stamp
    run(["mlops-nb", "check"], project)  # records the model check, as the check stage of `dvc repro` does
    recorded_key = stamp.read_text()
    with_record: list[float] = []
    without_record: list[float] = []

    def recorded(_: int) -> None:
        stamp.write_text(recorded_key)
        with_record.append(run(["mlops-nb", "stage", "ingest"], project).seconds)

    def unrecorded(_: int) -> None:
        stamp.unlink(missing_ok=True)
        without_record.append(run(["mlops-nb", "stage", "ingest"], project).seconds)

    interleave(arguments.repeats, recorded, unrecorded, lambda _: None)
    print(f"ingest, model check recorded:     {spread(with_record)}")
    print(f"ingest, model check in the stage: {spread(without_record)}")
    saved = median(without_record) - median(with_record)
    ratio = median(with_record) / median(without_record)
    report = Report()
    report.target(
        "ingest with the check recorded / re-checking",
        f"{ratio:.2f}x ({saved:+.2f} s saved)",
        "< 1.0x",
        ratio < 1.0,
    )
    report.print()
    print(f"load average at the end: {load_average()}")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
