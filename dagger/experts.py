"""Stable-Baselines3 checkpoints as batched experts: `act(obs) -> actions` for many states at once."""
from __future__ import annotations

import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np
from omegaconf import DictConfig
from stable_baselines3.common.base_class import BaseAlgorithm

from dagger.config import ConfigError, resolve_path

ALGORITHMS = ("sac", "td3", "tqc", "ppo")


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """The SB3 class for an `expert.algo` name."""
    if algo == "tqc":
        from sb3_contrib import TQC

        return TQC
    import stable_baselines3 as sb3

    classes = {"sac": sb3.SAC, "td3": sb3.TD3, "ppo": sb3.PPO}
    if algo not in classes:
        raise ConfigError(f"expert.algo={algo!r} is not one of {', '.join(ALGORITHMS)}")
    return classes[algo]


def train_command(env_name: str, algo: str) -> str:
    return f"python experts/train.py env={env_name} expert={algo}"


def find_checkpoint(path: Path, env_id: str) -> tuple[Path, Path | None]:
    """The model .zip and its optional vecnormalize.pkl.

    Accepts a .zip file, a folder holding `<EnvId>.zip`, or an rl-baselines3-zoo algorithm
    folder with runs `<EnvId>_<n>/` (the highest n is used). Zoo keeps the statistics in
    `<EnvId>/vecnormalize.pkl` beside the model; a `vecnormalize.pkl` next to it also counts.
    """
    if path.is_dir():
        runs = sorted((p for p in path.glob(f"{env_id}_*") if re.fullmatch(rf"{re.escape(env_id)}_\d+", p.name)),
                      key=lambda p: int(p.name.rsplit("_", 1)[1]))
        folder = runs[-1] if runs else path
        path = folder / f"{env_id}.zip"
    if not path.is_file():
        raise FileNotFoundError(path)
    for stats in (path.with_suffix("") / "vecnormalize.pkl", path.parent / "vecnormalize.pkl"):
        if stats.is_file():
            return path, stats
    return path, None


@dataclass
class Expert:
    """A trained SB3 policy that labels batches of states."""

    model: BaseAlgorithm
    deterministic: bool = True
    obs_normalizer: object | None = None  # a VecNormalize whose statistics apply to observations

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions for a batch of raw observations, shape (n, obs_dim) -> (n, act_dim)."""
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer.normalize_obs(obs)
        actions, _ = self.model.predict(obs, deterministic=self.deterministic)
        return actions


def check_spaces(expert_obs: gym.Space, expert_act: gym.Space, env: gym.Env, where: Path) -> None:
    """The expert must have been trained on an environment shaped like this one."""
    for kind, theirs, ours in (("observation", expert_obs, env.observation_space),
                               ("action", expert_act, env.action_space)):
        if theirs.shape != ours.shape:
            raise ConfigError(f"expert.path={where}: {kind} space {theirs.shape} does not match "
                              f"env {env.spec.id} {kind} space {ours.shape}")


def load_expert(expert_cfg: DictConfig, env_name: str, env: gym.Env, device: str = "cpu") -> Expert:
    """Load `expert.path` for this env, checking it exists and matches the env's spaces."""
    env_id = env.spec.id
    path = resolve_path(expert_cfg.path)
    try:
        model_path, stats_path = find_checkpoint(path, env_id)
    except FileNotFoundError as err:
        raise ConfigError(f"expert.path: no {expert_cfg.algo} checkpoint at {err.args[0]}; train one with "
                          f"`{train_command(env_name, expert_cfg.algo)}`") from None
    cls = algorithm_class(expert_cfg.algo)
    # Schedules are training-only and may not unpickle across library versions.
    custom = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}
    try:
        model = cls.load(model_path, device=device, custom_objects=custom)
    except Exception as err:  # noqa: BLE001 - a broken or foreign file gets one clear line
        raise ConfigError(f"expert.path={model_path}: cannot load as {cls.__name__}: {err}") from None
    check_spaces(model.observation_space, model.action_space, env, model_path)
    normalizer = None
    if stats_path is not None:
        with open(stats_path, "rb") as f:
            normalizer = pickle.load(f)
        normalizer.training = False
    return Expert(model=model, deterministic=bool(expert_cfg.deterministic), obs_normalizer=normalizer)
