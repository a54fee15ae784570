"""Building gymnasium MuJoCo environments from the `env` config group, and the checks that they can run here."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import gymnasium as gym
import numpy as np

from pydantic import field_validator
from pydantic_core import PydanticCustomError

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


@dataclass(frozen=True)
class ActionScale:
    """The action bounds as a scale: u = (a - mid) / half maps [low, high] to [-1, 1], the units the learner is
    fitted in and the gates measure action gaps in. `mid` and `half` are float64 (exact for float32 bounds)."""

    mid: np.ndarray
    half: np.ndarray

    @classmethod
    def of(cls, space: gym.spaces.Box) -> ActionScale:
        low, high = np.asarray(space.low, np.float64), np.asarray(space.high, np.float64)
        return cls((high + low) / 2, (high - low) / 2)

    def scaled(self, acts: np.ndarray) -> np.ndarray:
        return (np.asarray(acts, np.float64) - self.mid) / self.half


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


def check_task(env: gym.Env) -> None:
    """A MuJoCo task (a resumed run continues its episodes from MuJoCo's state snapshot) with a time limit of at
    most MAX_EPISODE_STEPS steps (evaluation runs whole episodes)."""
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    env_id = env.spec.id if env.spec is not None else "?"
    if not isinstance(env.unwrapped, MujocoEnv):
        raise ConfigError(f"env.id={env_id!r} is not a MuJoCo task; a run checkpoints its episodes with MuJoCo's "
                          "state snapshot, so only MuJoCo tasks (Walker2d, Hopper, HalfCheetah, Ant, Humanoid, "
                          "InvertedPendulum, ...) can run here")
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
        low, high = env.action_space.low, env.action_space.high
        env.step(((low + high) / 2).astype(env.action_space.dtype))
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001
        raise ConfigError(kwargs_error(env_id, err)) from None
    finally:
        env.close()
    _TRIED.add((env_id, key))


def check_spaces(env: gym.Env) -> None:
    """The collector and the MLP learner need flat continuous observations and bounded continuous actions."""
    env_id = env.spec.id if env.spec is not None else "?"
    for kind, space in (("observation", env.observation_space), ("action", env.action_space)):
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ConfigError(f"env.id={env_id!r} has the {kind} space {space}; DAgger here needs flat continuous "
                              "(1-D Box) observations and actions, e.g. a MuJoCo task")
    if not (np.all(np.isfinite(env.action_space.low)) and np.all(np.isfinite(env.action_space.high))):
        raise ConfigError(f"env.id={env_id!r} has an unbounded action space {env.action_space}; "
                          "the learner scales actions to the space's bounds")


def make_vec_env(env_cfg: EnvConfig, num_envs: int | None = None) -> gym.vector.VectorEnv:
    """`env.num_envs` copies stepped in lock-step, resetting themselves at episode ends."""
    n = num_envs or env_cfg.num_envs
    return gym.vector.SyncVectorEnv([lambda: make_env(env_cfg) for _ in range(n)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
