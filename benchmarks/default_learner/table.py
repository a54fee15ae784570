"""The README's tables of the default-learner sweep, from the committed results:
python benchmarks/default_learner/table.py   (after python -m dagger.report benchmarks/default_learner/walker-sac)
python benchmarks/default_learner/table.py benchmarks/default_learner/walker-sac-avx2   (another folder's jobs)

Adds what the default walker run (`make run`: evaluated every 2nd iteration) would show of each job: whether its
final evaluation is at or above 0.9 and its last three (iterations 6, 8, 10) at or above 0.85."""
import re
import sys
from pathlib import Path

import pandas as pd
from omegaconf import OmegaConf

ROOT = Path(__file__).parent / "walker-sac"


def pairs(configuration: str) -> list[str]:
    """The `key=value` parts of a configuration or job name (a list value's commas stay inside its brackets)."""
    return re.split(r",(?![^\[]*\])", configuration)


def swept(job: Path) -> str:
    """A job's configuration: its folder's `key=value` name without the seed."""
    return job.name.rsplit(",seed=", 1)[0]


def learner(configuration: str, ramp: int | None = None) -> str:
    """A row's learner in words; `ramp`: the iterations over which its beta fell, where the schedule is linear."""
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
    ramp = keys.get("schedule.beta_ramp", "default") if ramp is None else ramp
    return (name + (", warm start" if keys["policy.warm_start"] == "True" else ", refit from scratch")
            + ("" if schedule == "default" else f"; schedule={schedule}")
            + ("" if ramp == "default" else f" over {ramp} iterations")
            + ("" if episodes == "default" else f"; evaluated on {episodes} episodes"))


def rule(curve: pd.Series, n: int = 10) -> bool:
    """make run's rule for a run stopped after iteration n, evaluated every 2nd iteration and at the last: its last
    three evaluations (6, 8 and 10 for the default run) all >= 0.85, and its last >= 0.9."""
    shown = sorted({i for i in range(2, n + 1, 2)} | {n})[-3:]
    return bool(curve[n] >= 0.9 and all(curve[i] >= 0.85 for i in shown))


def jobs_of(configuration: str, root: Path = ROOT) -> list[Path]:
    """A summary row's jobs in `root`: those with every value the row names (its `key=default` keys absent)."""
    named = pairs(configuration)
    want = {kv for kv in named if not kv.endswith("=default")}
    absent = {kv.split("=", 1)[0] for kv in named if kv.endswith("=default")}
    jobs = []
    for job in sorted(root.iterdir()):
        have = set(pairs(swept(job))) if job.is_dir() else set()
        if have and want <= have and not {kv.split("=", 1)[0] for kv in have} & absent:
            jobs.append(job)
    return jobs


def recorded_ramp(job: Path) -> int | None:
    """The iterations over which a job's beta fell under the linear schedule (None for another schedule), from its
    recorded config: jobs that name no ramp ran the default of their time (N itself before commit 96c58b9)."""
    schedule = OmegaConf.load(job / ".hydra" / "config.yaml").schedule
    return int(schedule.beta_ramp) if schedule.beta == "linear" else None


def make_run_passes(jobs: list[Path]) -> str:
    """The seeds (jobs) on which make run's rule holds."""
    passed = sum(rule(pd.read_csv(job / "metrics.csv").set_index("iteration").normalized_return) for job in jobs)
    return f"{passed}/{len(jobs)}"


def main(root: Path) -> None:
    summary = pd.read_csv(root / "summary.csv")
    print("| learner | final normalised return [95% CI] | worst seed | steadiness (seeds) | make run's rule (seeds) "
          "| labels to 90% (seeds) | wall time (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in summary.itertuples():
        jobs = jobs_of(r.configuration, root)
        print(f"| {learner(swept(jobs[0]), recorded_ramp(jobs[0]))} "
              f"| {r.final_norm_return:.3f} [{r.final_ci_low:.3f}, {r.final_ci_high:.3f}] | {r.worst_seed_final:.3f} "
              f"| {r.steadiness:.2f} ({r.steady_seeds}) | {make_run_passes(jobs)} "
              f"| {r.labels_to_90pct:,.0f} ({r.seeds_reaching_90pct}/{r.seeds}) | {r.wall_time_s:.0f} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT)
