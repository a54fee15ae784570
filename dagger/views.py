"""What the student sees: the observation seam (teacher-student distillation).

The expert (the teacher) always reads the env's full observation, the state it was trained on. The learner (the
student) reads its own view of it, built per env and step from that observation:

    features   f(s_t): the view's own part, one class each (conf/obs/<name>.yaml names it by `_target_`)
                 full         s_t itself (the default: the student sees what the teacher sees)
                 no_velocity  the joint positions of s_t alone: the MuJoCo observation's leading nq - r entries
                              (qpos without the r excluded root coordinates), velocities and forces dropped
                 noisy        s_t + noise_std * spread * eps_t, eps_t ~ N(0, I) drawn afresh at every step
    history    o_t = [f(s_{t-K+1}), ..., f(s_t)] (`obs.history` = K); at an episode's start the first view fills
               the stack (gymnasium's FrameStackObservation with padding_type="reset")
    actions    o_t += [a_{t-1}] (`obs.actions`), the action executed at the previous step, whoever chose it
               (the robot knows what its motors did); zeros at an episode's start

This is how DAgger distils a privileged teacher into a student with fewer sensors (rsl_rl / IsaacLab
distillation; Chen et al. 2019, "Learning by Cheating"; Kumar et al. 2021, "RMA"). D keeps the student's view as
the learning input and the full state beside it (`dagger.data.Transitions.state`).

Choices where the literature leaves one open:

* no_velocity derives its split from the model, not from per-task tables: the view is the first nq - r entries,
  where r is the number of leading qpos coordinates the task leaves out, found by matching a reset's observation
  against the simulator's qpos and qvel (gymnasium's locomotion tasks put qpos[r:] then qvel first). A task whose
  observation does not start that way is refused.
* noisy's spread is each dimension's standard deviation over the states of one 1,000-step expert episode from a
  fixed seed (a property of the task and expert, the same for every run seed). The noise of the rollouts is
  seeded from the run's seed; every evaluation sees the same noise (seeded from the evaluation seed).
"""
from __future__ import annotations

import copy
from typing import Annotated

import gymnasium as gym
import numpy as np
import torch

from dagger.actions import actions_of
from dagger.config import ConfigError
from dagger.schemas import BOOLEAN, COUNT, Help, number, OpenSchema, parse_targeted, target_class, Targeted
from dagger.supervisors import Act

SPREAD_STEPS = 1_000  # expert steps that measure the noisy view's per-dimension spread
SPREAD_SEED = 12_345  # a fixed seed: the spread is the task's and the expert's, not the run's


class ViewConfig(Targeted):
    """The keys of every `obs` option: history and previous actions compose with every view."""

    history: Annotated[int, COUNT, Help("K: the student sees its last K views, stacked")]
    actions: Annotated[bool, BOOLEAN, Help("and the previous executed action")]


class AnyViewConfig(ViewConfig, OpenSchema):
    """The `obs` group before its class is known (its other keys are checked by the class's `Config`)."""


