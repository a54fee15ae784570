"""What `make run`'s rule would say at other budgets, from runs evaluated after every iteration:
python benchmarks/default_learner/budget.py benchmarks/default_learner/walker-sac-14

A run of N iterations collects and fits exactly the first N iterations of a longer run with the same seed (the
collection's seeds, the fit's generator and its budget depend on the iteration, not on N; so does beta, under the
indicator and under the linear schedule's fixed ramp; linear runs from before that ramp fell over N), so the committed
14-iteration runs show every budget up to 14. `make run` evaluates every 2nd iteration and at the last; its rule
holds on a seed whose last three such evaluations are all at or above 0.85 and whose last is at or above 0.9."""
import re
import sys
from pathlib import Path

import pandas as pd

from table import learner, rule, swept  # the default-learner table's names, make run's rule, a job's configuration

BUDGETS = range(8, 15)


root = Path(sys.argv[1])
runs: dict[str, list[pd.Series]] = {}
for metrics in sorted(root.glob("*/metrics.csv")):
    configuration = re.sub(r",?schedule\.iterations=\d+", "", swept(metrics.parent))
    curve = pd.read_csv(metrics).set_index("iteration").normalized_return
    if curve.index.max() >= max(BUDGETS):  # finished runs only
        runs.setdefault(configuration, []).append(curve)
print("| learner | seeds | " + " | ".join(f"N={n}" for n in BUDGETS) + " |")
print("|---|---|" + "---|" * len(BUDGETS))
for configuration, curves in runs.items():
    cells = [f"{sum(rule(c, n) for c in curves)}/{len(curves)}" for n in BUDGETS]
    print(f"| {learner(configuration)} | {len(curves)} | " + " | ".join(cells) + " |")
