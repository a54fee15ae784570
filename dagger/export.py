"""Export a run's aggregated dataset as a local Minari dataset:

    python -m dagger.export <run dir> [--id dagger-lab/walker/dagger-sac-s0-v0]

`minari list local`, `minari show <id>` and `minari.load_dataset("<id>")` then read it, and
`python run.py ... schedule.initial_demos=<id>` starts DAgger from it. Minari keeps local datasets in
MINARI_DATASETS_PATH (default ~/.minari/datasets). The conventions (episodes, actions, infos, metadata) are
in `dagger.minari_datasets`.
"""
from __future__ import annotations

import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
from omegaconf import OmegaConf

from dagger.actions import actions_of
from dagger.config import ConfigError, describe, first_line
from dagger.cli import ArgumentParser
from dagger.data import Dataset
from dagger.minari_datasets import NAMESPACE, id_problem, write_minari
from dagger.runs import read_json, read_status


def default_id(cfg) -> str:
    return f"{NAMESPACE}/{cfg.env.name}/{cfg.algo.name}-{cfg.expert.algo}-s{cfg.seed}-v0"


def read_run(run_dir: Path):
    """The run's config, expert provenance, last metrics row and D; each unreadable file is one ConfigError."""
    try:
        cfg = OmegaConf.load(run_dir / "config.yaml")
        env_id, algo = str(cfg.env.id), str(cfg.algo.name)
    except Exception as err:  # noqa: BLE001 - missing or foreign: one line
        raise ConfigError(f"{run_dir / 'config.yaml'}: not a run's config ({first_line(err)[:200]}); "
                          "expected a run folder written by run.py") from None
    try:
        last = pd.read_csv(run_dir / "metrics.csv").iloc[-1]
        refs = float(last["random_return_mean"]), float(last["expert_return_mean"])
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"{run_dir / 'metrics.csv'}: no finished iteration to export ({first_line(err)[:200]})") from None
    try:
        data = Dataset.load(run_dir / "dataset.npz")
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"{run_dir / 'dataset.npz'}: cannot be read ({first_line(err)[:200]})") from None
    if len(data.transitions) == 0:
        raise ConfigError(f"{run_dir / 'dataset.npz'}: holds no recorded episodes; rerun the experiment to export it")
    if env_id not in gym.registry:  # gym.make("module:Env") would import the module the file names
        raise ConfigError(f"{run_dir / 'config.yaml'}: env.id={env_id[:100]!r} is not a registered gymnasium task; "
                          "the export makes only registered tasks and never imports a module a file names")
    expert = read_json(run_dir / "provenance.json").get("expert", {})
    return cfg, env_id, algo, refs, expert, data


def check_arrays(where: Path, data: Dataset, env, env_id: str) -> None:
    """The arrays to export must be of the task's widths (the full states; the student's view is its own) and
    finite (Minari writes the env's declared spaces)."""
    t = data.transitions
    widths = (t["state"].shape[1], t["acts"].shape[1])
    theirs = (env.observation_space.shape[0], actions_of(env.action_space).width)
    if widths != theirs:
        raise ConfigError(f"{where}: observations and actions of widths {widths} do not match {env_id}'s spaces "
                          f"{theirs}")
    labelled = t["labelled"]
    if not all(np.isfinite(a).all() for a in (t["obs"], t["next_obs"], t["state"], t["acts"], t["reward"],
                                              t["label"][labelled])):
        raise ConfigError(f"{where}: holds non-finite observations, actions or rewards")


def export(run_dir: Path, dataset_id: str | None = None) -> tuple[str, Path, Dataset]:
    """Write the run's D as the local Minari dataset `dataset_id`; returns the id, its folder and D."""
    from dagger.envs import make_env

    cfg, env_id, algo, (random_return, expert_return), expert, data = read_run(run_dir)
    dataset_id = dataset_id or default_id(cfg)
    problem = id_problem(dataset_id)
    if problem:
        raise ConfigError(f"--id={dataset_id!r} {problem}, e.g. {default_id(cfg)}")
    labelled = data.transitions["labelled"]
    description = (f"dagger-lab: {algo} on {env_id}, labelled by the {expert.get('algo', '?')} expert "
                   f"{Path(str(expert.get('model', '?'))).name} (sha256 {str(expert.get('model_sha256', '?'))[:16]}); "
                   f"{int(labelled.sum())} of {len(labelled)} steps labelled. Actions are the expert's labels "
                   "(the executed action where infos['labelled'] is false); infos hold executed_action, labelled, "
                   "learner and iteration per step.")
    metadata = {"dagger_lab": {"algorithm": algo, "expert": expert, "seed": int(cfg.seed), "run_dir": str(run_dir),
                               "iterations": int(data.transitions["iteration"].max()),
                               "expert_labels": len(data), "config": OmegaConf.to_container(cfg)}}
    env = make_env(cfg.env)
    try:
        check_arrays(run_dir / "dataset.npz", data, env, env_id)
        path = write_minari(dataset_id, data, env, algorithm=f"dagger-lab/{algo}", description=description,
                            ref_min_score=random_return, ref_max_score=expert_return, extra_metadata=metadata)
    finally:
        env.close()
    return dataset_id, path, data


def main(argv: list[str] | None = None) -> None:
    parser = ArgumentParser(prog="python -m dagger.export", description=__doc__.split("\n\n")[0],
                            hint="<run dir> [--id <minari dataset id>]")
    parser.add_argument("run_dir", type=Path, help="a run's folder (outputs/... or multirun/.../<job>)")
    parser.add_argument("--id", dest="dataset_id", default=None,
                        help="the Minari dataset id (default dagger-lab/<env>/<algo>-<expert>-s<seed>-v0)")
    args = parser.parse_args(argv)
    if not args.run_dir.is_dir():
        sys.exit(f"error: {args.run_dir} is not a directory")
    try:
        dataset_id, path, data = export(args.run_dir, args.dataset_id)
    except ConfigError as err:
        sys.exit(f"error: {err}")
    except (OSError, MemoryError) as err:  # a full disk, an unwritable datasets folder: the partial dataset is removed
        sys.exit(f"error: writing the Minari dataset failed ({describe(err)}); nothing was kept")
    import minari

    dataset = minari.load_dataset(dataset_id)
    status = read_status(args.run_dir).get("status", "unknown")
    print(f"{dataset_id}: {dataset.total_episodes} episodes, {dataset.total_steps} steps "
          f"({int(np.sum(data.transitions['labelled']))} labelled) from the {status} run {args.run_dir}\n"
          f"  {path}\n  read it with: minari show {dataset_id}  |  minari.load_dataset({dataset_id!r})\n"
          f"  start from it: python run.py ... schedule.initial_demos={dataset_id}")


if __name__ == "__main__":
    main()
