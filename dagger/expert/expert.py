"""Stable-Baselines3 checkpoints as batched experts: `act(obs) -> actions` for many states at once.

`load_expert` finds the checkpoint (layout), reads the model `.zip` (safe_zip) and its observation
statistics (statistics) without running code the files carry, unless `expert.trust=true`: then it
loads with SB3's own `cls.load` and `pickle.load` instead, for files you trust.
"""
from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from typing import Annotated, Any

import gymnasium as gym
import numpy as np
import torch
from pydantic import model_validator
from pydantic_core import PydanticCustomError
from stable_baselines3.common.base_class import BaseAlgorithm

from dagger.config import ConfigError, first_line, resolve_path
from dagger.schemas import BOOLEAN, COUNT, TEXT, Help, Schema
from dagger.expert.layout import (Algorithm, algorithm_class, check_acts_in, check_hub_env_kwargs, find_checkpoint,
                                  train_command)
from dagger.expert.safe_zip import check_algorithm, check_shapes, read_model_data, safe_custom_objects
from dagger.expert.statistics import ObsNormalizer, check_statistics_present, read_statistics


class ExpertTrainingConfig(Schema):
    """`expert.train`: how experts/train.py trains this kind of expert."""

    timesteps: Annotated[int, COUNT, Help("environment steps of training")]
    normalize: Annotated[bool, BOOLEAN, Help("VecNormalize on observations (saved as vecnormalize.pkl)")]
    hyperparams: Annotated[dict[str, Any], Help("rl-baselines3-zoo hyperparameters")]


class ExpertConfig(Schema):
    """The `expert` group: which checkpoint (or Python callable, `expert=python`) labels the states, and how."""

    algo: Annotated[Algorithm, Help("the SB3 algorithm of the checkpoint, or python: a callable of your own")]
    path: Annotated[Annotated[str, TEXT] | None, Help(
        "the checkpoint: a zip, a folder, a Hugging Face hub folder, or the rl-baselines3-zoo layout")] = None
    target: Annotated[Annotated[str, TEXT] | None, Help(
        "expert=python: package.module:name, a batched callable obs -> action (runs your code)")] = None
    kwargs: Annotated[dict[str, Any], Help("expert=python: keyword arguments of the class that target names")] = {}
    deterministic: Annotated[bool, BOOLEAN, Help("label with the expert's mean action")]
    trust: Annotated[bool, BOOLEAN, Help(
        "load with SB3's own unpickling (can run code in the file); only for files you trust")] = False
    train: Annotated[ExpertTrainingConfig | None, Help("how experts/train.py trains it (expert.train.*)")] = None

    @model_validator(mode="after")
    def one_source(self) -> ExpertConfig:
        """A checkpoint (`path`) for the SB3 algorithms, a callable (`target`) for expert=python."""
        python = self.algo == "python"
        if python and self.target is None:
            raise PydanticCustomError("check", "expert=python needs expert.target=package.module:name",
                                      {"at": "target", "value": None})
        if not python and self.path is None:
            raise PydanticCustomError("check", "names no checkpoint", {"at": "path", "value": None})
        if not python and (self.target is not None or self.kwargs):
            raise PydanticCustomError("check", "is for expert=python; expert={algo} reads expert.path",
                                      {"at": "target" if self.target is not None else "kwargs",
                                       "value": self.target or self.kwargs, "algo": self.algo})
        return self


