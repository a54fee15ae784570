"""Rollout throughput against the raw simulator: python -m tests.benchmarks.rollout_throughput [env] [expert zip]

Prints env steps per second, on one core, of
  raw      gymnasium env.step with random actions, one env (the ceiling),
  collect  the DAgger collector (batched expert labels + learner, beta-mixing) for several vector sizes.
"""
from __future__ import annotations

import sys
import time

import numpy as np
import torch
from omegaconf import OmegaConf

from dagger.config import PROJECT_ROOT
from dagger.schemas import parse
from dagger.envs import EnvConfig, make_env
from dagger.expert.expert import ExpertConfig, load_expert
from dagger.policy.mlp import MLPLearner
from dagger.rollout import Collector
from dagger.schedules import BetaSchedule
from dagger.supervisors.beta_mixture import BetaMixture
from tests.conftest import policy_config

STEPS = 10_000


def raw_rate(env_cfg) -> float:
    env = make_env(env_cfg)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(env.action_space.low, env.action_space.high,
                                              (STEPS, *env.action_space.shape))
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return STEPS / (time.perf_counter() - start)


def collect_rate(env_cfg, expert, num_envs: int, beta: float) -> float:
    collector = Collector(env_cfg, num_envs, seed=0)
    venv = collector.venv
    learner = MLPLearner(policy_config("mlp"), venv.single_observation_space, venv.single_action_space)
    mixture = BetaMixture(BetaSchedule("constant", beta))
    mixture.begin(1, learner, None)  # beta_1 = beta
    rng = np.random.default_rng(0)
    collector.collect(mixture, expert.act, learner, 200, rng, 0)  # warm-up
    start = time.perf_counter()
    rollout = collector.collect(mixture, expert.act, learner, STEPS, rng, 1)
    return rollout.env_steps / (time.perf_counter() - start)


def main() -> None:
    torch.set_num_threads(1)
    name = sys.argv[1] if len(sys.argv) > 1 else "walker"
    env_cfg = parse(EnvConfig, OmegaConf.load(PROJECT_ROOT / "conf" / "env" / f"{name}.yaml"), "env.")
    path = sys.argv[2] if len(sys.argv) > 2 else str(PROJECT_ROOT / "experts" / "sac" / f"{env_cfg.id}.zip")
    expert = load_expert(ExpertConfig(algo="sac", path=path, deterministic=True), name, make_env(env_cfg))
    print(f"{env_cfg.id}, one thread, {STEPS} steps per figure")
    raw = raw_rate(env_cfg)
    print(f"raw env.step, random actions, 1 env: {raw:8.0f} steps/s")
    for num_envs in (1, 4, 8, 16):
        for beta in (1.0, 0.0):
            rate = collect_rate(env_cfg, expert, num_envs, beta)
            print(f"collect num_envs={num_envs:<2d} beta={beta:.0f}:   {rate:8.0f} steps/s  ({rate / raw:4.0%} of raw)")


if __name__ == "__main__":
    main()
