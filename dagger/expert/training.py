"""Training and checkpointing Stable-Baselines3 experts (used by experts/train.py).

Work files (full checkpoint, replay buffer, the models with the best periodic evaluations) live in
`work_dir`, which is never committed. When training is done the best candidate is shipped (publishing).
"""
from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.logger import HumanOutputFormat, Logger
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.noise import NormalActionNoise
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecNormalize

from pydantic import model_validator
from pydantic_core import PydanticCustomError

from dagger.config import ConfigError, describe, unexpected_keyword
from dagger.schemas import BOOLEAN, COUNT, NUMBER, SEED, TEXT, Schema
from dagger.envs import EnvConfig, make_env
from dagger.expert.expert import ExpertConfig, ExpertTrainingConfig
from dagger.expert.layout import algorithm_class, check_acts_in
from dagger.expert.publishing import check_ship_dir, publish, training_record
from dagger.expert.work_dir import TrainingProgress, candidate_dir
from dagger.files import atomic_write


class TrainedExpertConfig(ExpertConfig):
    train: ExpertTrainingConfig | None = None  # required here, for the SB3 algorithms

    @model_validator(mode="after")
    def sb3_only(self) -> TrainedExpertConfig:
        if self.algo == "python":
            raise PydanticCustomError("check", "is your own callable; experts/train.py trains SB3 experts",
                                      {"at": "algo", "value": "python"})
        if self.train is None:
            raise PydanticCustomError("check", "missing (conf/expert/<algo>.yaml sets it)", {"at": "train", "value": None})
        return self


class TrainConfig(Schema):
    """conf/train.yaml: the task, the expert to train, and the training, candidates and shipping budgets."""

    env: EnvConfig
    expert: TrainedExpertConfig
    seed: Annotated[int, SEED]
    torch_threads: Annotated[int, COUNT]
    checkpoint_every: Annotated[int, COUNT]
    eval_every: Annotated[int, COUNT]
    eval_episodes: Annotated[int, COUNT]
    keep_candidates: Annotated[int, COUNT]
    publish_episodes: Annotated[int, COUNT]
    publish_only: Annotated[bool, BOOLEAN]
    floors: dict[str, Annotated[float, NUMBER]]
    ship_dir: Annotated[str, TEXT]
    work_dir: Annotated[str, TEXT]


def make_train_env(cfg: TrainConfig, stats: Path | None = None, training: bool = True) -> VecEnv:
    venv = DummyVecEnv([lambda: Monitor(make_env(cfg.env))])
    if not cfg.expert.train.normalize:
        return venv
    if stats is not None and stats.is_file():
        venv = VecNormalize.load(str(stats), venv)
    else:
        venv = VecNormalize(venv)
    venv.training = training
    venv.norm_reward = venv.norm_reward and training
    return venv


def build_model(cfg: TrainConfig, venv: VecEnv) -> BaseAlgorithm:
    params = dict(cfg.expert.train.hyperparams)
    noise_std = params.pop("action_noise_std", None)
    if noise_std:
        n = venv.action_space.shape[0]
        params["action_noise"] = NormalActionNoise(np.zeros(n), noise_std * np.ones(n))
    return algorithm_class(cfg.expert.algo)("MlpPolicy", venv, seed=cfg.seed, device="cpu", **params)


def console_logger(model: BaseAlgorithm) -> Logger:
    """SB3's logger for `learn`: its table on stdout when the model is verbose, and no folder (left to itself, SB3
    makes a /tmp/SB3-<date> folder at every `learn`)."""
    return Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)] if model.verbose else [])


class CheckpointAndEvaluate(BaseCallback):
    """Periodic resumable checkpoints, deterministic evaluations, and the best models so far."""

    def __init__(self, cfg: TrainConfig, work: Path, progress: TrainingProgress):
        super().__init__()
        self.cfg, self.work, self.progress = cfg, work, progress
        self.eval_env = make_train_env(cfg, training=False)
        self.started = time.time()
        self.sitting_start_steps = 0

    def _on_training_start(self) -> None:
        self.sitting_start_steps = self.num_timesteps
        self.base_wall = self.progress.state["wall_time_s"]

    def _on_step(self) -> bool:
        if self.num_timesteps % self.cfg.eval_every == 0:
            self.evaluate()
        if self.num_timesteps % self.cfg.checkpoint_every == 0:
            self.checkpoint()
        return True

    def evaluate(self) -> None:
        if isinstance(self.eval_env, VecNormalize):
            self.eval_env.obs_rms = self.training_env.obs_rms.copy()
        mean, std = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.cfg.eval_episodes,
                                    deterministic=True)
        self.keep_if_among_best(float(mean))
        elapsed = time.time() - self.started
        sps = (self.num_timesteps - self.sitting_start_steps) / max(elapsed, 1e-9)
        print(f"[{self.cfg.expert.algo} {self.cfg.env.id}] steps {self.num_timesteps:>8d}  "
              f"eval {mean:8.1f} ± {std:6.1f}  best {self.progress.state['candidates'][0]['return']:8.1f}  "
              f"{sps:5.0f} steps/s", flush=True)
        with open(self.work / "evaluations.csv", "a") as f:
            f.write(f"{self.num_timesteps},{mean:.2f},{std:.2f},{time.time():.0f}\n")
        self.progress.state["wall_time_s"] = self.base_wall + elapsed
        self.progress.save()

    def keep_if_among_best(self, mean: float) -> None:
        """Keep this model as a candidate if its evaluation is among the `keep_candidates` best."""
        candidates = self.progress.state["candidates"] + [{"timesteps": self.num_timesteps, "return": mean}]
        candidates.sort(key=lambda c: -c["return"])
        kept, dropped = candidates[:self.cfg.keep_candidates], candidates[self.cfg.keep_candidates:]
        if any(c["timesteps"] == self.num_timesteps for c in kept):
            save_acting_model(self.model, candidate_dir(self.work, self.num_timesteps))
        for c in dropped:
            shutil.rmtree(candidate_dir(self.work, c["timesteps"]), ignore_errors=True)
        self.progress.state["candidates"] = kept

    def checkpoint(self) -> None:
        atomic_write(self.work / "checkpoint.zip", self.model.save)
        if hasattr(self.model, "replay_buffer"):
            atomic_write(self.work / "replay_buffer.pkl", self.model.save_replay_buffer)
        if isinstance(self.training_env, VecNormalize):
            atomic_write(self.work / "vecnormalize.pkl", self.training_env.save)
        self.progress.state["wall_time_s"] = self.base_wall + time.time() - self.started
        self.progress.save()


