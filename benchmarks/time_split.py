"""Where a sweep's runs spent their time, from the committed jobs' metrics.csv: per configuration, the median over
seeds of each run's total seconds of rollouts, fits and evaluations, and its wall time (the rest is startup, the
references and writing files): python benchmarks/time_split.py benchmarks/pixels/pendulum-sac"""
import sys
from pathlib import Path

import pandas as pd

PARTS = {"rollouts": "rollout_time_s", "fits": "fit_time_s", "evaluations": "eval_time_s"}


def main(folder: Path) -> None:
    runs = []
    for metrics in sorted(folder.glob("*/metrics.csv")):
        settings = dict(item.split("=", 1) for item in metrics.parent.name.split(","))
        m = pd.read_csv(metrics)
        runs.append({"configuration": ",".join(f"{k}={v}" for k, v in settings.items() if k != "seed"),
                     **{part: m[column].sum() for part, column in PARTS.items()}, "wall": m.wall_time_s.iloc[-1]})
    table = pd.DataFrame(runs).groupby("configuration")
    print("| configuration (runs) | rollouts (s) | fits (s) | evaluations (s) | wall time (s) |")
    print("|---|---|---|---|---|")
    for name, group in table:
        medians = group.median(numeric_only=True)
        print(f"| {name} ({len(group)}) | " + " | ".join(f"{medians[part]:,.0f}" for part in [*PARTS, "wall"]) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
