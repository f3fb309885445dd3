"""Evidently's DataDriftPreset on a reference and a current Parquet file; run in Evidently's own virtualenv.

    EVIDENTLY_PYTHON bench/evidently_drift.py REFERENCE.parquet CURRENT.parquet OUT.json [COLUMN_TO_DROP ...]

Writes {"seconds": time of `Report.run` alone (reading the files excluded), "drifted": [columns], "version": ...}.
Evidently 0.7.23 does not import with pandas 3: its virtualenv needs `pandas<3` (bench_monitor.py creates it).
"""

import json
import sys
import time

import pandas as pd


def main() -> int:
    reference_path, current_path, out, *dropped = sys.argv[1:]
    import evidently
    from evidently import Report
    from evidently.presets import DataDriftPreset

    reference = pd.read_parquet(reference_path).drop(columns=dropped, errors="ignore")
    current = pd.read_parquet(current_path).drop(columns=dropped, errors="ignore")
    started = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(current, reference)
    seconds = time.perf_counter() - started
    drifted, scores = [], {}
    for metric in snapshot.dict()["metrics"]:
        name = str(metric.get("metric_name") or metric.get("metric_id") or "")
        if not name.startswith("ValueDrift("):
            continue
        column = name.split("column=", 1)[1].split(",", 1)[0].rstrip(")")
        threshold = (
            float(name.split("threshold=", 1)[1].split(",", 1)[0].rstrip(")"))
            if "threshold=" in name
            else 0.1
        )
        method = name.split("method=", 1)[1].split(",", 1)[0] if "method=" in name else ""
        value = float(metric["value"])
        scores[column] = {"value": value, "threshold": threshold, "method": method}
        # p-value methods drift below the threshold, distances above it
        if (
            ("p_value" in method.lower() or "test" in method.lower())
            and value < threshold
            or not ("p_value" in method.lower() or "test" in method.lower())
            and value >= threshold
        ):
            drifted.append(column)
    with open(out, "w") as stream:
        json.dump(
            {
                "seconds": seconds,
                "drifted": sorted(drifted),
                "scores": scores,
                "version": evidently.__version__,
            },
            stream,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
