"""One tracker interface for the run's outputs: `metrics.csv` always, plus W&B unless `logger=none`.
Columns come from the rows: a part that returns a new metric adds a column, with no list to keep in step.

W&B is a guest: if it cannot start or fails while logging (no write access, an odd WANDB_MODE, online
without a key or network, a rejected project name), the run says so in one line, records the reason in
`status.json`, and carries on; `metrics.csv`, `curve.png` and the checkpoints never depend on it.
"""
from __future__ import annotations

import csv
import io
import logging
import os
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Literal, get_args

from omegaconf import DictConfig, OmegaConf

from dagger.config import describe
from dagger.schemas import TEXT, Help, Schema, no_characters, text
from dagger.cli import job_overrides, override_values
from dagger.files import atomic_write_text

LoggerMode = Literal["offline", "online", "disabled"]
LOGGER_MODES = get_args(LoggerMode)  # also the report's --wandb-mode choices
WandbName = Annotated[str, TEXT] | None


class LoggerConfig(Schema):
    """The `logger` group: W&B's mode and the run's names (`logger=none` sets only `mode: disabled`). W&B refuses
    these characters in project names, and tags outside 1..64 characters."""

    mode: Annotated[LoggerMode, Help("W&B: offline (sync later), online, or disabled", resumable=True)]
    project: Annotated[str, text(max_len=128), no_characters("/\\#?%:"),
                       Help("the W&B project", resumable=True)] = "dagger-lab"
    entity: Annotated[WandbName, Help("the W&B team or user", resumable=True)] = None
    group: Annotated[WandbName, Help("runs of one sweep share a group", resumable=True)] = None
    job_type: Annotated[WandbName, Help("the W&B job type", resumable=True)] = None
    name: Annotated[WandbName, Help("the W&B run's name", resumable=True)] = None
    tags: Annotated[list[Annotated[str, text(max_len=64)]],
                    Help("W&B tags", resumable=True)] = []

log = logging.getLogger(__name__)


class Tracker:
    """Writes one row per iteration to `metrics.csv` and, when enabled, to a W&B run.

    Every W&B call (starting the run takes seconds) runs in order in one background thread, so W&B never holds up
    the loop; `finish` waits for them."""

    def __init__(self, run_dir: Path, logger_cfg: LoggerConfig, config: DictConfig, provenance: dict | None = None):
        self.path = run_dir / "metrics.csv"
        self.rows: list[dict] = []
        self.wandb = None
        self.wandb_error: str | None = None
        self._thread: ThreadPoolExecutor | None = None
        if logger_cfg.mode != "disabled":
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="wandb")
            config = OmegaConf.to_container(config, resolve=True)  # now: the caller's config may change later
            self._later("start", lambda: setattr(self, "wandb", start_wandb(run_dir, logger_cfg, config, provenance)))

    def _later(self, what: str, call) -> None:
        """Run a W&B call in the W&B thread, after the ones before it; nothing once W&B has failed."""
        if self._thread is not None:
            self._thread.submit(self._guard, what, call)

    def _guard(self, what: str, call) -> None:
        """Run a W&B call; on failure, say so once and go on without W&B."""
        if what != "start" and self.wandb is None:
            return
        try:
            call()
        except Exception as err:  # noqa: BLE001 - W&B must never cost the local outputs
            self.wandb_error = f"{what}: {describe(err)}"
            log.warning("W&B failed (%s); continuing without it, metrics.csv and curve.png are still written",
                        self.wandb_error)
            wandb_run, self.wandb = self.wandb, None
            if wandb_run is not None:
                try:
                    wandb_run.finish(exit_code=1)
                except Exception:  # noqa: BLE001
                    pass

    def restore(self, rows: list[dict]) -> None:
        """A resumed run keeps exactly the rows of its finished iterations, in the file and in W&B."""
        self.rows = list(rows)
        self._write_csv()
        for row in self.rows:
            self._later("log", lambda row=row: self.wandb.log(row, step=row["iteration"]))

    def _write_csv(self) -> None:
        text = io.StringIO()
        columns = list(dict.fromkeys(key for row in self.rows for key in row))  # the rows' own keys, in order
        writer = csv.DictWriter(text, fieldnames=columns)
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, text.getvalue())

    def log(self, row: dict) -> None:
        self.rows.append(row)
        self._write_csv()
        self._later("log", lambda: self.wandb.log(row, step=row["iteration"]))

    def log_media(self, media: dict[str, Future], iteration: int) -> None:
        """Files of the run at `iteration`, made in the background (futures of their paths): logged at
        `iteration`'s step once made, mp4s as `wandb.Video`, others as `wandb.Image` (nothing without W&B; the files
        are written either way). The W&B thread waits for them before any later row, so the step is still open
        (W&B closes a step when a later one is logged)."""
        if media:
            self._later("log", lambda: self._log_files(media, iteration))

    def _log_files(self, media: dict[str, Future], iteration: int) -> None:
        import wandb

        paths = {key: None if future.cancelled() else future.result() for key, future in media.items()}
        logged = {key: wandb.Video(str(path), format="mp4") if path.suffix == ".mp4" else wandb.Image(str(path))
                  for key, path in paths.items() if path is not None}
        if logged:
            self.wandb.log(logged, step=iteration)

    def finish(self, summary: dict, curve: Path | None, failed: bool = False) -> None:
        """The run's summary, its per-iteration table and its curve, then close the W&B run (and wait for it)."""
        if self._thread is None:
            return
        rows = list(self.rows)

        def close() -> None:
            import wandb

            self.wandb.summary.update(summary)
            step = rows[-1]["iteration"] if rows else 0
            media = {"metrics_table": metrics_table(rows)} if rows else {}
            if curve is not None and curve.is_file():
                media["curve"] = wandb.Image(str(curve))
            if media:
                self.wandb.log(media, step=step)
            self.wandb.finish(exit_code=1 if failed else 0)
            self.wandb = None

        self._later("finish", close)
        self._thread.shutdown(wait=True)
        self._thread = None


