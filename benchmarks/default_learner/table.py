"""The README's table of the default-learner sweep, from the committed results:
python benchmarks/default_learner/table.py   (after python -m dagger.report benchmarks/default_learner/walker-sac)

Adds what the default walker run (`make run`: evaluated every 2nd iteration) would show of each job: whether its
final evaluation is at or above 0.9 and its last three (iterations 6, 8, 10) at or above 0.85."""
import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).parent / "walker-sac"


def pairs(configuration: str) -> list[str]:
    """The `key=value` parts of a configuration or job name (a list value's commas stay inside its brackets)."""
    return re.split(r",(?![^\[]*\])", configuration)


def learner(configuration: str) -> str:
    keys = dict(kv.split("=", 1) for kv in pairs(configuration))
    if keys.get("policy") in ("ensemble", "steady"):  # steady: the ensemble of 3 MLPs without resampling
        members = keys.get("policy.members", "default")
        batch = keys.get("policy.batch_size", "default")
        hidden, lr = keys.get("policy.hidden", "default"), keys.get("policy.lr", "default")
        budget = (f"{keys['policy.gradient_steps']} minibatches" if keys["policy.epochs"] == "0"
                  else f"{keys['policy.epochs']} epochs")
        name = (f"{3 if members == 'default' else members} MLPs"
                + ("" if hidden == "default" else " " + "x".join(hidden.strip("[]").split(",")))
                + f", {budget}"
                + ("" if batch == "default" else f", minibatches of {batch}")
                + ("" if lr == "default" else f", lr {lr}")
                + ("" if keys.get("policy.lr_decay", "default") == "default"
                   else f", lr x{keys['policy.lr_decay']} per iteration")
                + ("" if keys.get("policy.ema", "default") == "default" else f", EMA {keys['policy.ema']}")
                + (", bootstrap resamples" if keys.get("policy.bootstrap") == "True" else ""))
    elif keys["policy.epochs"] != "0":
        name = f"MLP, {keys['policy.epochs']} epochs (>= {keys['policy.gradient_steps']} minibatches)"
    else:
        name = f"MLP, {keys['policy.gradient_steps']} minibatches"
    episodes, schedule = keys.get("eval.episodes", "default"), keys.get("schedule", "default")
    return (name + (", warm start" if keys["policy.warm_start"] == "True" else ", refit from scratch")
            + ("" if schedule == "default" else f"; schedule={schedule}")
            + ("" if episodes == "default" else f"; evaluated on {episodes} episodes"))


def rule(curve: pd.Series, n: int = 10) -> bool:
    """make run's rule for a run stopped after iteration n, evaluated every 2nd iteration and at the last: its last
    three evaluations (6, 8 and 10 for the default run) all >= 0.85, and its last >= 0.9."""
    shown = sorted({i for i in range(2, n + 1, 2)} | {n})[-3:]
    return bool(curve[n] >= 0.9 and all(curve[i] >= 0.85 for i in shown))


def make_run_passes(configuration: str) -> str:
    """The seeds of a configuration on which make run's rule holds."""
    passed = total = 0
    swept = {kv for kv in pairs(configuration) if not kv.endswith("=default")}  # "default": not overridden
    for job in ROOT.iterdir():
        if job.is_dir() and set(pairs(job.name.rsplit(",seed=", 1)[0])) == swept:
            passed += rule(pd.read_csv(job / "metrics.csv").set_index("iteration").normalized_return)
            total += 1
    return f"{passed}/{total}"


def main() -> None:
    summary = pd.read_csv(ROOT / "summary.csv")
    print("| learner | final normalised return [95% CI] | worst seed | steadiness (seeds) | make run's rule (seeds) "
          "| labels to 90% (seeds) | wall time (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in summary.itertuples():
        print(f"| {learner(r.configuration)} | {r.final_norm_return:.3f} [{r.final_ci_low:.3f}, {r.final_ci_high:.3f}] "
              f"| {r.worst_seed_final:.3f} | {r.steadiness:.2f} ({r.steady_seeds}) "
              f"| {make_run_passes(r.configuration)} "
              f"| {r.labels_to_90pct:,.0f} ({r.seeds_reaching_90pct}/{r.seeds}) | {r.wall_time_s:.0f} |")


if __name__ == "__main__":
    main()
