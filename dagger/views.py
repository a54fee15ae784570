"""What the student sees: the observation seam (teacher-student distillation).

The expert (the teacher) always reads the env's full observation, the state it was trained on. The learner (the
student) reads its own view of it, built per env and step from that observation:

    features   f(s_t): the view's own part, one class each (conf/obs/<name>.yaml names it by `_target_`)
                 full         s_t itself (the default: the student sees what the teacher sees)
                 no_velocity  the joint positions of s_t alone: the MuJoCo observation's leading nq - r entries
                              (qpos without the r excluded root coordinates), velocities and forces dropped
                 noisy        s_t + noise_std * spread * eps_t, eps_t ~ N(0, I) drawn afresh at every step
                 pixels       a camera frame of s_t, rendered by MuJoCo (`obs.size`, uint8 RGB), and with
                              `obs.proprio` s_t beside it
    history    o_t = [f(s_{t-K+1}), ..., f(s_t)] (`obs.history` = K); at an episode's start the first view fills
               the stack (gymnasium's FrameStackObservation with padding_type="reset")
    actions    o_t += [a_{t-1}] (`obs.actions`), the action executed at the previous step, whoever chose it
               (the robot knows what its motors did); zeros at an episode's start; a discrete choice as a
               one-hot row

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
* pixels renders the frame from the observation s_t itself, not from the running simulator: a private copy of the
  model is put in the pose s_t describes (qpos[r:] from its leading nq - r entries, the r coordinates the task
  leaves out of its observation, the root's x (and y), at their reset values) and drawn through the task's
  camera: its "track" camera where it has one (Hopper, Walker2d, HalfCheetah, Ant follow the body), else the
  free camera gymnasium renders with, shadows and reflections off (they cost most of a CPU frame). So a view is
  a function of the state, like every other view: a final state after an episode's end, an evaluation and a
  resumed run see the same frames, and the frame of an observation that carries the whole qpos (InvertedPendulum)
  is exactly the env's own rendering. The price: under a tracking camera the floor does not scroll with x.
  A row of D is uint8 where the student sees frames only; with the vector part (`obs.proprio`) or the previous
  action (`obs.actions`) beside them it is float32 (the frames' 0..255 stay exact), four times the memory.
"""
from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable
from typing import Annotated

import gymnasium as gym
import numpy as np
import torch
from pydantic import Field

from dagger.actions import actions_of
from dagger.config import ConfigError, describe
from dagger.envs import visited_states
from dagger.schemas import BOOLEAN, COUNT, Help, integer, number, OpenSchema, parse_targeted, target_class, Targeted
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
    dtype: type = np.float64  # what __call__ returns (pixels: uint8 frames)

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


class PixelsConfig(ViewConfig):
    size: Annotated[list[Annotated[int, integer(16, 512)]], Field(min_length=2, max_length=2),
                    Help("the frame's width, height in pixels")]
    proprio: Annotated[bool, BOOLEAN, Help("and the observation vector beside the frame")]


