"""A README table from a sweep's committed results, one row per task and configuration:
python benchmarks/table.py benchmarks/benchmark   (each task's summary: python -m dagger.report <its folder>)
python benchmarks/table.py <sweep> --without schedule.beta_ramp=10   (leaves out the rows whose configuration
                                                                    names that value)

Reads `<sweep>/<task>-<expert>/summary.csv` for every task folder in the order given by ORDER (then the rest)."""
import argparse
from pathlib import Path

import pandas as pd

ORDER = ["walker", "hopper", "halfcheetah", "ant", "cartpole", "acrobot", "lunarlander", "pendulum_swingup",
         "lunarlander_continuous", "pendulum"]


def folders(sweep: Path) -> list[Path]:
    found = [p for p in sweep.iterdir() if (p / "summary.csv").is_file()]
    rank = {name: i for i, name in enumerate(ORDER)}
    return sorted(found, key=lambda p: (rank.get(p.name.rsplit("-", 1)[0], len(ORDER)), p.name))


parser = argparse.ArgumentParser()
parser.add_argument("sweep", type=Path)
parser.add_argument("--without", action="append", default=[], metavar="KEY=VALUE",
                    help="leave out the rows whose configuration names this key=value (repeatable)")
args = parser.parse_args()
print("| task | configuration (seeds) | final normalised return [95% CI] | worst seed | steadiness (seeds) "
      "| labels to 90% (seeds) | wall time (s) |")
print("|---|---|---|---|---|---|---|")
for folder in folders(args.sweep):
    for r in pd.read_csv(folder / "summary.csv").itertuples():
        if set(r.configuration.split(",")) & set(args.without):
            continue
        steadiness = "-" if pd.isna(r.steadiness) else f"{r.steadiness:.2f} ({r.steady_seeds})"
        labels = "-" if pd.isna(r.labels_to_90pct) else f"{r.labels_to_90pct:,.0f}"
        print(f"| {r.task} | {r.configuration} ({r.seeds}) | {r.final_norm_return:.3f} [{r.final_ci_low:.3f}, "
              f"{r.final_ci_high:.3f}] | {r.worst_seed_final:.3f} | {steadiness} | {labels} "
              f"({r.seeds_reaching_90pct}/{r.seeds}) | {r.wall_time_s:.0f} |")