@dataclass
class Expert:
    """A trained SB3 policy that labels batches of states.

    `files` records what was loaded: `{"algo", "model", "model_sha256", "stats", "stats_sha256"}`.
    """

    model: BaseAlgorithm
    deterministic: bool = True
    obs_normalizer: ObsNormalizer | None = None  # VecNormalize statistics applied to observations
    files: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.model.policy.set_training_mode(False)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions for a batch of raw observations, shape (n, obs_dim) -> (n, act_dim).

        The same actions as `model.predict` (same float32 input, network, unscaling and clipping),
        without its per-call checks and preprocessing, which cost as much as the network on small batches."""
        if self.obs_normalizer is not None:
            obs = self.obs_normalizer.normalize_obs(obs)
        policy = self.model.policy
        with torch.no_grad():
            actions = policy._predict(torch.as_tensor(obs, dtype=torch.float32, device=policy.device),
                                      deterministic=self.deterministic)
        actions = actions.cpu().numpy().reshape((-1, *policy.action_space.shape))
        if isinstance(policy.action_space, gym.spaces.Discrete):  # a choice, stored as its index (dagger.actions)
            return actions.reshape(-1, 1).astype(np.float32)
        if policy.squash_output:
            return policy.unscale_action(actions)
        return np.clip(actions, policy.action_space.low, policy.action_space.high)


def load_expert(expert_cfg: ExpertConfig, env_name: str, env: gym.Env, device: str = "cpu") -> Expert:
    """Load `expert.path` for this env, checking it exists, is the configured algorithm and matches the
    env's spaces. Bad input raises ConfigError (one line); nothing is printed."""
    env_id = env.spec.id
    algo, trust = expert_cfg.algo, expert_cfg.trust
    if algo == "python":
        from dagger.expert.python_expert import load_python_expert

        return load_python_expert(expert_cfg.target, expert_cfg.kwargs, env)
    cls = algorithm_class(algo)
    check_acts_in(algo, env.action_space, env_id)
    try:
        model_path, stats_path = find_checkpoint(resolve_path(expert_cfg.path), env_id, algo)
    except FileNotFoundError as err:
        raise ConfigError(f"expert.path: no {algo} checkpoint at {err.args[0]}; train one with "
                          f"`{train_command(env_name, algo, env_id)}`") from None

    check_hub_env_kwargs(model_path, env)
    raw = model_path.read_bytes()  # hashed and loaded from the same bytes
    model_sha256 = hashlib.sha256(raw).hexdigest()
    data = read_model_data(raw, model_path)
    algo = check_algorithm(data, algo, model_path, trust)
    if trust:
        # Schedules are training-only and may not unpickle across library versions.
        custom = {"learning_rate": 0.0, "lr_schedule": lambda _: 0.0, "clip_range": lambda _: 0.0}
    else:
        custom = safe_custom_objects(data, algo, env, model_path)
    try:
        model = cls.load(io.BytesIO(raw), device=device, custom_objects=custom)
    except Exception as err:  # noqa: BLE001 - a broken or foreign file gets one clear line
        if "Weights only load failed" in str(err):  # torch's own line goes on to suggest weights_only=False
            raise ConfigError(f"expert.path={model_path}: its weights (*.pth) hold something other than tensors, "
                              "such as a pickled object, which could run code; refused without reading it") from None
        raise ConfigError(f"expert.path={model_path}: cannot load as {cls.__name__}: {first_line(err)}") from None
    spoiled = [name for name, t in model.policy.state_dict().items() if t.is_floating_point() and not t.isfinite().all()]
    if spoiled:
        raise ConfigError(f"expert.path={model_path}: its weights hold nan or inf ({spoiled[0]}); it cannot label states")
    check_shapes("observation", model.observation_space.shape, env.observation_space.shape, env_id, model_path)
    check_shapes("action", model.action_space.shape, env.action_space.shape, env_id, model_path)
    if getattr(model.action_space, "n", None) != getattr(env.action_space, "n", None):
        raise ConfigError(f"expert.path={model_path}: action space {model.action_space} does not match env {env_id}'s "
                          f"{env.action_space}")

    normalizer, stats_sha256 = None, None
    if stats_path is None:
        check_statistics_present(model_path, model_sha256)
    else:
        stats = stats_path.read_bytes()
        stats_sha256 = hashlib.sha256(stats).hexdigest()
        normalizer = read_statistics(stats, stats_path, env.observation_space.shape, trust)
    files = {"algo": algo.upper(), "model": str(model_path), "model_sha256": model_sha256,
             "stats": None if stats_path is None else str(stats_path), "stats_sha256": stats_sha256}
    return Expert(model=model, deterministic=expert_cfg.deterministic, obs_normalizer=normalizer, files=files)