class Pixels(Features):
    """`obs=pixels`: the frame of s from the task's camera, (3, height, width) uint8 flattened, and s itself with
    `proprio` (see the module for how it is rendered)."""

    Config = PixelsConfig

    def __init__(self, env: gym.Env, size: tuple[int, int], proprio: bool):
        self.width, self.height = size
        self.frame_dim = 3 * self.width * self.height
        self.vector = env.observation_space.shape[0] if proprio else 0
        super().__init__(self.frame_dim + self.vector)
        self.dtype = np.float64 if proprio else np.uint8
        sim = env.unwrapped
        self.positions = position_columns(env, "obs=pixels")  # refuses a task without MuJoCo first
        self.model = sim.model
        self.init_qpos = np.array(sim.init_qpos)  # the left-out root coordinates stay at their reset values
        self.camera_id, self.camera_config = task_camera(env)
        self.local = threading.local()  # a renderer per thread: a GL context belongs to the thread that made it

    @classmethod
    def of(cls, cfg: PixelsConfig, env: gym.Env, expert: Act) -> Features:
        pixels = cls(env, tuple(cfg.size), cfg.proprio)
        pixels.check_renderer(env.spec.id if env.spec is not None else "?")
        return pixels

    def check_renderer(self, env_id: str) -> None:
        """One frame is rendered now: without a working renderer, one line naming MUJOCO_GL before any work."""
        try:
            self.frames(np.zeros((1, self.positions)))
        except Exception as err:  # noqa: BLE001 - no GL backend, no display: one line
            raise ConfigError(f"obs=pixels: MuJoCo cannot render {env_id} here with MUJOCO_GL="
                              f"{os.environ.get('MUJOCO_GL', '(unset)')} ({describe(err, 160)}); set MUJOCO_GL=egl "
                              "(headless, on the CPU where there is no GPU) or osmesa") from None

    def renderer(self):
        """This thread's offscreen viewer (gymnasium's, with the task's camera) and its copy of the simulator's data."""
        if getattr(self.local, "viewer", None) is None:
            os.environ.setdefault("MUJOCO_GL", "egl")
            import mujoco
            from gymnasium.envs.mujoco.mujoco_rendering import MujocoRenderer

            from dagger.video import making_gl_context, shadows_off  # (video imports schedules, which import this module)

            making_gl_context()

            data = mujoco.MjData(self.model)
            data.qpos[:] = self.init_qpos
            mujoco.mj_forward(self.model, data)
            renderer = MujocoRenderer(self.model, data, self.camera_config, self.width, self.height,
                                      camera_id=self.camera_id)
            viewer = renderer._get_viewer("rgb_array")
            shadows_off(viewer.scn)
            self.local.renderer, self.local.viewer, self.local.data = renderer, viewer, data
        return self.local.renderer, self.local.viewer, self.local.data

    def frames(self, states: np.ndarray) -> np.ndarray:
        """The frame of each state, (n, 3 * height * width) uint8 (RGB planes one after another)."""
        import mujoco

        renderer, viewer, data = self.renderer()
        viewer.make_context_current()  # another renderer (a video's) may have been current in this thread
        out = np.empty((len(states), self.frame_dim), dtype=np.uint8)
        fixed = len(self.init_qpos) - self.positions
        for i, state in enumerate(states):
            data.qpos[fixed:] = state[:self.positions]
            mujoco.mj_kinematics(self.model, data)
            mujoco.mj_comPos(self.model, data)  # the tracking cameras follow the subtree's centre of mass
            mujoco.mj_camlight(self.model, data)
            out[i] = renderer.render("rgb_array").transpose(2, 0, 1).reshape(-1)  # channels first, as convolutions read
        return out

    def __call__(self, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        frames = self.frames(states)
        return np.concatenate([frames, states], axis=1) if self.vector else frames


def task_camera(env: gym.Env) -> tuple[int, dict]:
    """The camera to render the task with: the model's "track" camera where it has one (it follows the body), else
    gymnasium's free camera with the task's own settings (distance, elevation, ...)."""
    from dagger.video import tracking_camera

    sim = env.unwrapped
    return tracking_camera(sim.model), dict(getattr(sim.mujoco_renderer, "default_cam_config", None) or {})


def position_columns(env: gym.Env, view: str = "obs=no_velocity") -> int:
    """nq - r: how many leading entries of the task's observation are joint positions (qpos[r:]), checked against
    the simulator after a reset; ConfigError where the observation does not start with qpos[r:] then qvel."""
    from gymnasium.envs.mujoco.mujoco_env import MujocoEnv

    env_id = env.spec.id if env.spec is not None else "?"
    sim = env.unwrapped
    if not isinstance(sim, MujocoEnv):
        raise ConfigError(f"{view}: {env_id} is not a MuJoCo task (the view reads the simulator's positions)")
    obs, _ = env.reset(seed=0)
    qpos, qvel = np.asarray(sim.data.qpos), np.asarray(sim.data.qvel)
    for skipped in range(len(qpos) + 1):
        k = len(qpos) - skipped
        if (len(obs) >= k + len(qvel) and np.allclose(obs[:k], qpos[skipped:])
                and np.allclose(obs[k:k + len(qvel)], qvel)):
            return k
    raise ConfigError(f"{view}: {env_id}'s observation does not start with the simulator's joint positions "
                      "and velocities (qpos, then qvel), so its positions cannot be told apart; use obs=full or obs=noisy")


def spread(env: gym.Env, expert: Act) -> np.ndarray:
    """Each observation dimension's standard deviation over SPREAD_STEPS steps of the expert (episodes restart)."""
    actions = actions_of(env.action_space)
    seen = visited_states(env, SPREAD_STEPS, lambda obs: actions.to_env(expert(obs[None]))[0], SPREAD_SEED)
    return np.std(seen.astype(np.float64), axis=0)


class StudentView:
    """The student's observations of a batch of envs: features, their last K stacked, and the previous action.

    Per env it keeps the stack and the last action; `restart` begins new episodes, `advance` moves on by one step,
    `current` is what the student sees now. Its state (stack, actions, noise generator) is part of a checkpoint."""

    def __init__(self, features: Features, history: int, actions: bool, act_dim: int, seed: int | list[int],
                 encode: Callable[[np.ndarray], np.ndarray] | None = None):
        self.features, self.history, self.with_actions, self.act_dim = features, history, actions, act_dim
        self.seed, self.encode = seed, encode  # encode: executed actions -> the act_dim numbers seen (None: as is)
        self.rng = np.random.default_rng(seed)
        self.stack = np.zeros((0, history, features.dim), dtype=features.dtype)
        self.last_action = np.zeros((0, act_dim))
        self.identity = type(features) in (Features, Full) and history == 1 and not actions  # sees the full state

    @property
    def dim(self) -> int:
        return self.history * self.features.dim + (self.act_dim if self.with_actions else 0)

    @property
    def dtype(self) -> type:
        """What a row of D stores: uint8 where the student sees frames alone, else float32."""
        return np.uint8 if self.features.dtype == np.uint8 and not self.with_actions else np.float32

    @property
    def space(self) -> gym.spaces.Box:
        """What the learner reads: a flat Box; for frames, a `FrameSpace` that says where they are in a row."""
        if isinstance(self.features, Pixels):
            return FrameSpace(self)
        return gym.spaces.Box(-np.inf, np.inf, (self.dim,), np.float64)

    def restart(self, states: np.ndarray, which: np.ndarray | None = None) -> None:
        """New episodes begin in the envs `which` (all, sized by `states`, when None) from `states`."""
        if which is None:
            self.stack = np.zeros((len(states), self.history, self.features.dim), dtype=self.features.dtype)
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
            self.last_action[:] = actions if self.encode is None else self.encode(actions)

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
        return StudentView(self.features, self.history, self.with_actions, self.act_dim, seed, self.encode)

    def state_dict(self) -> dict:
        return {"stack": torch.from_numpy(self.stack.copy()), "last_action": torch.from_numpy(self.last_action.copy()),
                "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.stack, self.last_action = state["stack"].numpy().copy(), state["last_action"].numpy().copy()
        self.rng.bit_generator.state = state["rng"]


class FrameSpace(gym.spaces.Box):
    """The student's rows when it sees frames: `history` views of [frame (3, height, width) flattened, vector
    (`obs.proprio`)] and then the previous action (`extra` numbers), as `StudentView.current` lays them out."""

    def __init__(self, view: StudentView):
        pixels: Pixels = view.features
        low, high = (0, 255) if view.dtype == np.uint8 else (-np.inf, np.inf)
        super().__init__(low, high, (view.dim,), view.dtype)
        self.frame = (3, pixels.height, pixels.width)
        self.history, self.vector = view.history, pixels.vector
        self.extra = view.dim - view.history * pixels.dim


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

    def seen_frame(self) -> np.ndarray | None:
        """The newest camera frame the student saw (height, width, 3), for the videos; None without frames."""
        pixels = self.view.features
        if not isinstance(pixels, Pixels):
            return None
        if self.last is None:  # before its first step
            return np.zeros((pixels.height, pixels.width, 3), np.uint8)
        return self.view.stack[0, -1, :pixels.frame_dim].astype(np.uint8).reshape(3, pixels.height, pixels.width
                                                                                  ).transpose(1, 2, 0)

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
    actions = actions_of(env.action_space)
    if actions.discrete:  # the previous choice as a one-hot row, not its index
        return StudentView(features, obs_cfg.history, obs_cfg.actions, actions.head, seed, actions.features)
    return StudentView(features, obs_cfg.history, obs_cfg.actions, actions.width, seed)
