"""The sweep's numbers: per task and configuration over seeds (bootstrap intervals, labels to reach the
expert), across tasks with rliable, and both as Markdown tables."""
from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd


def bootstrap_ci(values, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean."""

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    means = np.random.default_rng(seed).choice(values, size=(n, len(values))).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def labels_to_reach(metrics: pd.DataFrame, fraction: float = 0.9) -> float:
    """Expert labels of the first iteration whose learner's normalised return reaches `fraction`."""
    reached = metrics[metrics.normalized_return >= fraction]
    return float(reached.expert_labels.iloc[0]) if len(reached) else float("nan")


REACHED, STEADY = 0.9, 0.85


def steadiness(normalized, reached: float = REACHED, steady: float = STEADY) -> float:
    """After a run's learner first reaches `reached` of the expert (normalised), the share of its later
    evaluations at or above `steady`; nan when it never reaches it or that was its last evaluation."""
    values = np.asarray([v for v in normalized if v == v], dtype=float)  # nan: iterations not evaluated
    first = np.flatnonzero(values >= reached)
    later = values[first[0] + 1:] if len(first) else values[:0]
    return float((later >= steady).mean()) if len(later) else float("nan")


def normalizations(metrics: pd.Series) -> str:
    """Which references the runs' normalised returns divide by: manifest (fixed), run (each run's own measure)."""
    used = sorted({str(m.normalized_by.iloc[-1]) if "normalized_by" in m else "run" for m in metrics})
    return "+".join(used)


def summarize_sweep(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task and configuration, over its finished seeds: final and best normalised return with 95% CIs
    (normalised by the references `normalized_by` names; `final_run_norm_return` by each run's own 10-episode
    measure of the expert), the steadiness (mean over the seeds that reach 90% of `steadiness`), the expert labels needed to reach 90% and 95% of the expert's return (mean over the seeds that reach
    it), the supervision spent by the end (labels, expert queries, interventions) and the loop's wall time
    (means over seeds)."""
    rows = []
    finished = runs[runs.status == "finished"]
    for (task, configuration), group in finished.groupby(["task", "configuration"], sort=False):
        final = [m.normalized_return.iloc[-1] for m in group.metrics]
        final_run = [m.run_normalized_return.iloc[-1] if "run_normalized_return" in m else m.normalized_return.iloc[-1]
                     for m in group.metrics]
        steady = [x for x in (steadiness(m.normalized_return) for m in group.metrics) if x == x]
        best = [m.normalized_return.max() for m in group.metrics]
        (final_lo, final_hi), (best_lo, best_hi) = bootstrap_ci(final), bootstrap_ci(best)
        reach = {}
        for pct in REACH_PCTS:
            reached = [x for x in (labels_to_reach(m, pct / 100) for m in group.metrics) if x == x]
            reach[f"labels_to_{pct}pct"] = sum(reached) / len(reached) if reached else float("nan")
            reach[f"seeds_reaching_{pct}pct"] = len(reached)
        rows.append({"task": task, "configuration": configuration, "seeds": len(group),
                     "final_norm_return": sum(final) / len(final), "final_ci_low": final_lo, "final_ci_high": final_hi,
                     "worst_seed_final": min(final), "normalized_by": normalizations(group.metrics),
                     "final_run_norm_return": sum(final_run) / len(final_run),
                     "steadiness": sum(steady) / len(steady) if steady else float("nan"), "steady_seeds": len(steady),
                     "best_norm_return": sum(best) / len(best), "best_ci_low": best_lo, "best_ci_high": best_hi,
                     **reach, **{column: final_mean(group.metrics, source) for column, source in SPENT.items()}})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


REACH_PCTS = (90, 95)
SPENT = {"final_labels": "expert_labels", "final_queries": "expert_queries", "interventions": "interventions",
         "wall_time_s": "wall_time_s", "intervention_rate": "intervention_rate_so_far", "target_rate": "target_rate"}
SUMMARY_COLUMNS = ("task", "configuration", "seeds", "final_norm_return", "final_ci_low", "final_ci_high",
                   "worst_seed_final", "normalized_by", "final_run_norm_return", "steadiness", "steady_seeds",
                   "best_norm_return", "best_ci_low", "best_ci_high",
                   *(f"{kind}_{pct}pct" for pct in REACH_PCTS for kind in ("labels_to", "seeds_reaching")), *SPENT)


REPS = 20_000  # bootstrap resamples of the aggregate's confidence intervals (python -m dagger.report --reps)


def aggregate_across_tasks(runs: pd.DataFrame, reps: int = REPS) -> pd.DataFrame:
    """Per configuration, across tasks: IQM, mean and median of the final normalised return, with 95%
    stratified-bootstrap intervals (rliable; Agarwal et al. 2021). Seeds are paired across tasks by their
    seed; configurations missing a task or a seed are left out."""
    from rliable import library as rly
    from rliable import metrics as rm

    scores = final_score_matrices(runs)
    if not scores:
        return pd.DataFrame(columns=AGGREGATE_COLUMNS)
    aggregate = lambda x: np.array([rm.aggregate_iqm(x), rm.aggregate_mean(x), rm.aggregate_median(x)])  # noqa: E731
    with warnings.catch_warnings(), numpy_seeded(0):  # arch warns about the RandomState rliable hands it
        warnings.simplefilter("ignore", FutureWarning)
        point, interval = rly.get_interval_estimates(scores, aggregate, reps=reps,
                                                     random_state=np.random.RandomState(0))
    rows = []
    for configuration, matrix in scores.items():
        (iqm, mean, median), ci = point[configuration], interval[configuration]
        rows.append({"configuration": configuration, "tasks": matrix.shape[1], "seeds": matrix.shape[0],
                     "iqm": iqm, "iqm_ci_low": ci[0, 0], "iqm_ci_high": ci[1, 0],
                     "mean": mean, "mean_ci_low": ci[0, 1], "mean_ci_high": ci[1, 1],
                     "median": median, "median_ci_low": ci[0, 2], "median_ci_high": ci[1, 2]})
    return pd.DataFrame(rows, columns=AGGREGATE_COLUMNS)


AGGREGATE_COLUMNS = ("configuration", "tasks", "seeds", "iqm", "iqm_ci_low", "iqm_ci_high", "mean", "mean_ci_low",
                     "mean_ci_high", "median", "median_ci_low", "median_ci_high")


@contextmanager
def numpy_seeded(seed: int):
    """numpy's global generator seeded for the block, then put back: rliable 1.2 resamples with
    `np.random.choice` (whatever random_state it is given), so this makes its intervals repeatable."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def final_score_matrices(runs: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per configuration, the (seeds x tasks) matrix of final normalised returns rliable takes; only
    configurations with every task of the sweep and the same seeds on each."""
    finished = runs[runs.status == "finished"]
    tasks = sorted(finished.task.unique())
    if len(tasks) < 2:
        return {}
    scores = {}
    for configuration, group in finished.groupby("configuration", sort=False):
        table = pd.DataFrame({"task": group.task, "seed": group.seed,
                              "score": [m.normalized_return.iloc[-1] for m in group.metrics]})
        wide = table.pivot_table(index="seed", columns="task", values="score").reindex(columns=tasks).dropna()
        if len(wide):
            scores[configuration] = wide.to_numpy()
    return scores


def markdown_tables(summary: pd.DataFrame, aggregate: pd.DataFrame) -> str:
    """The summary (and the aggregate across tasks) as Markdown, for a README or an issue."""
    def labels(row, pct):
        value, seeds = row[f"labels_to_{pct}pct"], row[f"seeds_reaching_{pct}pct"]
        return f"{value:,.0f} ({seeds}/{row.seeds})" if value == value else f"- (0/{row.seeds})"

    def steady(row):
        return f"{row.steadiness:.2f} ({row.steady_seeds})" if row.steadiness == row.steadiness else "-"

    lines = ["| task | configuration | final normalised return [95% CI] | worst seed | final by the run's expert "
             "measure | steadiness (seeds) | best | labels to 90% (seeds) | labels to 95% (seeds) | labels used "
             "| expert queries | interventions | wall time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        lines.append(f"| {r.task} | {r.configuration} | {r.final_norm_return:.3f} [{r.final_ci_low:.3f}, "
                     f"{r.final_ci_high:.3f}] | {r.worst_seed_final:.3f} | {r.final_run_norm_return:.3f} | {steady(r)} "
                     f"| {r.best_norm_return:.3f} | {labels(r, 90)} "
                     f"| {labels(r, 95)} | {r.final_labels:,.0f} | {r.final_queries:,.0f} | {r.interventions:,.1f} "
                     f"| {r.wall_time_s:.0f} |")
    if len(aggregate):
        lines += ["", "| configuration | tasks x seeds | IQM [95% CI] | mean [95% CI] | median [95% CI] |",
                  "|---|---|---|---|---|"]
        for _, a in aggregate.iterrows():
            lines.append(f"| {a.configuration} | {a.tasks} x {a.seeds} | {a.iqm:.3f} [{a.iqm_ci_low:.3f}, "
                         f"{a.iqm_ci_high:.3f}] | {a['mean']:.3f} [{a.mean_ci_low:.3f}, {a.mean_ci_high:.3f}] "
                         f"| {a['median']:.3f} [{a.median_ci_low:.3f}, {a.median_ci_high:.3f}] |")
    if len(summary):
        used = sorted(set("+".join(summary.normalized_by).split("+")))
        lines += ["", "Normalised by " + " and ".join(NORMALIZED_BY.get(u, u) for u in used) + "; steadiness: after "
                  f"a seed first reaches {REACHED:.0%} of the expert, the share of its later evaluations at or above "
                  f"{STEADY:.0%}."]
    return "\n".join(lines) + "\n"


NORMALIZED_BY = {"manifest": "the shipped experts' fixed 100-episode references (experts/manifest.yaml)",
                 "run": "each run's own measure of the expert on its evaluation episodes"}


def final_mean(metrics: pd.Series, column: str) -> float:
    """Mean over seeds of a cumulative count's last value (nan for runs from before the column existed)."""
    values = [m[column].iloc[-1] for m in metrics if column in m]
    return float(sum(values) / len(values)) if values else float("nan")
