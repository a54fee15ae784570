"""Vectorised environment interaction: rollouts driven by a supervisor (`dagger.supervisors`), and evaluation.

Per vector step the supervisor decides, for every env, the executed action, who is in control and
which states are labelled; the collector steps the envs, keeps the labelled states, and counts what
happened (switches of control, terminations while the learner drives).

The budget rule (`schedule.collection`):

    episodes (default, Algorithm 3.1: "sample T-step trajectories using pi_i"): iteration i resets its envs
        (seeds drawn from (seed, i)) and runs pi_i from there, each env starting a new episode from a reset
        whenever one ends, for exactly `rollout_steps` steps. Only as many envs run side by side as the budget
        has room for whole T-step episodes (`envs_in_parallel`: min(env.num_envs, max(1, rollout_steps // T))),
        so the budget is not split into short slices; an episode still running when the budget is spent is
        recorded as truncated there. Every state labelled in iteration i was reached by pi_i from a reset.
    carry_over (earlier versions): the env.num_envs episodes carry on across iterations, so iteration i labels
        a slice of episodes that earlier policies began.

`state_dict()` snapshots the simulators so a resumed run continues exactly in either rule; a task without
MuJoCo's state snapshot (classic control, Box2D) runs only under `episodes`, whose iterations start from a reset.
"""
from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Annotated

import mujoco
import gymnasium as gym
import numpy as np
import torch
from pydantic import Field

from dagger.config import ConfigError
from dagger.schemas import BOOLEAN, COUNT, Help, integer, Schema
from dagger.schedules import Collection
from dagger.actions import actions_of
from dagger.beside import Beside
from dagger.envs import SIMULATORS, EnvConfig, is_mujoco, make_vec_env
from dagger.schedules import every_or_last
from dagger.policy import Learner
from dagger.policy.carried import Carried, RecurrentLearner
from dagger.supervisors import Act, Supervisor
from dagger.video import VideoRecorder
from dagger.views import Student, StudentView

UNKNOWN, LEARNER, SUPERVISOR = -1, 0, 1  # who controlled each env at the previous step


@dataclass
class Rollout:
    obs: np.ndarray            # labelled states, (labels, obs_dim)
    labels: np.ndarray         # the expert's action in each of them, (labels, act_dim)
    env_steps: int             # environment steps taken (>= the budget on a final partial vector step)
    queries: int               # states shown to the expert (labels and gate checks)
    episode_returns: list[float]  # returns of the episodes that ended during the rollout
    counts: dict[str, float] = field(default_factory=dict)  # control and failure counts of this rollout
    transitions: dict[str, np.ndarray] | None = None  # every visited step (`dagger.data.Transitions` fields)


