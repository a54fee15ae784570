"""Shared helpers: running the entry points as a user would, and tiny experts trained on the spot."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PENDULUM_EXPERT = ROOT / "experts" / "sac" / "InvertedPendulum-v5.zip"

# Small, fast settings for the cheap env; tests add what they exercise.
QUICK = ["env=pendulum", "expert=sac", "eval.episodes=4", "policy.gradient_steps=300",
         "schedule.rollout_steps=200", "policy.hidden=[64,64]"]


def run_cli(*args: str, run_dir: Path | None = None, script: str = "run.py", timeout: int = 600,
            check: bool = True) -> subprocess.CompletedProcess:
    """`python run.py args...` in a subprocess, offline, outputs in `run_dir`."""
    cmd = [sys.executable, str(ROOT / script), *args]
    if run_dir is not None:
        cmd.append(f"hydra.run.dir={run_dir}")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="session")
def tiny_experts(tmp_path_factory) -> dict[str, Path]:
    """One barely trained checkpoint per algorithm on InvertedPendulum-v5 (PPO with VecNormalize,
    saved in rl-baselines3-zoo's layout)."""
    import gymnasium as gym
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from dagger.experts import algorithm_class

    folder = tmp_path_factory.mktemp("experts")
    paths = {}
    for algo in ("sac", "td3", "tqc"):
        model = algorithm_class(algo)("MlpPolicy", gym.make("InvertedPendulum-v5"), learning_starts=50, seed=0,
                                      policy_kwargs={"net_arch": [32, 32]}, device="cpu")
        model.learn(120)
        paths[algo] = folder / algo / "InvertedPendulum-v5.zip"
        paths[algo].parent.mkdir()
        model.save(paths[algo])
    venv = VecNormalize(DummyVecEnv([lambda: gym.make("InvertedPendulum-v5")]))
    model = algorithm_class("ppo")("MlpPolicy", venv, n_steps=64, batch_size=32, seed=0, device="cpu",
                                   policy_kwargs={"net_arch": [32, 32]})
    model.learn(128)
    run = folder / "ppo" / "InvertedPendulum-v5_1"
    (run / "InvertedPendulum-v5").mkdir(parents=True)
    model.save(run / "InvertedPendulum-v5.zip")
    venv.save(run / "InvertedPendulum-v5" / "vecnormalize.pkl")
    paths["ppo"] = folder / "ppo"  # the zoo's algorithm folder: the loader finds the run inside
    return paths
