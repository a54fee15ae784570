"""A sweep's jobs: finding their folders and reading each one's overrides, task, status and metrics; a job
with an unreadable file is listed as broken, not fatal."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from dagger.config import describe
from dagger.cli import override_values

IGNORED_OVERRIDES = ("seed", "hydra/launcher", "+sweeps", "logger", "logger.mode")
TASK_OVERRIDE = "env"  # a sweep over tasks (+sweeps=benchmark) reports per task, and across tasks
# What the summary, curves and heatmap read from a finished job's metrics.csv.
NEEDED_COLUMNS = ("iteration", "normalized_return", "expert_labels", "return_mean", "expert_return_mean",
                  "expert_return_std", "random_return_mean")
STATUSES = ("running", "finished", "refused", "interrupted", "failed")  # what dagger.app writes into status.json
MAX_METRICS_BYTES = 64 * 2**20  # a run's metrics.csv holds one row per iteration: far below this


class BrokenJob(Exception):
    """One of a job's files cannot be read; the job is listed as `broken: <file>: <reason>` and skipped."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"broken: {path}: {reason}")


def read_overrides(path: Path) -> dict[str, str]:
    """`.hydra/overrides.yaml`: the job's `key=value` command-line overrides."""
    import yaml

    try:
        overrides = yaml.safe_load(path.read_text()) or []
    except (yaml.YAMLError, UnicodeDecodeError, OSError, RecursionError) as err:
        raise BrokenJob(path, f"unreadable ({describe(err)})") from None
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise BrokenJob(path, "not a list of key=value overrides")
    return override_values(overrides)


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
    if status.get("status") and status["status"] not in STATUSES:
        raise BrokenJob(path, f"an unknown status (not one of {', '.join(STATUSES)})")  # its text is not shown
    return status.get("status") or "not started"


def read_metrics(path: Path, finished: bool) -> pd.DataFrame:
    """`metrics.csv` (empty when absent); a finished job's must have numeric `NEEDED_COLUMNS`."""
    if not path.is_file():
        return pd.DataFrame()
    if path.stat().st_size > MAX_METRICS_BYTES:
        raise BrokenJob(path, f"larger than {MAX_METRICS_BYTES // 2**20} MiB")
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
        iterations = metrics["iteration"].to_numpy()
        if np.isnan(iterations).any() or (iterations != np.round(iterations)).any() or (np.diff(iterations) <= 0).any():
            raise BrokenJob(path, "column iteration is not increasing whole numbers")
        if np.isnan(metrics["normalized_return"].iloc[-1]):
            raise BrokenJob(path, "a finished run without a return at its last iteration")
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
    runs["swept"] = [{k: swept.get(k, "default") for k in varying} for swept in runs.swept]  # not overridden: conf/'s
    runs["configuration"] = [",".join(f"{k}={v}" for k, v in swept.items()) or "all" for swept in runs.swept]
    return runs