def envs_in_parallel(collection: Collection, num_envs: int, rollout_steps: int, episode_steps: int) -> int:
    """The envs that step side by side: all `num_envs` when episodes carry over; for whole episodes, only as many
    as the budget holds T-step episodes (at least one), so that 8 envs do not cut 1,000 steps into 125-step slices."""
    if collection == "carry_over":
        return num_envs
    return min(num_envs, max(1, rollout_steps // episode_steps))


def check_collection(env: gym.Env, collection: Collection) -> None:
    """Episodes that carry over are saved mid-way with MuJoCo's state snapshot, which only MuJoCo tasks have."""
    if collection == "carry_over" and not is_mujoco(env):
        raise ConfigError(f"schedule.collection=carry_over: {env.spec.id} is not a MuJoCo task, and a resumed run "
                          "could not continue its episodes (no state snapshot); use schedule.collection=episodes")


class Collector:
    """Vectorised environments that a supervisor drives, iteration after iteration, under the budget rule
    `collection` (see the module's docstring)."""

    def __init__(self, env_cfg: EnvConfig, num_envs: int, seed: int, collection: Collection = "episodes",
                 view: StudentView | None = None):
        self.venv = make_vec_env(env_cfg, num_envs)
        self.num_envs, self.seed, self.collection = num_envs, seed, collection
        self.state, _ = self.venv.reset(seed=seed)  # what the envs return: the expert reads it
        self.actions = actions_of(self.venv.single_action_space)
        self.view = view or StudentView.full(self.venv.single_observation_space.shape[0], self.actions.width,
                                             seed)  # what the learner sees
        self.view.restart(self.state)
        self.ep_return = np.zeros(num_envs)
        self.control = np.full(num_envs, UNKNOWN)
        self.supervised = np.zeros(num_envs, dtype=bool)  # the supervisor drove some step of this episode
        self.hidden = None  # a recurrent learner's hidden state per env (`Carried`); None: from the episodes' starts

    def collect(self, supervisor: Supervisor, expert: Act, learner: Learner, steps: int,
                rng: np.random.Generator, iteration: int) -> Rollout:
        """Take `steps` environment steps (the rollout budget) of iteration `iteration` with the supervisor
        deciding who acts."""
        if self.collection == "episodes":
            self.start_episodes(supervisor, iteration)
        carried = Carried(learner, self.hidden) if isinstance(learner, RecurrentLearner) else None
        obs_chunks, state_chunks, label_chunks, finished, learner_only, steps_seen = [], [], [], [], [], []
        counted = env_steps = queries = 0
        supervised = to_supervisor = to_learner = failures = 0
        while counted < steps:
            obs = self.view.current()  # the learner's side (learner, gates) reads the student's view ...
            if carried is not None:  # a recurrent learner steps on every observation, whoever acts
                carried.advance(obs)
            d = supervisor.decide(obs, carried or learner, expert, rng, state=self.state)  # ... the expert the state
            take = min(self.num_envs, steps - counted)  # a final partial vector step counts its first envs
            keep = d.labelled[:take]
            obs_chunks.append(obs[:take][keep])
            state_chunks.append(self.state[:take][keep])
            label_chunks.append(None if d.labels is None else d.labels[:take][keep])
            now = np.where(d.supervisor_acts, SUPERVISOR, LEARNER)
            supervised += int(d.supervisor_acts[:take].sum())
            to_supervisor += int(((self.control == LEARNER) & (now == SUPERVISOR))[:take].sum())
            to_learner += int(((self.control == SUPERVISOR) & (now == LEARNER))[:take].sum())
            self.control = now
            queries += d.queries
            self.supervised |= d.supervisor_acts
            before = self.state
            self.state, reward, terminated, truncated, info = self.venv.step(self.actions.to_env(d.actions))
            final = final_states(self.state, terminated | truncated, info)
            self.view.advance(final, d.actions)
            steps_seen.append(transitions(obs, before, d, self.view.current(), final, reward, terminated, truncated,
                                          take))
            self.view.restart(self.state, terminated | truncated)  # the envs that ended begin their next episode
            if carried is not None:
                carried.restart(terminated | truncated)
            failures += int((terminated & ~d.supervisor_acts)[:take].sum())
            self.ep_return += reward
            for i in np.flatnonzero(terminated | truncated):
                finished.append(float(self.ep_return[i]))
                if not self.supervised[i]:
                    learner_only.append(float(self.ep_return[i]))
                self.ep_return[i] = 0.0
                self.supervised[i] = False
                self.control[i] = UNKNOWN  # a new episode starts without a switch
                supervisor.episode_ended(int(i))
            counted += take
            env_steps += self.num_envs
        counts = control_counts(steps, supervised, to_supervisor, to_learner, failures, learner_only)
        self.hidden = carried.hidden if carried is not None else None
        seen = {k: np.concatenate([s[k] for s in steps_seen]) for k in steps_seen[0]}
        if self.collection == "episodes":
            mark_cut_episodes(seen)
        labels = label_later(state_chunks, label_chunks, expert)
        seen["label"][seen["labelled"]] = labels
        return Rollout(np.concatenate(obs_chunks), labels, env_steps, queries, finished, counts, seen)

    def start_episodes(self, supervisor: Supervisor, iteration: int) -> None:
        """Every env starts a new episode from a reset, seeded by (seed, iteration): the trajectories of pi_i."""
        seed = int(np.random.SeedSequence(self.seed, spawn_key=(iteration,)).generate_state(1)[0])
        self.state, _ = self.venv.reset(seed=seed)
        self.view.restart(self.state)
        self.hidden = None
        self.ep_return[:] = 0.0
        self.control[:] = UNKNOWN
        self.supervised[:] = False
        for env in range(self.num_envs):
            supervisor.episode_ended(env)

    def hand_over(self) -> None:
        """Another supervisor continues the running episodes: its first step is not a switch."""
        self.control[:] = UNKNOWN

    def state_dict(self) -> dict:
        """Everything needed to continue these episodes bit for bit: simulator, time limit, RNG.

        Arrays are stored as tensors so that the run's checkpoint loads weights-only (no code)."""
        envs = []
        for env in self.venv.envs:
            sim = env.unwrapped
            saved = {"elapsed": _time_limit(env)._elapsed_steps, "rng": sim.np_random.bit_generator.state}
            if is_mujoco(env):  # other tasks start every iteration from a reset (collection=episodes): no snapshot
                state = np.empty(mujoco.mj_stateSize(sim.model, mujoco.mjtState.mjSTATE_INTEGRATION))
                mujoco.mj_getState(sim.model, sim.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
                saved["sim"] = torch.from_numpy(state)
            envs.append(saved)
        return {"envs": envs, "obs": torch.from_numpy(self.state.copy()), "view": self.view.state_dict(),
                "ep_return": torch.from_numpy(self.ep_return.copy()), "control": torch.from_numpy(self.control.copy()),
                "supervised": torch.from_numpy(self.supervised.copy()),
                **({"hidden": self.hidden.clone()} if self.hidden is not None else {})}

    def load_state_dict(self, state: dict) -> None:
        for env, saved in zip(self.venv.envs, state["envs"], strict=True):
            sim = env.unwrapped
            if "sim" in saved:
                mujoco.mj_setState(sim.model, sim.data, saved["sim"].numpy(), mujoco.mjtState.mjSTATE_INTEGRATION)
                mujoco.mj_forward(sim.model, sim.data)
            _time_limit(env)._elapsed_steps = saved["elapsed"]
            sim.np_random.bit_generator.state = saved["rng"]
        self.state, self.ep_return = state["obs"].numpy().copy(), state["ep_return"].numpy().copy()
        if "view" in state:  # checkpoints from before student views saw the full state
            self.view.load_state_dict(state["view"])
        else:
            self.view.restart(self.state)
        self.control = state["control"].numpy().copy()
        if "supervised" in state:  # checkpoints from before learner-only episodes were counted lack it
            self.supervised = state["supervised"].numpy().copy()
        self.hidden = state["hidden"].clone() if "hidden" in state else None

    def close(self) -> None:
        self.venv.close()


def control_counts(steps: int, supervised: int, to_supervisor: int = 0, to_learner: int = 0, failures: int = 0,
                   learner_only: list[float] = ()) -> dict[str, float]:
    """A rollout's control and failure counts: the share of steps the supervisor drove, switches of control,
    terminations while the learner drove, and the episodes the learner drove alone."""
    return {"supervisor_control_fraction": supervised / steps, "switches_to_expert": to_supervisor,
            "switches_to_learner": to_learner, "learner_failures": failures,
            "learner_only_episodes": len(learner_only),
            "learner_only_return_mean": float(np.mean(learner_only)) if learner_only else float("nan")}


def label_later(state_chunks: list[np.ndarray], label_chunks: list[np.ndarray | None], expert: Act) -> np.ndarray:
    """The labels of a rollout's labelled states, in order: where a step's decision left them to later (None), the
    expert labels all such states (full observations) in one batch after the rollout, which costs far less than one
    call per step."""
    later = [i for i, labels in enumerate(label_chunks) if labels is None]
    if later:
        batch = expert(np.concatenate([state_chunks[i] for i in later]))
        for i, labels in zip(later, np.split(batch, np.cumsum([len(state_chunks[i]) for i in later])[:-1])):
            label_chunks[i] = labels
    return np.concatenate(label_chunks).astype(np.float32)


def mark_cut_episodes(seen: dict[str, np.ndarray]) -> None:
    """Each env's last recorded step, where its episode had not ended, ends the episode as truncated: the budget
    cut it there (the next iteration starts from a reset)."""
    for env in np.unique(seen["env"]):
        last = np.flatnonzero(seen["env"] == env)[-1]
        if not (seen["terminated"][last] or seen["truncated"][last]):
            seen["truncated"][last] = True


def final_states(next_state: np.ndarray, ended: np.ndarray, info: dict) -> np.ndarray:
    """s' of every env: where an episode ended, its final state (the env has already reset to the next episode's
    first)."""
    final = next_state.copy()
    for i in np.flatnonzero(ended):
        final[i] = info["final_obs"][i]
    return final


def transitions(obs: np.ndarray, state: np.ndarray, d, next_obs: np.ndarray, next_state: np.ndarray,
                reward: np.ndarray, terminated: np.ndarray, truncated: np.ndarray, take: int) -> dict[str, np.ndarray]:
    """The first `take` envs' steps as transitions: the student's view (obs, next_obs) and the full state beside it
    (state, next_state); where an episode ended, s' is its final state."""
    labelled = d.labelled[:take]
    labels = np.full(d.actions.shape, np.nan) if d.labels is None else d.labels  # left to later: set by collect
    stored = np.uint8 if obs.dtype == np.uint8 else np.float32  # a view of frames alone stays uint8
    return {"obs": obs[:take].astype(stored), "acts": np.asarray(d.actions[:take], dtype=np.float32),
            "reward": np.asarray(reward[:take], dtype=np.float64), "next_obs": next_obs[:take].astype(stored),
            "state": state[:take].astype(np.float32), "next_state": next_state[:take].astype(np.float32),
            "terminated": terminated[:take].copy(), "truncated": truncated[:take].copy(),
            "learner": ~d.supervisor_acts[:take],
            "label": np.where(labelled[:, None], np.asarray(labels[:take], dtype=np.float32), np.float32(np.nan)),
            "labelled": labelled.copy(), "env": np.arange(take, dtype=np.int32)}


def _time_limit(env):
    while not hasattr(env, "_elapsed_steps"):
        env = env.env
    return env


class EvalConfig(Schema):
    """The `eval` group: how often and on how many episodes the learner is evaluated, and its videos."""

    episodes: Annotated[int, SIMULATORS, Help("learner and expert are evaluated on the same seeded episodes")]
    every: Annotated[int, COUNT, Help("evaluate the learner every k iterations and at the last")]
    video: Annotated[Annotated[bool, BOOLEAN] | None,
                     Help("mp4s of the learner (and once of the expert); null: on for single runs, off in sweeps",
                          resumable=True)]
    video_every: Annotated[int, COUNT, Help("the learner's video every k iterations and at the last", resumable=True)]
    video_fps: Annotated[int, COUNT, Help("playback rate in real time: every ceil(task fps / video_fps)-th step",
                                          resumable=True)]
    video_size: Annotated[list[Annotated[int, integer(16, 4096)]], Field(min_length=2, max_length=2),
                          Help("width, height in pixels (MuJoCo tasks; the others draw at their own size)", resumable=True)]


class Evaluator:
    """Runs a policy alone for `episodes` whole episodes in parallel, on the same seeds every time.

    The learner is evaluated at iterations that are multiples of `every`, and at the last one. With a
    `video` recorder, `media` renders the first of those episodes (see `dagger.video`). A policy here reads the
    full observation; `student(act)` is the learner on its own view of it (`view`; every evaluation sees the same
    view noise)."""

    def __init__(self, env_cfg: EnvConfig, episodes: int, seed: int, every: int = 1,
                 video: VideoRecorder | None = None, view: StudentView | None = None, beside: bool = False):
        self.venv = make_vec_env(env_cfg, episodes)
        self.actions = actions_of(self.venv.single_action_space)
        self.episodes, self.seed, self.every, self.video, self.view = episodes, seed, every, video, view
        self.beside = beside  # `start` may fork (`dagger.beside`): the caller knows whether that is safe
        self.running: Beside | None = None

    def student(self, act: Act) -> Act:
        """The learner's `act` on its view of the full observations (`act` itself where it sees them all)."""
        if self.view is None or self.view.identity:
            return act
        return Student(self.view.fresh(self.seed), act)

    def due(self, iteration: int, last: int) -> bool:
        return every_or_last(iteration, self.every, last)

    def returns(self, act: Act) -> np.ndarray:
        """The return of each episode. `act` sees all the envs' observations at every step (a row's action does not
        depend on the others'), but only the envs whose episode is still running are stepped: an ended one keeps its
        last observation, and a policy that falls early costs no simulation after its fall."""
        obs, _ = self.venv.reset(seed=self.seed)
        total = np.zeros(self.episodes)
        running = np.ones(self.episodes, dtype=bool)
        while running.any():
            actions = self.actions.to_env(act(obs))
            for i in np.flatnonzero(running):
                obs[i], reward, terminated, truncated, _ = self.venv.envs[i].step(actions[i])
                total[i] += reward
                running[i] = not (terminated or truncated)
        return total

    def start(self, act: Act, beside: bool = True) -> Beside:
        """`returns(act)` begun in a forked copy of the process where this evaluator may fork and `beside` asks
        for it (the same returns, on the machine's other core while the caller goes on), else at once; the
        handle's `result()` gives them."""
        return self.begin(lambda: self.returns(act), "the evaluation", beside)

    def begin(self, measure: Callable[[], np.ndarray], what: str, beside: bool = True) -> Beside:
        """`measure()` (returns of this evaluator's episodes: `what`) begun as `start` begins an evaluation."""
        self.running = Beside(measure, fork=self.beside and beside, what=what)
        return self.running

    def media(self, act: Act, name: str, iteration: int | None = None, last: int | None = None) -> dict[str, Future]:
        """The video of `act` on the first evaluation episode, keyed `video/<name>`, when one is due at
        `iteration` (every `video_every` iterations and the last; once when `iteration` is None), else {}. It is
        rendered in the background from a copy of the policy: the value is a future of the mp4's path (or None)."""
        if self.video is None or not self.video.enabled or (iteration is not None and not self.video.due(iteration, last)):
            return {}
        return {f"video/{name}": self.video.record_later(act, name if iteration is None else f"{name}-iter{iteration:03d}")}

    def close(self, cancel: bool = False) -> None:
        """Close the envs and wait for the videos being rendered (`cancel`: drop them, and stop an evaluation
        running beside the loop)."""
        if cancel and self.running is not None:
            self.running.cancel()
        self.venv.close()
        if self.video is not None:
            self.video.close(cancel)
