"""Plots and tables of a sweep of DAgger runs: python -m dagger.report <multirun dir> [--wandb]."""
from __future__ import annotations

import os
import sys
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from dagger.config import ArgumentParser, first_line
from dagger.figures import plt, save_figure
from dagger.files import atomic_write_text
from dagger.tracking import LOGGER_MODES, init_wandb

if TYPE_CHECKING:
    import wandb


# ---- multirun reports: python -m dagger.report <multirun dir> ----------------------------------

IGNORED_OVERRIDES = ("seed", "hydra/launcher", "+sweeps", "logger", "logger.mode")
TASK_OVERRIDE = "env"  # a sweep over tasks (+sweeps=benchmark) reports per task, and across tasks
# What the summary, curves and heatmap read from a finished job's metrics.csv.
NEEDED_COLUMNS = ("normalized_return", "expert_labels", "return_mean", "expert_return_mean", "expert_return_std",
                  "random_return_mean")


class BrokenJob(Exception):
    """One of a job's files cannot be read; the job is listed as `broken: <file>: <reason>` and skipped."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"broken: {path}: {reason}")


def describe(err: Exception) -> str:
    """An error as `Type: first line of its message`."""
    return f"{type(err).__name__}: {first_line(err)}" if str(err).strip() else type(err).__name__


def read_overrides(path: Path) -> dict[str, str]:
    """`.hydra/overrides.yaml`: the job's `key=value` command-line overrides."""
    import yaml

    try:
        overrides = yaml.safe_load(path.read_text()) or []
    except (yaml.YAMLError, UnicodeDecodeError, OSError, RecursionError) as err:
        raise BrokenJob(path, f"unreadable ({describe(err)})") from None
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise BrokenJob(path, "not a list of key=value overrides")
    return dict(o.split("=", 1) for o in overrides if "=" in o)


def read_job_status(run_dir: Path) -> str:
    """`status.json`'s status; `not started` when the job has none."""
    import json

    path = run_dir / "status.json"
    if not path.is_file():
        return "not started"
    try:
        status = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError, RecursionError) as err:
        raise BrokenJob(path, f"unreadable ({describe(err)})") from None
    if not isinstance(status, dict) or not isinstance(status.get("status", ""), str):
        raise BrokenJob(path, 'not a JSON object with a "status" string')
    return status.get("status") or "not started"


def read_metrics(path: Path, finished: bool) -> pd.DataFrame:
    """`metrics.csv` (empty when absent); a finished job's must have numeric `NEEDED_COLUMNS`."""
    if not path.is_file():
        return pd.DataFrame()
    try:
        metrics = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as err:
        raise BrokenJob(path, f"unreadable ({describe(err)})") from None
    if finished and len(metrics):
        missing = [c for c in NEEDED_COLUMNS if c not in metrics.columns]
        if missing:
            raise BrokenJob(path, f"missing columns {', '.join(missing)}")
        for column in NEEDED_COLUMNS:
            if not pd.api.types.is_numeric_dtype(metrics[column]):
                raise BrokenJob(path, f"column {column} is not numeric")
            if np.isinf(metrics[column]).any():  # nan is an iteration not evaluated; inf is nonsense
                raise BrokenJob(path, f"column {column} holds inf")
    return metrics


def read_task(path: Path) -> str:
    """The gymnasium id of the job's task, from `.hydra/config.yaml`."""
    import yaml

    try:
        config = yaml.safe_load(path.read_text())
        return str(config["env"]["id"])
    except (yaml.YAMLError, UnicodeDecodeError, OSError, KeyError, TypeError, RecursionError) as err:
        raise BrokenJob(path, f"no env.id in it ({describe(err)})") from None


def read_job(overrides_file: Path) -> dict:
    """One job's row; a job with an unreadable file gets status `broken: <file>: <reason>`."""
    run_dir = overrides_file.parent.parent
    row = {"run_dir": str(run_dir), "swept": {}, "seed": "0", "task": "?", "metrics": pd.DataFrame()}
    try:
        overrides = read_overrides(overrides_file)
        row["seed"] = overrides.get("seed", "0")
        row["swept"] = {k.lstrip("+~"): v for k, v in overrides.items()
                        if k.lstrip("+~") not in (*IGNORED_OVERRIDES, TASK_OVERRIDE)}
        row["task"] = read_task(overrides_file.parent / "config.yaml")
        status = read_job_status(run_dir)
        metrics = read_metrics(run_dir / "metrics.csv", finished=status == "finished")
    except BrokenJob as err:
        return {**row, "status": str(err)}
    return {**row, "status": status if status != "finished" or len(metrics) else "incomplete", "metrics": metrics}


