"""One tracker interface for the run's outputs: `metrics.csv` always, plus W&B unless `logger=none`,
and the run's `status.json`."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

METRICS = ("iteration", "beta", "return_mean", "return_std", "normalized_return", "dataset_size",
           "expert_labels", "env_steps", "expert_return_mean", "expert_return_std", "random_return_mean",
           "rollout_return_mean", "expert_action_fraction", "train_loss",
           "fit_time_s", "rollout_time_s", "eval_time_s", "wall_time_s")
LOGGER_MODES = ("offline", "online", "disabled")


class Tracker:
    """Writes one row per iteration to `metrics.csv` and, when enabled, to a W&B run."""

    def __init__(self, run_dir: Path, logger_cfg: DictConfig, config: DictConfig):
        self.path = run_dir / "metrics.csv"
        self.rows: list[dict] = []
        self.wandb = None
        if logger_cfg.get("mode", "disabled") != "disabled":
            self.wandb = start_wandb(run_dir, logger_cfg, config)

    def restore(self, rows: list[dict]) -> None:
        """A resumed run keeps exactly the rows of its finished iterations, in the file and in W&B."""
        self.rows = list(rows)
        self._rewrite_csv()
        for row in self.rows:
            if self.wandb is not None:
                self.wandb.log(row, step=row["iteration"])

    def _rewrite_csv(self) -> None:
        with open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=METRICS)
            writer.writeheader()
            writer.writerows(self.rows)

    def log(self, row: dict) -> None:
        self.rows.append(row)
        if len(self.rows) == 1:
            self._rewrite_csv()
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, fieldnames=METRICS).writerow(row)
        if self.wandb is not None:
            self.wandb.log(row, step=row["iteration"])

    def finish(self, summary: dict, curve: Path | None, failed: bool = False) -> None:
        if self.wandb is None:
            return
        import wandb

        self.wandb.summary.update(summary)
        if curve is not None and curve.is_file():
            self.wandb.log({"curve": wandb.Image(str(curve))}, step=self.rows[-1]["iteration"] if self.rows else 0)
        self.wandb.finish(exit_code=1 if failed else 0)
        self.wandb = None


def start_wandb(run_dir: Path, logger_cfg: DictConfig, config: DictConfig):
    """A W&B run in `run_dir/wandb`, offline unless `logger.mode=online`, with the resolved config."""
    import wandb

    os.environ.setdefault("WANDB_SILENT", "true")
    config = OmegaConf.to_container(config, resolve=True)
    config["overrides"] = command_line_overrides()  # the swept values, to group by in the W&B UI
    return wandb.init(
        project=logger_cfg.project, entity=logger_cfg.get("entity"), group=logger_cfg.get("group"),
        job_type=logger_cfg.get("job_type"), name=logger_cfg.get("name"),
        tags=list(logger_cfg.get("tags") or []), mode=logger_cfg.mode, dir=str(run_dir),
        config=config, reinit="finish_previous",
    )


def command_line_overrides() -> dict[str, str]:
    """`key=value` overrides of this job (a sweep's swept values among them)."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    pairs = (o.split("=", 1) for o in HydraConfig.get().overrides.task if "=" in o)
    return {key.lstrip("+~"): value for key, value in pairs}


def read_status(run_dir: Path) -> dict:
    path = run_dir / "status.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def write_status(run_dir: Path, status: str, **extra) -> None:
    """running, finished or failed: what resuming and the sweep report read."""
    (run_dir / "status.json").write_text(json.dumps({"status": status, **extra}))
