"""Where a sweep's runs spent their time, from the committed jobs' metrics.csv: per configuration, the median over
seeds of each run's total seconds of rollouts, fits and evaluations, and its wall time (the rest is startup, the
references and writing files): python benchmarks/time_split.py benchmarks/pixels/pendulum-sac"""
import sys
from pathlib import Path

import pandas as pd

from dagger.report.jobs import find_runs

PARTS = {"rollouts": "rollout_time_s", "fits": "fit_time_s", "evaluations": "eval_time_s"}


def main(folder: Path) -> None:
    runs = find_runs(folder)
    runs = runs[runs.status == "finished"]
    totals = pd.DataFrame([{"configuration": r.configuration, **{part: r.metrics[column].sum()
                                                                 for part, column in PARTS.items()},
                            "wall": r.metrics.wall_time_s.iloc[-1]} for r in runs.itertuples()])
    print("| configuration (runs) | rollouts (s) | fits (s) | evaluations (s) | wall time (s) |")
    print("|---|---|---|---|---|")
    for name, group in totals.groupby("configuration"):
        medians = group.median(numeric_only=True)
        print(f"| {name} ({len(group)}) | " + " | ".join(f"{medians[part]:,.0f}" for part in [*PARTS, "wall"]) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