class Features:
    """f(s): the view's own part of one observation, for a batch of full observations, `dim` wide. Each subclass
    sets its `Config` and builds itself for a task in `of` (the task's throwaway env, and the expert)."""

    Config = ViewConfig

    def __init__(self, dim: int):
        self.dim = int(dim)

    @classmethod
    def of(cls, cfg: ViewConfig, env: gym.Env, expert: Act) -> Features:
        return cls(env.observation_space.shape[0])

    def __call__(self, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return states


class Full(Features):
    """`obs=full`: the student sees the full observation, as the expert does."""


class NoVelocity(Features):
    """`obs=no_velocity`: the joint positions only, the observation's leading nq - r entries (see the module)."""

    @classmethod
    def of(cls, cfg: ViewConfig, env: gym.Env, expert: Act) -> Features:
        return cls(position_columns(env))

    def __call__(self, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return states[:, :self.dim]


class NoisyConfig(ViewConfig):
    noise_std: Annotated[float, number(low=0), Help("the noise's std, in units of each dimension's spread")]


class Noisy(Features):
    """`obs=noisy`: s + noise_std * spread * eps, eps ~ N(0, I) per step (see the module for the spread)."""

    Config = NoisyConfig

    def __init__(self, scale: np.ndarray):
        super().__init__(len(scale))
        self.scale = scale

    @classmethod
    def of(cls, cfg: NoisyConfig, env: gym.Env, expert: Act) -> Features:
        return cls(cfg.noise_std * spread(env, expert))

    def __call__(self, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return states + self.scale * rng.standard_normal(states.shape)


def position_columns(env: gym.Env) -> int:
    """nq - r: how many leading entries of the task's observation are joint positions (qpos[r:]), checked against
    the simulator after a reset; ConfigError where the observation does not start with qpos[r:] then qvel."""
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    env_id = env.spec.id if env.spec is not None else "?"
    sim = env.unwrapped
    if not isinstance(sim, MujocoEnv):
        raise ConfigError(f"obs=no_velocity: {env_id} is not a MuJoCo task (the view reads the simulator's positions)")
    obs, _ = env.reset(seed=0)
    qpos, qvel = np.asarray(sim.data.qpos), np.asarray(sim.data.qvel)
    for skipped in range(len(qpos) + 1):
        k = len(qpos) - skipped
        if (len(obs) >= k + len(qvel) and np.allclose(obs[:k], qpos[skipped:])
                and np.allclose(obs[k:k + len(qvel)], qvel)):
            return k
    raise ConfigError(f"obs=no_velocity: {env_id}'s observation does not start with the simulator's joint positions "
                      "and velocities (qpos, then qvel), so its positions cannot be told apart; use obs=full or obs=noisy")


def spread(env: gym.Env, expert: Act) -> np.ndarray:
    """Each observation dimension's standard deviation over SPREAD_STEPS steps of the expert (episodes restart)."""
    obs, _ = env.reset(seed=SPREAD_SEED)
    seen, actions = [], actions_of(env.action_space)
    for _ in range(SPREAD_STEPS):
        seen.append(obs)
        obs, _, terminated, truncated, _ = env.step(actions.to_env(expert(obs[None]))[0])
        if terminated or truncated:
            obs, _ = env.reset()
    return np.std(np.asarray(seen, dtype=np.float64), axis=0)


class StudentView:
    """The student's observations of a batch of envs: features, their last K stacked, and the previous action.

    Per env it keeps the stack and the last action; `restart` begins new episodes, `advance` moves on by one step,
    `current` is what the student sees now. Its state (stack, actions, noise generator) is part of a checkpoint."""

    def __init__(self, features: Features, history: int, actions: bool, act_dim: int, seed: int | list[int]):
        self.features, self.history, self.with_actions, self.act_dim = features, history, actions, act_dim
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.stack = np.zeros((0, history, features.dim))
        self.last_action = np.zeros((0, act_dim))
        self.identity = type(features) in (Features, Full) and history == 1 and not actions  # sees the full state

    @property
    def dim(self) -> int:
        return self.history * self.features.dim + (self.act_dim if self.with_actions else 0)

    @property
    def space(self) -> gym.spaces.Box:
        return gym.spaces.Box(-np.inf, np.inf, (self.dim,), np.float64)

    def restart(self, states: np.ndarray, which: np.ndarray | None = None) -> None:
        """New episodes begin in the envs `which` (all, sized by `states`, when None) from `states`."""
        if which is None:
            self.stack = np.zeros((len(states), self.history, self.features.dim))
            self.last_action = np.zeros((len(states), self.act_dim))
            which = np.ones(len(states), dtype=bool)
        if not which.any():
            return
        self.stack[which] = self.features(states[which], self.rng)[:, None, :]
        self.last_action[which] = 0.0

    def advance(self, states: np.ndarray, actions: np.ndarray) -> None:
        """Every env took `actions` and now observes `states`."""
        if self.history > 1:
            self.stack[:, :-1] = self.stack[:, 1:]
        self.stack[:, -1] = self.features(states, self.rng)
        if self.with_actions:
            self.last_action[:] = actions

    def current(self) -> np.ndarray:
        """What the student sees now, (envs, dim)."""
        if self.history == 1 and not self.with_actions:
            return self.stack[:, 0].copy()
        views = self.stack.reshape(len(self.stack), -1)  # a view of the stack: copied below, as advance changes it
        return np.concatenate([views, self.last_action], axis=1) if self.with_actions else views.copy()

    @classmethod
    def full(cls, obs_dim: int, act_dim: int, seed: int | list[int] = 0) -> StudentView:
        """The student sees the full observation (`obs=full`, no history, no actions)."""
        return cls(Full(obs_dim), 1, False, act_dim, seed)

    def fresh(self, seed: int | list[int]) -> StudentView:
        """The same view, with no envs yet and its noise seeded by `seed` (an evaluation's own view)."""
        return StudentView(self.features, self.history, self.with_actions, self.act_dim, seed)

    def state_dict(self) -> dict:
        return {"stack": torch.from_numpy(self.stack.copy()), "last_action": torch.from_numpy(self.last_action.copy()),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.stack, self.last_action = state["stack"].numpy().copy(), state["last_action"].numpy().copy()
        self.rng.bit_generator.state = state["rng"]


class Student:
    """A student policy on full observations: its view of them, then `act` on the view; for evaluation and videos,
    where every env starts its episode at the first call and no env restarts within one use (a fresh copy each)."""

    def __init__(self, view: StudentView, act: Act):
        self.view, self.act = view, act
        self.last: np.ndarray | None = None

    def __call__(self, states: np.ndarray) -> np.ndarray:
        if self.last is None:
            self.view.restart(states)
        else:
            self.view.advance(states, self.last)
        self.last = np.asarray(self.act(self.view.current()))
        return self.last

    def __deepcopy__(self, memo) -> Student:  # a video's frozen copy: the policy and a view of its own
        return Student(self.view.fresh(self.view.seed), copy.deepcopy(self.act, memo))


def view_class(target) -> type[Features]:
    return target_class("obs._target_", target, lambda cls: issubclass(cls, Features), "a view class (dagger.views)")


def view_config(obs_cfg) -> ViewConfig:
    """The `obs` group checked against its class's schema (`_target_` names it)."""
    return parse_targeted(obs_cfg, view_class, "obs.")


def build_view(obs_cfg: ViewConfig, env: gym.Env, expert: Act, seed: int | list[int]) -> StudentView:
    """The student's view the `obs` group describes, for the task `env` (a throwaway copy: it is reset and stepped)."""
    if not isinstance(obs_cfg, ViewConfig) or isinstance(obs_cfg, AnyViewConfig):
        obs_cfg = view_config(obs_cfg)
    features = view_class(obs_cfg.target).of(obs_cfg, env, expert)
    return StudentView(features, obs_cfg.history, obs_cfg.actions, actions_of(env.action_space).width, seed)
