"""Run a DAgger experiment: python run.py env=walker expert=sac [group=option ...] [key=value ...]

Config groups (conf/): env, expert, obs, policy, schedule, algo, logger. `--help` lists their options and
`--cfg job` prints the composed config. Outputs go to the run's Hydra directory. The work is one library
call, `dagger.app.run`; this file is the command line around it.
"""
from __future__ import annotations

import signal
import sys
from pathlib import Path

if __name__ == "__main__":  # a stop while the libraries load is one line too (dagger.app takes over in the run)
    import faulthandler
    import gc

    faulthandler.enable()  # a crash in native code prints every thread's Python stack to stderr, then dies as before
    gc.disable()  # the imports and the checks leave no garbage worth collecting: 7 full passes, 0.5 s of the start
    for _sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(_sig, lambda signum, _: sys.exit(f"error: interrupted by {signal.Signals(signum).name} "
                                                       "before the run started; nothing was written"))

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from dagger import sweep
from dagger.config import ConfigError, check_overrides, register_resolvers
from dagger.cli import check_output_dir
from dagger.files import existing_folders
from dagger.video import check_mujoco_gl

register_resolvers()
EXISTING: set[Path] = set()  # hydra.run.dir when it was there before this command (Hydra makes it otherwise)


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    from dagger.app import RunStopped, metric, run

    hydra_cfg = HydraConfig.get()
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    run_dir = Path(hydra_cfg.runtime.output_dir)
    try:
        return metric(cfg, run(cfg, run_dir, sweep.hydra_files(cfg), videos=not in_sweep,  # videos: single runs
                               existed=run_dir.resolve() in EXISTING))
    except RunStopped as err:
        if not in_sweep or err.status == "interrupted":
            sys.exit(f"error: {err}")
        sweep.record_stopped_job(run_dir, cfg, err)  # the sweep's other jobs still run; it exits non-zero
        return metric(cfg, {"status": err.status, "error": str(err)})


if __name__ == "__main__":
    try:
        check_overrides(sys.argv[1:])  # overrides Hydra cannot parse, named in one line
        check_output_dir(sys.argv[1:])  # a hydra.run.dir that cannot be a folder
        EXISTING.update(existing_folders(sys.argv[1:], ("hydra.run.dir",)))
        check_mujoco_gl()  # before anything imports mujoco
    except ConfigError as err:
        sys.exit(f"error: {err}")
    main()
    sweep.exit_if_jobs_stopped()