def start_wandb(run_dir: Path, logger_cfg: LoggerConfig, config: dict, provenance: dict | None = None):
    """A W&B run in `run_dir/wandb`, offline unless `logger.mode=online`, with the resolved config."""
    overrides = override_values(job_overrides())  # the swept values, to group by in the W&B UI
    config["overrides"] = {key.lstrip("+~"): value for key, value in overrides.items()}
    config["provenance"] = provenance or {}
    run = init_wandb(run_dir, project=logger_cfg.project, entity=logger_cfg.entity, group=logger_cfg.group,
                     job_type=logger_cfg.job_type, name=logger_cfg.name, tags=list(logger_cfg.tags),
                     mode=logger_cfg.mode, config=config)
    define_axes(run)
    return run


def init_wandb(folder: Path, **init):
    """`wandb.init` with this project's settings: files under `folder/wandb`, quiet, a bounded start."""
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    return wandb.init(dir=str(folder), reinit="finish_previous", settings=wandb.Settings(init_timeout=60), **init)


X_AXES = ("expert_labels", "iteration")


def define_axes(run) -> None:
    """Every per-iteration metric is plotted against the expert labels spent by default (how the field reads
    DAgger), and can be plotted against the iteration (also W&B's step); `summarize` gives the summary."""
    for axis in X_AXES:
        run.define_metric(axis, hidden=False)
    run.define_metric("*", step_metric="expert_labels", step_sync=True)


def metrics_table(rows: list[dict]):
    """metrics.csv as a `wandb.Table` (one row per iteration, the same columns)."""
    import wandb

    columns = list(dict.fromkeys(key for row in rows for key in row))
    return wandb.Table(columns=columns, data=[[row.get(c) for c in columns] for row in rows])


def summarize(rows: list[dict]) -> dict:
    """The run's headline numbers (W&B summary keys): final_* at the last iteration, best_* at the evaluated
    iteration with the highest return, expert_return* of the expert on the same evaluation episodes,
    *_normalized_return = (return - random) / (expert - random) by the references the rows name (`normalized_by`;
    `final_run_normalized_return` by the run's own measure of the expert; `last3_normalized_return` the mean of the
    last three evaluations), the steadiness (`steadiness`: after the
    learner first reaches 90%, the share of later evaluations at or above 85%), the expert labels and wall time."""
    from dagger.report.statistics import steadiness

    evaluated = [r for r in rows if r["return_mean"] == r["return_mean"]]  # rows between evaluations hold nan
    final, best = rows[-1], max(evaluated or rows, key=lambda r: r["return_mean"])
    last3 = [r["normalized_return"] for r in evaluated[-3:]]
    return {"final_return": final["return_mean"], "final_return_std": final["return_std"],
            "best_return": best["return_mean"], "best_iteration": best["iteration"],
            "expert_return": final["expert_return_mean"], "expert_return_std": final["expert_return_std"],
            "final_normalized_return": final["normalized_return"],
            "best_normalized_return": best["normalized_return"],
            "last3_normalized_return": sum(last3) / len(last3) if last3 else float("nan"),
            "final_run_normalized_return": final.get("run_normalized_return", final["normalized_return"]),
            "normalized_by": final.get("normalized_by", "run"),
            "steadiness": steadiness([r["normalized_return"] for r in rows]),
            "expert_labels": final["expert_labels"], "wall_time_s": final["wall_time_s"]}


def final_table(rows: list[dict], title: str) -> str:
    """The per-iteration table shown at the end of a run, rendered as text (console and run.log)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("iter", "labels", "queries", "interventions", "loss", "return", "% expert", "time (s)"):
        table.add_column(column, justify="right")
    for r in rows:
        if r["return_mean"] != r["return_mean"]:  # not evaluated (eval.every)
            continue
        table.add_row(str(r["iteration"]), f"{r['expert_labels']:,}", f"{r.get('expert_queries', 0):,}",
                      f"{r.get('interventions', 0):,}", f"{r.get('train_loss', float('nan')):.4f}",
                      f"{r['return_mean']:.1f} ± {r['return_std']:.1f}", f"{r['normalized_return']:.1%}",
                      f"{r['wall_time_s']:.1f}")
    last = rows[-1]
    table.caption = f"expert {last['expert_return_mean']:.1f} ± {last['expert_return_std']:.1f}"
    console = Console(file=io.StringIO(), width=100, color_system=None)
    console.print(table)
    return console.file.getvalue().rstrip()


def console_handler() -> logging.Handler:
    """Console logging through rich, wide enough that lines are not wrapped when output is redirected."""
    import shutil

    from rich.console import Console
    from rich.logging import RichHandler

    console = Console(width=None if sys.stdout.isatty() else max(160, shutil.get_terminal_size().columns))
    return RichHandler(console=console, show_path=False, markup=False, rich_tracebacks=False,
                       log_time_format="[%X]")