def save_acting_model(model: BaseAlgorithm, folder: Path) -> None:
    """What acting needs, in the rl-baselines3-zoo layout: `<EnvId>.zip` (+ `<EnvId>/vecnormalize.pkl`)."""
    env_id = model.get_env().envs[0].spec.id if hasattr(model.get_env(), "envs") else None
    env_id = env_id or model.get_env().get_attr("spec")[0].id
    folder.mkdir(parents=True, exist_ok=True)
    # Replay buffers are never part of the .zip; optimiser state is kept so SB3 loads it unchanged.
    atomic_write(folder / f"{env_id}.zip", model.save)
    venv = model.get_env()
    if isinstance(venv, VecNormalize):
        (folder / env_id).mkdir(exist_ok=True)
        atomic_write(folder / env_id / "vecnormalize.pkl", venv.save)


def train(cfg: TrainConfig) -> None:
    """Train (or resume) until `expert.train.timesteps`, then ship the best candidate.

    Everything that can be refused (the config, env kwargs, SB3 hyperparameters) is checked before
    anything is written to `work_dir`.
    """
    import torch

    torch.set_num_threads(cfg.torch_threads)
    work = Path(cfg.work_dir)
    check_ship_dir(Path(cfg.ship_dir))
    check_work_dir_trusted(cfg, work)
    venv = make_train_env(cfg, stats=work / "vecnormalize.pkl")
    check_acts_in(cfg.expert.algo, venv.action_space, cfg.env.id)
    checkpoint = work / "checkpoint.zip"
    if checkpoint.is_file():
        model = algorithm_class(cfg.expert.algo).load(checkpoint, env=venv, device="cpu")
        if (work / "replay_buffer.pkl").is_file():
            model.load_replay_buffer(work / "replay_buffer.pkl")
        print(f"resuming {checkpoint} at {model.num_timesteps} steps", flush=True)
    else:
        try:
            model = build_model(cfg, venv)
        except (TypeError, ValueError, AssertionError) as err:
            raise ConfigError(hyperparams_error(cfg.expert.algo, err)) from None
    work.mkdir(parents=True, exist_ok=True)
    progress = TrainingProgress(work / "progress.json")
    progress.state["training"] = training_record(cfg)  # publish_only runs read how it was trained here
    progress.save()
    remaining = cfg.expert.train.timesteps - model.num_timesteps
    if remaining > 0:
        callback = CheckpointAndEvaluate(cfg, work, progress)
        model.set_logger(console_logger(model))
        model.learn(total_timesteps=remaining, callback=callback, reset_num_timesteps=False)
        callback.checkpoint()
    publish(cfg)


RESUME_FILES = ("checkpoint.zip", "replay_buffer.pkl", "vecnormalize.pkl")  # SB3's pickles: loading runs code


def check_work_dir_trusted(cfg: TrainConfig, work: Path) -> None:
    """Resuming training unpickles the work folder's SB3 files, which can run code: only with expert.trust=true.
    Its progress.json must be readable too, before anything is written."""
    TrainingProgress(work / "progress.json")
    found = [name for name in RESUME_FILES if (work / name).exists()]
    if found and not cfg.expert.trust:
        raise ConfigError(f"work_dir={work} holds {', '.join(found)} from an earlier sitting; resuming unpickles "
                          "them (SB3's format can run code), so it needs expert.trust=true: set it only if this "
                          "machine wrote them, or choose a new work_dir")


def hyperparams_error(algo: str, err: Exception) -> str:
    """SB3's refusal of `expert.train.hyperparams`, as one line naming the key."""
    unexpected = unexpected_keyword(err)
    if unexpected:
        return f"expert.train.hyperparams: {algo.upper()} does not accept {unexpected}"
    return f"expert.train.hyperparams: {algo.upper()} refuses them: {describe(err)}"
