"""Building gymnasium MuJoCo environments from the `env` config group, and the checks that they can run here."""
from __future__ import annotations

from typing import Annotated, Any

import gymnasium as gym
import numpy as np
from pydantic import field_validator
from pydantic_core import PydanticCustomError

from dagger.actions import actions_of
from dagger.config import ConfigError, describe, unexpected_keyword
from dagger.schemas import COUNT, TEXT, Help, Rule, Schema, integer

SIMULATORS = integer(1, 1024)  # env copies in one process (rollout envs, evaluation episodes)


def unregistered(env_id: str) -> str | None:
    """What is wrong with a gymnasium task id (`env.id`), or None; nothing is imported to check it."""
    try:
        gym.spec(env_id)
    except gym.error.Error:
        return "is not a registered gymnasium environment"
    return None


class EnvConfig(Schema):
    """The `env` group: which gymnasium task, and how many copies the rollouts step."""

    name: Annotated[str, TEXT]
    id: Annotated[str, TEXT, Rule("a gymnasium environment id", unregistered), Help("the gymnasium task")]
    num_envs: Annotated[int, SIMULATORS, Help("rollout envs side by side, at most (as many whole episodes as fit)")]
    max_episode_steps: Annotated[Annotated[int, COUNT] | None, Help("the episodes' time limit (null: the task's own)")]
    kwargs: Annotated[dict[str, Any], Help("keyword arguments passed to gymnasium.make")]

    @field_validator("kwargs")
    @classmethod
    def no_window(cls, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A render mode would open a window (human) or render every step for nothing: videos render offscreen by
        themselves (eval.video), so the key is refused before any work."""
        if kwargs.get("render_mode") is not None:
            raise PydanticCustomError("check", "{problem}", {
                "problem": "is refused: runs render their videos offscreen themselves (eval.video), and a window "
                           "cannot open on a machine without a display", "at": "render_mode",
                "value": kwargs["render_mode"]})
        return kwargs


def make_env(env_cfg: EnvConfig, **overrides) -> gym.Env:
    """One environment, as the config describes it.

    Keyword arguments the task does not take, or takes but cannot run with (tried once per process
    on a throwaway copy), and tasks whose spaces are not continuous Boxes raise ConfigError naming the key.
    """
    kwargs = dict(env_cfg.kwargs)
    if env_cfg.max_episode_steps:
        kwargs["max_episode_steps"] = env_cfg.max_episode_steps
    kwargs.update(overrides)
    env_id = env_cfg.id
    if env_cfg.kwargs:
        try_kwargs(env_id, repr(sorted(kwargs.items())), kwargs)
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as err:
        raise ConfigError(f"env.id={env_id!r}: {err}") from err
    except (TypeError, ValueError) as err:
        if not env_cfg.kwargs:  # nothing of the user's was passed: the task itself cannot be built here
            raise ConfigError(f"env.id={env_id!r} cannot be built: {describe(err)}") from None
        raise ConfigError(kwargs_error(env_id, err)) from None
    try:
        check_spaces(env)
        check_task(env)
    except ConfigError:
        env.close()
        raise
    return env


MAX_EPISODE_STEPS = 100_000  # evaluation runs whole episodes: without a time limit it could run forever


def visited_states(env: gym.Env, steps: int, act, seed: int) -> np.ndarray:
    """The observations of `steps` steps of `act` (observation -> the env's action) from a reset seeded by `seed`,
    a new episode starting (unseeded) whenever one ends: (steps, obs_dim)."""
    obs, _ = env.reset(seed=seed)
    seen = []
    for _ in range(steps):
        seen.append(obs)
        obs, _, terminated, truncated, _ = env.step(act(obs))
        if terminated or truncated:
            obs, _ = env.reset()
    return np.asarray(seen)


def is_mujoco(env: gym.Env) -> bool:
    """A MuJoCo task: its episodes can be saved mid-way (MuJoCo's state snapshot) and filmed by its cameras."""
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    return isinstance(env.unwrapped, MujocoEnv)


def check_task(env: gym.Env) -> None:
    """A time limit of at most MAX_EPISODE_STEPS steps (evaluation runs whole episodes)."""
    env_id = env.spec.id if env.spec is not None else "?"
    frame_skip = getattr(env.unwrapped, "frame_skip", 1)
    if not isinstance(frame_skip, int) or frame_skip < 1:
        raise ConfigError(f"env.kwargs.frame_skip={frame_skip!r} must be an integer >= 1 (simulator steps per action)")
    limit = env.spec.max_episode_steps if env.spec is not None else None
    if limit is None or not 0 < limit <= MAX_EPISODE_STEPS:
        has = "no time limit" if limit is None else f"a time limit of {limit} steps"
        raise ConfigError(f"env.max_episode_steps: {env_id} has {has}; evaluation runs whole episodes, so set "
                          f"env.max_episode_steps between 1 and {MAX_EPISODE_STEPS}")


def kwargs_error(env_id: str, err: Exception) -> str:
    unexpected = unexpected_keyword(err)
    if unexpected:
        return f"env.kwargs: {env_id} does not accept {unexpected}"
    return f"env.kwargs: {env_id} fails with these keyword arguments: {describe(err)}"


_TRIED: set[tuple[str, str]] = set()  # (env id, sorted kwargs) that already reset and stepped


def try_kwargs(env_id: str, key: str, kwargs: dict) -> None:
    """User-given kwargs may only fail at reset or step (a string where a number belongs): build a
    throwaway copy, reset it and take one step, once per process and set of kwargs."""
    if (env_id, key) in _TRIED:
        return
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.Error as err:
        raise ConfigError(f"env.id={env_id!r}: {err}") from err
    except Exception as err:  # noqa: BLE001 - any failure of user kwargs is reported as one line
        raise ConfigError(kwargs_error(env_id, err)) from None
    try:
        check_spaces(env)
        env.reset(seed=0)
        space = env.action_space
        env.step(((space.low + space.high) / 2).astype(space.dtype) if isinstance(space, gym.spaces.Box) else space.start)
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001
        raise ConfigError(kwargs_error(env_id, err)) from None
    finally:
        env.close()
    _TRIED.add((env_id, key))


def check_spaces(env: gym.Env) -> None:
    """The collector and the learners need flat vector observations, and bounded Box or Discrete actions."""
    env_id = env.spec.id if env.spec is not None else "?"
    space = env.observation_space
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ConfigError(f"env.id={env_id!r} has the observation space {space}; DAgger here needs flat vector "
                          "(1-D Box) observations")
    actions_of(env.action_space, f"env.id={env_id!r}")


def make_vec_env(env_cfg: EnvConfig, num_envs: int | None = None) -> gym.vector.VectorEnv:
    """`env.num_envs` copies stepped in lock-step, resetting themselves at episode ends."""
    n = num_envs or env_cfg.num_envs
    return gym.vector.SyncVectorEnv([lambda: make_env(env_cfg) for _ in range(n)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
