"""Building gymnasium MuJoCo environments from the `env` config group."""
from __future__ import annotations

import gymnasium as gym
from omegaconf import DictConfig, OmegaConf

from dagger.config import ConfigError


def make_env(env_cfg: DictConfig, **overrides) -> gym.Env:
    """One environment, as the config describes it."""
    kwargs = OmegaConf.to_container(env_cfg.kwargs, resolve=True) if env_cfg.get("kwargs") else {}
    if env_cfg.get("max_episode_steps"):
        kwargs["max_episode_steps"] = int(env_cfg.max_episode_steps)
    kwargs.update(overrides)
    try:
        return gym.make(env_cfg.id, **kwargs)
    except gym.error.Error as err:
        raise ConfigError(f"env.id={env_cfg.id!r}: {err}") from err


def make_vec_env(env_cfg: DictConfig, num_envs: int | None = None) -> gym.vector.VectorEnv:
    """`env.num_envs` copies stepped in lock-step, resetting themselves at episode ends."""
    n = int(num_envs or env_cfg.num_envs)
    return gym.vector.SyncVectorEnv([lambda: make_env(env_cfg) for _ in range(n)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
