"""The report in W&B (`python -m dagger.report <multirun dir> --wandb`): one run of job type report, in
the sweep's group, holding its tables and pictures."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from dagger.tracking import init_wandb

if TYPE_CHECKING:
    import wandb


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
                            **{f"steadiness/{r.task}/{r.configuration}": r.steadiness
                               for r in summary.itertuples() if r.steadiness == r.steadiness},  # nan: none reached 0.9
                            **{f"iqm/{a.configuration}": a.iqm for a in aggregate.itertuples()}})
    except BaseException:
        run.finish(exit_code=1)
        raise
    run.finish()
    return run
