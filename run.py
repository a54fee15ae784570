"""Run a DAgger experiment: python run.py env=walker expert=sac [group=option ...] [key=value ...]

Config groups (conf/): env, expert, policy, schedule, algo, logger. `--help` lists their options and
`--cfg job` prints the composed config. Outputs go to the run's Hydra directory.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from dagger.config import ConfigError, check_overrides, pick_device, register_resolvers, validate
from dagger.runs import RunFolder
from dagger.video import check_mujoco_gl

register_resolvers()
log = logging.getLogger("run")


def build_parts(cfg: DictConfig, folder: RunFolder):
    """Config -> parts. Every check that can fail happens here, before the run folder is touched."""
    import numpy as np
    import torch

    from dagger.envs import make_env
    from dagger.experts import load_expert
    from dagger.loop import Budget, Parts
    from dagger.minari_datasets import load_demonstrations
    from dagger.policy import build_learner
    from dagger.rollout import Collector, Evaluator
    from dagger.schedules import build_schedule
    from dagger.supervisors import build_supervisor
    from dagger.supervisors.beta_mixture import BetaMixture
    from dagger.tracking import Tracker
    from dagger.video import VideoRecorder

    device = pick_device(cfg.device)
    schedule = build_schedule(cfg.schedule)
    torch.set_num_threads(int(cfg.threads))
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    probe = make_env(cfg.env)
    expert = load_expert(cfg.expert, cfg.env.name, probe, device=device)
    folder.check_expert(expert.files)
    learner = build_learner(cfg.policy, probe.observation_space, probe.action_space, device)
    supervisor = build_supervisor(cfg.algo, schedule=schedule, action_space=probe.action_space,
                                  observation_space=probe.observation_space, num_envs=int(cfg.env.num_envs),
                                  learner=learner, seed=int(cfg.seed))
    budget = Budget(int(cfg.schedule.iterations), int(cfg.schedule.rollout_steps),
                    int(cfg.schedule.initial_expert_steps))
    demonstrations = (load_demonstrations(cfg.schedule.initial_demos, probe.observation_space, probe.action_space,
                                          cfg.env.id) if cfg.schedule.get("initial_demos") else None)
    probe.close()
    collector = Collector(cfg.env, int(cfg.env.num_envs), seed=cfg.seed)
    eval_seed = cfg.seed + 1_000_000  # evaluation episodes never share seeds with the rollouts
    video = VideoRecorder(cfg.env, folder.path, seed=eval_seed, every=int(cfg.eval.video_every),
                          fps=int(cfg.eval.video_fps), size=tuple(cfg.eval.video_size), enabled=videos_on(cfg))
    evaluator = Evaluator(cfg.env, int(cfg.eval.episodes), seed=eval_seed, every=int(cfg.eval.every), video=video)
    # All checks passed: from here on the run folder is written.
    folder.start(cfg, expert.files, hydra_files(cfg))
    log.info("expert: %s %s (sha256 %s)%s", expert.files["algo"], expert.files["model"],
             expert.files["model_sha256"][:16],
             f", statistics {expert.files['stats']} (sha256 {expert.files['stats_sha256'][:16]})"
             if expert.files.get("stats") else "")
    tracker = Tracker(folder.path, cfg.logger, cfg, provenance={"expert": expert.files})
    if tracker.wandb_error:
        folder.update_status(wandb_error=tracker.wandb_error)
    return Parts(expert=expert, learner=learner, supervisor=supervisor, demonstrator=BetaMixture(schedule, beta=1.0),
                 budget=budget, collector=collector,
                 evaluator=evaluator, tracker=tracker, run_dir=folder.path, seed=int(cfg.seed),
                 demonstrations=demonstrations)


def videos_on(cfg: DictConfig) -> bool:
    """eval.video, where null means: on for a single run, off for the jobs of a sweep (-m)."""
    from hydra.types import RunMode

    if cfg.eval.video is not None:
        return bool(cfg.eval.video)
    return HydraConfig.get().mode != RunMode.MULTIRUN


def hydra_files(cfg: DictConfig) -> dict[str, str]:
    """What Hydra would write into `.hydra/` (written by us, after the checks, so a refusal changes nothing)."""
    hydra_cfg = HydraConfig.get()
    return {"config.yaml": OmegaConf.to_yaml(cfg),
            "hydra.yaml": OmegaConf.to_yaml(OmegaConf.create({"hydra": OmegaConf.to_container(hydra_cfg)})),
            "overrides.yaml": OmegaConf.to_yaml(OmegaConf.create(list(hydra_cfg.overrides.task)))}


def prepare(cfg: DictConfig, folder: RunFolder) -> list[dict] | None:
    """Check the config and any run already in the folder; returns its rows if it already finished."""
    from dagger.runs import load_state

    folder.lock()
    validate(cfg)
    if not folder.holds_a_run():
        return None
    state = load_state(folder.path / "checkpoint.pt")
    done = int(state["progress"]["iteration"])
    folder.check_resume(cfg, done)
    status = folder.read_status()
    if status.get("status") == "finished" and done == cfg.schedule.iterations:
        return list(state["rows"])
    return None


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> dict:
    from dagger.loop import run_dagger
    from dagger.report import plot_curve
    from dagger.tracking import final_table, summarize

    folder = RunFolder(Path(HydraConfig.get().runtime.output_dir))
    try:
        rows = prepare(cfg, folder)
        parts = build_parts(cfg, folder) if rows is None else None
    except ConfigError as err:
        folder.close_refused()
        sys.exit(f"error: {err}")
    title = f"{cfg.algo.name} on {cfg.env.id} / {cfg.expert.algo} expert (seed {cfg.seed})"
    if parts is None:
        log.info("already finished: %s", folder.path)
    else:
        failed = True
        try:
            rows = run_dagger(parts)
            import pandas as pd

            curve = plot_curve(pd.DataFrame(rows), folder.path / "curve.png", title)
            failed = False
        except BaseException as err:
            folder.write_status("failed", error=f"{type(err).__name__}: {err}",
                                **({"wandb_error": parts.tracker.wandb_error} if parts.tracker.wandb_error else {}))
            log.error("run failed: %s: %s", type(err).__name__, err)
            raise
        finally:
            parts.tracker.finish({} if failed else summarize(rows), None if failed else curve, failed=failed)
            parts.collector.close()
            parts.evaluator.close()
        problems = {key: value for key, value in (("wandb_error", parts.tracker.wandb_error),
                                                  ("video_error", parts.evaluator.video.error)) if value}
        folder.write_status("finished", iterations=int(cfg.schedule.iterations), **problems)
    log.info("%s", final_table(rows, title))
    log.info("outputs: %s", folder.path)
    folder.release()
    return summarize(rows)


if __name__ == "__main__":
    try:
        check_overrides(sys.argv[1:])  # overrides Hydra cannot parse, named in one line
        check_mujoco_gl()  # before anything imports mujoco
    except ConfigError as err:
        sys.exit(f"error: {err}")
    main()
