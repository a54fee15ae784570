"""What `make run`'s rule would say at other budgets, from runs evaluated after every iteration:
python benchmarks/default_learner/budget.py benchmarks/default_learner/walker-sac-14

A run of N iterations collects and fits exactly the first N iterations of a longer run with the same seed (the
collection's seeds, the fit's generator and its budget depend on the iteration, not on N), so the committed
14-iteration runs show every budget up to 14. `make run` evaluates every 2nd iteration and at the last; its rule
holds on a seed whose last three such evaluations are all at or above 0.85 and whose last is at or above 0.9."""
import re
import sys
from pathlib import Path

import pandas as pd

BUDGETS = range(8, 15)


def rule(curve: pd.Series, n: int) -> bool:
    """make run's rule for a run stopped after iteration n, evaluated every 2nd iteration and at the last."""
    shown = sorted({i for i in range(2, n + 1, 2)} | {n})[-3:]
    return bool(curve[n] >= 0.9 and all(curve[i] >= 0.85 for i in shown))


def learner(configuration: str) -> str:
    keys = dict(kv.split("=", 1) for kv in re.split(r",(?![^\[]*\])", configuration))
    hidden = keys.get("policy.hidden", "[256,256]").strip("[]").replace(",", "x")
    budget = (f"{keys['policy.gradient_steps']} minibatches" if keys.get("policy.epochs") == "0"
              else f"{keys.get('policy.epochs', 20)} epochs")
    ema = f", EMA {keys['policy.ema']}" if "policy.ema" in keys else ""
    lr = f", lr {keys['policy.lr']}" if "policy.lr" in keys else ""
    return f"3 MLPs {hidden}, {budget}{lr}{ema}"


root = Path(sys.argv[1])
runs: dict[str, list[pd.Series]] = {}
for metrics in sorted(root.glob("*/metrics.csv")):
    configuration = re.sub(r",?schedule\.iterations=\d+", "", metrics.parent.name.rsplit(",seed=", 1)[0])
    curve = pd.read_csv(metrics).set_index("iteration").normalized_return
    if curve.index.max() >= max(BUDGETS):  # finished runs only
        runs.setdefault(configuration, []).append(curve)
print("| learner | seeds | " + " | ".join(f"N={n}" for n in BUDGETS) + " |")
print("|---|---|" + "---|" * len(BUDGETS))
for configuration, curves in runs.items():
    cells = [f"{sum(rule(c, n) for c in curves)}/{len(curves)}" for n in BUDGETS]
    print(f"| {learner(configuration)} | {len(curves)} | " + " | ".join(cells) + " |")