def find_runs(root: Path) -> pd.DataFrame:
    """One row per job under `root`: its swept values, seed, status and metrics (if any).

    Each job is read on its own: one with a corrupt metrics.csv, status.json or overrides.yaml is
    marked broken and the others are still reported.
    """
    runs = pd.DataFrame([read_job(f) for f in sorted(root.rglob(".hydra/overrides.yaml"))])
    if runs.empty:
        return runs
    # A configuration is named by the overrides that vary between jobs; the rest is common to all.
    keys = sorted({k for swept in runs.swept for k in swept})
    varying = [k for k in keys if len({swept.get(k) for swept in runs.swept}) > 1]
    runs["swept"] = [{k: swept.get(k) for k in varying} for swept in runs.swept]
    runs["configuration"] = [",".join(f"{k}={v}" for k, v in swept.items()) or "all" for swept in runs.swept]
    return runs


def bootstrap_ci(values, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95% percentile-bootstrap interval of the mean."""

    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return float(values.mean()), float(values.mean())
    means = np.random.default_rng(seed).choice(values, size=(n, len(values))).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def labels_to_reach(metrics: pd.DataFrame, fraction: float = 0.9) -> float:
    """Expert labels of the first iteration whose learner reaches `fraction` of the expert's return."""
    reached = metrics[metrics.return_mean >= fraction * metrics.expert_return_mean]
    return float(reached.expert_labels.iloc[0]) if len(reached) else float("nan")


def summarize_sweep(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task and configuration, over its finished seeds: final and best normalised return with 95% CIs,
    the expert labels needed to reach 90% and 95% of the expert's return (mean over the seeds that reach
    it), the supervision spent by the end (labels, expert queries, interventions) and the loop's wall time
    (means over seeds)."""
    rows = []
    finished = runs[runs.status == "finished"]
    for (task, configuration), group in finished.groupby(["task", "configuration"], sort=False):
        final = [m.normalized_return.iloc[-1] for m in group.metrics]
        best = [m.normalized_return.max() for m in group.metrics]
        (final_lo, final_hi), (best_lo, best_hi) = bootstrap_ci(final), bootstrap_ci(best)
        reach = {}
        for pct in REACH_PCTS:
            reached = [x for x in (labels_to_reach(m, pct / 100) for m in group.metrics) if x == x]
            reach[f"labels_to_{pct}pct"] = sum(reached) / len(reached) if reached else float("nan")
            reach[f"seeds_reaching_{pct}pct"] = len(reached)
        rows.append({"task": task, "configuration": configuration, "seeds": len(group),
                     "final_norm_return": sum(final) / len(final), "final_ci_low": final_lo, "final_ci_high": final_hi,
                     "worst_seed_final": min(final),
                     "best_norm_return": sum(best) / len(best), "best_ci_low": best_lo, "best_ci_high": best_hi,
                     **reach, **{column: final_mean(group.metrics, source) for column, source in SPENT.items()}})
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


REACH_PCTS = (90, 95)
SPENT = {"final_labels": "expert_labels", "final_queries": "expert_queries", "interventions": "interventions",
         "wall_time_s": "wall_time_s", "intervention_rate": "intervention_rate_so_far", "target_rate": "target_rate"}
SUMMARY_COLUMNS = ("task", "configuration", "seeds", "final_norm_return", "final_ci_low", "final_ci_high",
                   "worst_seed_final", "best_norm_return", "best_ci_low", "best_ci_high",
                   *(f"{kind}_{pct}pct" for pct in REACH_PCTS for kind in ("labels_to", "seeds_reaching")), *SPENT)


def aggregate_across_tasks(runs: pd.DataFrame, reps: int = 20_000) -> pd.DataFrame:
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


def plot_performance_profile(runs: pd.DataFrame, path: Path) -> Path | None:
    """The fraction of runs (all tasks and seeds) whose final normalised return exceeds tau, with 95%
    stratified-bootstrap bands (rliable's performance profile)."""
    from rliable import library as rly
    from rliable import plot_utils

    scores = final_score_matrices(runs)
    if not scores:
        return None
    thresholds = np.linspace(0.0, 1.2, 49)
    with numpy_seeded(0):
        profiles, bands = rly.create_performance_profile(scores, thresholds, reps=2000)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    plot_utils.plot_performance_profiles(profiles, thresholds, performance_profile_cis=bands, ax=ax,
                                         colors=dict(zip(scores, plt.rcParams["axes.prop_cycle"].by_key()["color"])),
                                         xlabel=r"final normalised return $\tau$",
                                         labelsize="medium", ticklabelsize="small")
    profile_lines = list(ax.get_lines())  # one per configuration, in order (the bands are patches)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=1)
    ax.legend(profile_lines, list(scores), loc="lower left", fontsize="small")
    fig.tight_layout()
    save_figure(fig, path)
    return path


def markdown_tables(summary: pd.DataFrame, aggregate: pd.DataFrame) -> str:
    """The summary (and the aggregate across tasks) as Markdown, for a README or an issue."""
    def labels(row, pct):
        value, seeds = row[f"labels_to_{pct}pct"], row[f"seeds_reaching_{pct}pct"]
        return f"{value:,.0f} ({seeds}/{row.seeds})" if value == value else f"- (0/{row.seeds})"

    lines = ["| task | configuration | final normalised return [95% CI] | worst seed | best | labels to 90% (seeds) "
             "| labels to 95% (seeds) | labels used | expert queries | interventions | wall time (s) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in summary.iterrows():
        lines.append(f"| {r.task} | {r.configuration} | {r.final_norm_return:.3f} [{r.final_ci_low:.3f}, "
                     f"{r.final_ci_high:.3f}] | {r.worst_seed_final:.3f} | {r.best_norm_return:.3f} | {labels(r, 90)} "
                     f"| {labels(r, 95)} | {r.final_labels:,.0f} | {r.final_queries:,.0f} | {r.interventions:,.1f} "
                     f"| {r.wall_time_s:.0f} |")
    if len(aggregate):
        lines += ["", "| configuration | tasks x seeds | IQM [95% CI] | mean [95% CI] | median [95% CI] |",
                  "|---|---|---|---|---|"]
        for _, a in aggregate.iterrows():
            lines.append(f"| {a.configuration} | {a.tasks} x {a.seeds} | {a.iqm:.3f} [{a.iqm_ci_low:.3f}, "
                         f"{a.iqm_ci_high:.3f}] | {a['mean']:.3f} [{a.mean_ci_low:.3f}, {a.mean_ci_high:.3f}] "
                         f"| {a['median']:.3f} [{a.median_ci_low:.3f}, {a.median_ci_high:.3f}] |")
    return "\n".join(lines) + "\n"


def final_mean(metrics: pd.Series, column: str) -> float:
    """Mean over seeds of a cumulative count's last value (nan for runs from before the column existed)."""
    values = [m[column].iloc[-1] for m in metrics if column in m]
    return float(sum(values) / len(values)) if values else float("nan")


def plot_sweep_curves(runs: pd.DataFrame, path: Path) -> Path:
    """Normalised return against expert labels, mean and 95% CI over seeds per configuration; one panel per task.

    Seeds are matched by iteration and drawn at their mean label count: gated algorithms label a
    different number of states on each seed, so equal label counts rarely occur."""
    finished = runs[runs.status == "finished"]
    tasks = list(dict.fromkeys(finished.task)) or ["?"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(8 if len(tasks) == 1 else 4.5 * len(tasks), 5), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        plot_task_curves(ax, finished[finished.task == task])
        if len(tasks) > 1:
            ax.set_title(task)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def plot_task_curves(ax, finished: pd.DataFrame) -> None:
    expert_band = []
    for configuration, group in finished.groupby("configuration", sort=False):
        table = pd.concat([m.assign(seed=s) for m, s in zip(group.metrics, group.seed)])
        table = table.dropna(subset=["normalized_return"])  # iterations between evaluations (eval.every)
        by_iteration = table.groupby("iteration")
        labels, mean = by_iteration.expert_labels.mean(), by_iteration.normalized_return.mean()
        ci = np.array([bootstrap_ci(v) for _, v in by_iteration.normalized_return])
        (line,) = ax.plot(labels.values, mean.values, "o-", ms=3, label=configuration)
        ax.fill_between(labels.values, ci[:, 0], ci[:, 1], color=line.get_color(), alpha=0.2)
        expert_band.extend((table.expert_return_std / (table.expert_return_mean - table.random_return_mean)).tolist())
    half = float(np.mean(expert_band)) if expert_band else 0.0
    ax.axhspan(1 - half, 1 + half, color="grey", alpha=0.15)
    ax.axhline(1.0, color="black", linestyle="--", label="expert (± std)")
    ax.set_xlabel("expert labels")
    ax.set_ylabel("normalised return  (R - random) / (expert - random)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")


def plot_heatmap(runs: pd.DataFrame, path: Path) -> Path | None:
    """Final normalised return over a two-dimensional grid (e.g. iterations x rollout budget)."""
    finished = runs[runs.status == "finished"]
    if finished.task.nunique() > 1:
        return None
    keys = sorted(k for k in {k for swept in finished.swept for k in swept}
                  if len({swept.get(k) for swept in finished.swept}) > 1)
    if len(keys) != 2:
        return None
    table = pd.DataFrame([{**swept, "value": m.normalized_return.iloc[-1]}
                          for swept, m in zip(finished.swept, finished.metrics)])
    for key in keys:  # numeric axes sort as numbers
        numeric = pd.to_numeric(table[key], errors="coerce")
        if numeric.notna().all():
            table[key] = numeric
    grid = table.pivot_table(index=keys[0], columns=keys[1], values="value", aggfunc="mean")
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(grid.values, cmap="viridis", origin="lower", aspect="auto")
    ax.set_xticks(range(len(grid.columns)), [str(c) for c in grid.columns])
    ax.set_yticks(range(len(grid.index)), [str(i) for i in grid.index])
    ax.set_xlabel(keys[1])
    ax.set_ylabel(keys[0])
    for (i, j), value in pd.DataFrame(grid.values).stack().items():
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="w")
    fig.colorbar(image, label="final normalised return (mean over seeds)")
    fig.tight_layout()
    save_figure(fig, path)
    return path


def report(root: Path, wandb_mode: str | None = None) -> pd.DataFrame:
    """Write summary.csv, summary.md, curves.png and (for 2-D grids) heatmap.png into `root`, and across
    tasks aggregate.csv and profile.png; print the tables. With `wandb_mode`, also log them into one W&B
    run (job_type report, in the sweep's group) under `root/wandb`."""
    runs = find_runs(root)
    if runs.empty:
        raise SystemExit(f"error: no runs under {root} (expected job folders with .hydra/overrides.yaml)")
    summary, aggregate = summarize_sweep(runs), aggregate_across_tasks(runs)
    try:
        atomic_write_text(root / "summary.csv", summary.to_csv(index=False))
        atomic_write_text(root / "summary.md", markdown_tables(summary, aggregate))
        images = {"curves": plot_sweep_curves(runs, root / "curves.png"),
                  "heatmap": plot_heatmap(runs, root / "heatmap.png"), "profile": None}
        outputs = [root / "summary.csv", root / "summary.md", images["curves"], images["heatmap"]]
        if len(aggregate):
            atomic_write_text(root / "aggregate.csv", aggregate.to_csv(index=False))
            images["profile"] = plot_performance_profile(runs, root / "profile.png")
            outputs += [root / "aggregate.csv", images["profile"]]
    except OSError as err:
        target = getattr(err, "filename2", None) or getattr(err, "filename", None)  # a rename's target, else the file
        where = f" ({target})" if target else ""
        raise SystemExit(f"error: cannot write into {root}: {err.strerror or err}{where}") from None
    with pd.option_context("display.width", 250, "display.max_columns", 30, "display.float_format", "{:.3f}".format):
        print(summary.drop(columns=["best_ci_low", "best_ci_high"]).to_string(index=False))
        if len(aggregate):
            print(aggregate.to_string(index=False))
    broken = runs[runs.status.str.startswith("broken: ")]
    unfinished = runs[(runs.status != "finished") & ~runs.status.str.startswith("broken: ")]
    for _, run in unfinished.iterrows():
        print(f"{run.status}: {run.run_dir}")
    for _, run in broken.iterrows():
        print(run.status)  # names the file, inside the job's folder
    print(f"{len(runs) - len(unfinished) - len(broken)} finished, {len(unfinished)} failed or incomplete, "
          f"{len(broken)} broken; wrote " + ", ".join(str(p) for p in outputs if p is not None))
    if wandb_mode is not None:
        try:
            run = log_to_wandb(root, runs, summary, aggregate, images, wandb_mode)
        except Exception as err:  # noqa: BLE001 - W&B must never cost the report's files
            print(f"W&B failed ({describe(err)}): the report files are still written", file=sys.stderr)
        else:
            if run.offline:
                where = run.settings.sync_dir
                print(f"W&B run: {where} (offline; upload it with: wandb sync {where})")
            elif not run.disabled:
                print(f"W&B run: {run.url}")
    return summary


# ---- the report in W&B: python -m dagger.report <multirun dir> --wandb -------------------------

def sweep_logger(root: Path, runs: pd.DataFrame) -> dict:
    """The sweep's W&B project, entity and group, from the first finished job's resolved config.yaml that
    names a project and a group; else the folder's name as group, in project dagger-lab."""
    import yaml

    for run_dir in runs.run_dir[runs.status == "finished"]:
        try:
            config = yaml.safe_load((Path(run_dir) / "config.yaml").read_text())
        except (yaml.YAMLError, UnicodeDecodeError, OSError):
            continue
        logger = config.get("logger") if isinstance(config, dict) else None
        if isinstance(logger, dict) and logger.get("project") and logger.get("group"):
            return {"project": str(logger["project"]), "entity": logger.get("entity"), "group": str(logger["group"])}
    return {"project": "dagger-lab", "entity": None, "group": root.resolve().name}


def runs_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per job: task, configuration, seed, folder, last normalised return and expert labels, status."""
    def last(metrics: pd.DataFrame, column: str) -> float:
        return float(metrics[column].iloc[-1]) if column in metrics and len(metrics) else float("nan")

    return pd.DataFrame({"task": runs.task, "configuration": runs.configuration, "seed": runs.seed,
                         "run_dir": runs.run_dir,
                         "final_norm_return": [last(m, "normalized_return") for m in runs.metrics],
                         "expert_labels": [last(m, "expert_labels") for m in runs.metrics], "status": runs.status})


def log_to_wandb(root: Path, runs: pd.DataFrame, summary: pd.DataFrame, aggregate: pd.DataFrame,
                 images: dict[str, Path | None], mode: str) -> wandb.Run:
    """One W&B run (job_type report, in the sweep's group) under `root/wandb`: the summary, runs and
    aggregate tables, the pictures, and each configuration's final return (and IQM) in its summary."""
    import wandb

    logger = sweep_logger(root, runs)
    run = init_wandb(root, project=logger["project"], entity=logger["entity"], group=logger["group"],
                     job_type="report", name=f"report-{logger['group']}", tags=["report"], mode=mode,
                     config={"sweep_dir": str(root.resolve())})
    try:
        tables = {"summary": summary, "runs": runs_table(runs), **({"aggregate": aggregate} if len(aggregate) else {})}
        run.log({**{key: wandb.Table(dataframe=table) for key, table in tables.items()},
                 **{key: wandb.Image(str(path)) for key, path in images.items() if path is not None}})
        run.summary.update({**{f"final_norm_return/{r.task}/{r.configuration}": r.final_norm_return
                               for r in summary.itertuples()},
                            **{f"iqm/{a.configuration}": a.iqm for a in aggregate.itertuples()}})
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    return run


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m dagger.report", description=report.__doc__,
                            hint=f"<multirun dir> [--wandb] [--wandb-mode {'|'.join(LOGGER_MODES)}]")
    parser.add_argument("multirun_dir", type=Path, help="a sweep's folder, e.g. multirun/budget_grid/walker-sac")
    parser.add_argument("--wandb", action="store_true",
                        help="also log the report into one W&B run in the sweep's group, under <multirun dir>/wandb")
    parser.add_argument("--wandb-mode", choices=LOGGER_MODES,
                        help="the W&B run's mode (implies --wandb; default: $WANDB_MODE, else offline)")
    args = parser.parse_args(argv)
    if not args.multirun_dir.is_dir():
        raise SystemExit(f"error: {args.multirun_dir} is not a directory")
    wandb_mode = args.wandb_mode or ((os.environ.get("WANDB_MODE") or "offline") if args.wandb else None)
    report(args.multirun_dir, wandb_mode)


if __name__ == "__main__":
    main()
