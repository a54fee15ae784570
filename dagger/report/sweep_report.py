"""A sweep folder's report: its files, its printout and its W&B run (`report`), and the command line
(`main`, run by `python -m dagger.report`)."""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import pandas as pd

from dagger.config import describe
from dagger.cli import ArgumentParser
from dagger.files import atomic_write_text
from dagger.report.dashboard import log_to_wandb
from dagger.report.jobs import find_runs
from dagger.report.plots import plot_heatmap, plot_performance_profile, plot_sweep_curves
from dagger.report.statistics import REPS, aggregate_across_tasks, markdown_tables, summarize_sweep
from dagger.tracking import LOGGER_MODES


def report(root: Path, wandb_mode: str | None = None, reps: int = REPS) -> pd.DataFrame:
    """Write summary.csv, summary.md, curves.png and (for 2-D grids) heatmap.png into `root`, and across
    tasks aggregate.csv (its intervals from `reps` bootstrap resamples) and profile.png; print the tables. With
    `wandb_mode`, also log them into one W&B run (job_type report, in the sweep's group) under `root/wandb`."""
    runs = find_runs(root)
    if runs.empty:
        raise SystemExit(f"error: no runs under {root} (expected job folders with .hydra/overrides.yaml)")
    summary, aggregate = summarize_sweep(runs), aggregate_across_tasks(runs, reps)
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


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m dagger.report", description=report.__doc__,
                            hint=f"<multirun dir> [--wandb] [--wandb-mode {'|'.join(LOGGER_MODES)}] [--reps N]")
    parser.add_argument("multirun_dir", type=Path, help="a sweep's folder, e.g. multirun/budget_grid/walker-sac")
    parser.add_argument("--wandb", action="store_true",
                        help="also log the report into one W&B run in the sweep's group, under <multirun dir>/wandb")
    parser.add_argument("--wandb-mode", choices=LOGGER_MODES,
                        help="the W&B run's mode (implies --wandb; default: $WANDB_MODE, else offline)")
    parser.add_argument("--reps", type=positive, default=REPS,
                        help=f"bootstrap resamples of the aggregate's confidence intervals (default {REPS:,}; "
                             "fewer for a quick look)")
    parser.add_argument("--keep-in", type=Path, metavar="DIR",
                        help="also copy the report and each job's small files (metrics.csv, status.json, .hydra/"
                             "overrides.yaml and config.yaml) into DIR, e.g. benchmarks/<sweep>: `python -m "
                             "dagger.report DIR` gives the same tables from them")
    args = parser.parse_args(argv)
    if not args.multirun_dir.is_dir():
        raise SystemExit(f"error: {args.multirun_dir} is not a directory")
    if args.keep_in is not None and args.keep_in.exists() and not args.keep_in.is_dir():
        raise SystemExit(f"error: --keep-in {args.keep_in} is not a directory")
    wandb_mode = args.wandb_mode or ((os.environ.get("WANDB_MODE") or "offline") if args.wandb else None)
    report(args.multirun_dir, wandb_mode, args.reps)
    if args.keep_in is not None:
        try:
            keep(args.multirun_dir, args.keep_in)
        except OSError as err:  # a file where a job's folder belongs, no room, no permission: one line
            target = getattr(err, "filename", None) or args.keep_in
            raise SystemExit(f"error: --keep-in {args.keep_in}: cannot copy into it ({err.strerror or err}: "
                             f"{target})") from None


KEPT = ("metrics.csv", "status.json", ".hydra/overrides.yaml", ".hydra/config.yaml")  # what a report reads of a job


def keep(root: Path, dest: Path) -> None:
    """Copy the report's files and what it reads of each job under `root` into `dest` (same layout)."""
    copied = 0
    for overrides in sorted(root.rglob(".hydra/overrides.yaml")):
        job = overrides.parent.parent
        for name in KEPT:
            if (job / name).is_file():
                target = dest / job.relative_to(root) / name
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(target, (job / name).read_text())
        copied += 1
    for name in ("summary.csv", "summary.md", "aggregate.csv"):
        if (root / name).is_file():
            dest.mkdir(parents=True, exist_ok=True)
            atomic_write_text(dest / name, (root / name).read_text())
    print(f"kept {copied} jobs' files and the summary in {dest}")


def positive(text: str) -> int:
    """An argparse type: an integer >= 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, not {text!r}")
    return int(text)
