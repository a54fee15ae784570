"""What the command line adds around `dagger.app.run` for Hydra: the `.hydra/` files, and sweeps that survive a
bad job.

In a sweep (`-m`) a refused or failed job does not end the sweep: its line is printed, it is recorded in its own
folder (status.json, when the folder was new) and in `<sweep dir>/stopped_jobs.jsonl`, the other jobs still run,
and the sweep exits non-zero at the end, naming them. `python -m dagger.report <sweep dir>` lists them too.
An interrupted job (SIGTERM, SIGINT) stops the whole sweep.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from dagger.cli import job_overrides

STOPPED_FILE = "stopped_jobs.jsonl"
STOPPED: list[dict] = []  # jobs of the sweep this process ran that did not finish (filled at its end)


def hydra_files(cfg: DictConfig) -> dict[str, str]:
    """What Hydra would write into `.hydra/` (written by us, after the checks, so a refusal changes nothing)."""
    hydra_cfg = HydraConfig.get()
    return {"config.yaml": OmegaConf.to_yaml(cfg),
            "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": OmegaConf.to_container(hydra_cfg)})),
            "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(job_overrides()))}


def record_stopped_job(run_dir: Path, cfg: DictConfig, err) -> None:
    """A sweep job that did not finish: in the sweep's list, and in its own folder when that was new (a refused
    job's folder is removed by the refusal; a folder holding an earlier run is never touched)."""
    from dagger.runs import RunFolder

    print(f"error: {err}", file=sys.stderr, flush=True)
    entry = {"job": str(run_dir), "status": err.status, "error": str(err)}
    line = (json.dumps(entry) + "\n").encode()
    fd = os.open(Path(HydraConfig.get().sweep.dir) / STOPPED_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line)  # one write with O_APPEND: jobs in parallel processes never interleave
    finally:
        os.close(fd)
    if err.status == "refused" and not (run_dir.exists() and any(run_dir.iterdir())):
        RunFolder(run_dir).record_refusal(hydra_files(cfg), str(err))


class SweepOutcome(Callback):
    """Hydra callback (conf/config.yaml: hydra.callbacks): clears the sweep's list of stopped jobs at its start
    and reads it at its end, in the process that launched the jobs."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        STOPPED.clear()
        (Path(config.hydra.sweep.dir) / STOPPED_FILE).unlink(missing_ok=True)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        path = Path(config.hydra.sweep.dir) / STOPPED_FILE
        if path.is_file():
            STOPPED.extend(json.loads(line) for line in path.read_text().splitlines() if line.strip())


def exit_if_jobs_stopped() -> None:
    """After a sweep: a non-zero exit naming the jobs that did not finish."""
    if STOPPED:
        jobs = ", ".join(f"{Path(job['job']).name} ({job['status']})" for job in STOPPED)
        sys.exit(f"error: {len(STOPPED)} job(s) of the sweep did not finish: {jobs}; see {STOPPED_FILE} in the "
                 "sweep folder")
