"""Vectorised environment interaction: beta-mixture rollouts labelled by the expert, and evaluation.

Per vector step there is one batched expert call (it labels every visited state) and, when the
learner may act, one batched learner call; which of the two acts is drawn per env and per step.
Rollout episodes carry on across iterations, so a small per-iteration budget still reaches states
late in an episode; `state_dict()` snapshots the simulators so a resumed run continues exactly.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import mujoco
import numpy as np
import torch
from omegaconf import DictConfig

from dagger.envs import make_vec_env

Act = Callable[[np.ndarray], np.ndarray]


@dataclass
class Rollout:
    obs: np.ndarray            # states visited, (steps, obs_dim)
    labels: np.ndarray         # the expert's action in each of them, (steps, act_dim)
    env_steps: int             # environment steps taken (>= steps on a final partial vector step)
    episode_returns: list[float]  # returns of the mixture's episodes that ended during the rollout
    expert_fraction: float     # share of steps on which the expert acted


class Collector:
    """Persistent vectorised environments that the beta-mixture drives, iteration after iteration."""

    def __init__(self, env_cfg: DictConfig, num_envs: int, seed: int):
        self.venv = make_vec_env(env_cfg, num_envs)
        self.num_envs = num_envs
        self.obs, _ = self.venv.reset(seed=seed)
        self.ep_return = np.zeros(num_envs)

    def collect(self, expert: Act, learner: Act, beta: float, steps: int, rng: np.random.Generator) -> Rollout:
        """Roll out pi = beta * expert + (1 - beta) * learner for `steps` labelled states."""
        obs_chunks, label_chunks, finished = [], [], []
        collected = env_steps = expert_steps = 0
        while collected < steps:
            labels = expert(self.obs)
            expert_acts = rng.random(self.num_envs) < beta
            actions = labels if expert_acts.all() else np.where(expert_acts[:, None], labels, learner(self.obs))
            take = min(self.num_envs, steps - collected)
            obs_chunks.append(self.obs[:take].copy())
            label_chunks.append(labels[:take])
            expert_steps += int(expert_acts[:take].sum())
            self.obs, reward, terminated, truncated, _ = self.venv.step(actions)
            self.ep_return += reward
            for i in np.flatnonzero(terminated | truncated):
                finished.append(float(self.ep_return[i]))
                self.ep_return[i] = 0.0
            collected += take
            env_steps += self.num_envs
        return Rollout(np.concatenate(obs_chunks), np.concatenate(label_chunks).astype(np.float32), env_steps,
                       finished, expert_steps / steps)

    def state_dict(self) -> dict:
        """Everything needed to continue these episodes bit for bit: simulator, time limit, RNG.

        Arrays are stored as tensors so that the run's checkpoint loads weights-only (no code)."""
        envs = []
        for env in self.venv.envs:
            sim = env.unwrapped
            state = np.empty(mujoco.mj_stateSize(sim.model, mujoco.mjtState.mjSTATE_INTEGRATION))
            mujoco.mj_getState(sim.model, sim.data, state, mujoco.mjtState.mjSTATE_INTEGRATION)
            envs.append({"sim": torch.from_numpy(state), "elapsed": _time_limit(env)._elapsed_steps,
                         "rng": sim.np_random.bit_generator.state})
        return {"envs": envs, "obs": torch.from_numpy(self.obs.copy()), "ep_return": torch.from_numpy(self.ep_return.copy())}

    def load_state_dict(self, state: dict) -> None:
        for env, saved in zip(self.venv.envs, state["envs"], strict=True):
            sim = env.unwrapped
            mujoco.mj_setState(sim.model, sim.data, saved["sim"].numpy(), mujoco.mjtState.mjSTATE_INTEGRATION)
            mujoco.mj_forward(sim.model, sim.data)
            _time_limit(env)._elapsed_steps = saved["elapsed"]
            sim.np_random.bit_generator.state = saved["rng"]
        self.obs, self.ep_return = state["obs"].numpy().copy(), state["ep_return"].numpy().copy()

    def close(self) -> None:
        self.venv.close()


def _time_limit(env):
    while not hasattr(env, "_elapsed_steps"):
        env = env.env
    return env


class Evaluator:
    """Runs a policy alone for `episodes` whole episodes in parallel, on the same seeds every time."""

    def __init__(self, env_cfg: DictConfig, episodes: int, seed: int):
        self.venv = make_vec_env(env_cfg, episodes)
        self.episodes, self.seed = episodes, seed

    def returns(self, act: Act) -> np.ndarray:
        obs, _ = self.venv.reset(seed=self.seed)
        total = np.zeros(self.episodes)
        running = np.ones(self.episodes, dtype=bool)
        while running.any():
            obs, reward, terminated, truncated, _ = self.venv.step(act(obs))
            total += reward * running
            running &= ~(terminated | truncated)
        return total

    def close(self) -> None:
        self.venv.close()
