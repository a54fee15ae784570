"""Where an expert's files are: the algorithms and their SB3 classes, rl-baselines3-zoo's layout of
checkpoints, and the command that trains a missing one.

rl-baselines3-zoo's `config.yml` is parsed by a safe YAML loader that only adds the zoo's `OrderedDict`
tag (read as a plain dict).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, get_args

import yaml
from stable_baselines3.common.base_class import BaseAlgorithm

from dagger.config import ConfigError


Algorithm = Literal["sac", "td3", "tqc", "ppo", "a2c", "dqn", "python"]  # python: the user's callable (python_expert)
ALGORITHMS = get_args(Algorithm)[:-1]  # the SB3 ones
CONTINUOUS_ONLY = ("sac", "td3", "tqc")  # their actors output a box; PPO and A2C act in a box or among choices
DISCRETE_ONLY = ("dqn",)                 # a Q-value per choice


def check_acts_in(algo: str, space, env_id: str) -> None:
    """An algorithm that cannot act in the task's action space is one line naming `expert`."""
    import gymnasium as gym

    if algo in CONTINUOUS_ONLY and not isinstance(space, gym.spaces.Box):
        raise ConfigError(f"expert={algo}: {algo.upper()} cannot act in {env_id}'s {space} actions; use expert=ppo")
    if algo in DISCRETE_ONLY and not isinstance(space, gym.spaces.Discrete):
        raise ConfigError(f"expert={algo}: {algo.upper()} chooses among discrete actions, and {env_id}'s are {space}; "
                          "use expert=sac or ppo")


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """The SB3 class for an `expert.algo` name."""
    if algo == "tqc":
        from sb3_contrib import TQC

        return TQC
    import stable_baselines3 as sb3

    classes = {"sac": sb3.SAC, "td3": sb3.TD3, "ppo": sb3.PPO, "a2c": sb3.A2C, "dqn": sb3.DQN}
    if algo not in classes:
        raise ConfigError(f"expert.algo={algo!r} is not one of {', '.join(ALGORITHMS)}")
    return classes[algo]


def train_command(env_name: str, algo: str, env_id: str | None = None) -> str:
    """The command that trains an expert for this task: `env=<name>`, plus `env.id=<id>` where the task is not
    the one conf/env/<name>.yaml names (e.g. `env=walker env.id=Swimmer-v5`)."""
    import yaml

    from dagger.config import ROOT_CONF

    command = f"python experts/train.py env={env_name} expert={algo}"
    try:
        own = yaml.safe_load((ROOT_CONF / "env" / f"{env_name}.yaml").read_text()).get("id")
    except (OSError, yaml.YAMLError, AttributeError):
        own = None
    return command if env_id is None or env_id == own else f"{command} env.id={env_id}"


def zoo_runs(folder: Path, env_id: str) -> list[Path]:
    """rl-baselines3-zoo run folders `<EnvId>_<n>` inside `folder`, lowest n first."""
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if p.is_dir() and re.fullmatch(rf"{re.escape(env_id)}_\d+", p.name)]
    return sorted(runs, key=lambda p: int(p.name.rsplit("_", 1)[1]))


def find_checkpoint(path: Path, env_id: str, algo: str | None = None) -> tuple[Path, Path | None]:
    """The model .zip and its optional vecnormalize.pkl.

    Accepts a .zip file, a folder holding `<EnvId>.zip`, a Hugging Face hub folder as `huggingface_sb3`
    downloads it (`<algo>-<EnvId>.zip`, `vec_normalize.pkl`, `config.yml`, `env_kwargs.yml`), an
    rl-baselines3-zoo algorithm folder with runs `<EnvId>_<n>/` (the highest n is used), or the zoo's log root
    holding `<algo>/` (either of the previous two). Zoo keeps the statistics in `<EnvId>/vecnormalize.pkl` beside
    the model; a `vecnormalize.pkl` (or the hub's `vec_normalize.pkl`) next to it also counts.
    """
    if path.is_dir() and algo and (path / f"{algo}-{env_id}.zip").is_file():  # the hub's layout
        path = path / f"{algo}-{env_id}.zip"
    if path.is_dir():
        folders = [path, path / algo] if algo else [path]
        path = path / f"{env_id}.zip"  # named in the error when nothing matches
        for folder in folders:
            runs = zoo_runs(folder, env_id)
            if runs:
                path = runs[-1] / f"{env_id}.zip"
                break
            if (folder / f"{env_id}.zip").is_file():
                path = folder / f"{env_id}.zip"
                break
    if not path.is_file():
        raise FileNotFoundError(path)
    for stats in (path.with_suffix("") / "vecnormalize.pkl", path.parent / "vecnormalize.pkl",
                  path.parent / "vec_normalize.pkl"):
        if stats.is_file():
            return path, stats
    return path, None


def check_hub_env_kwargs(model_path: Path, env) -> None:
    """A hub folder's `env_kwargs.yml` (the keyword arguments the expert was trained with) must agree with the
    run's task: each of its keys has the same value in the env the run builds (its spec's kwargs)."""
    where = model_path.parent / "env_kwargs.yml"
    if not where.is_file():
        return
    try:
        trained = yaml.load(where.read_text(), Loader=ZooConfigLoader) or {}  # noqa: S506 - a SafeLoader
    except (yaml.YAMLError, ValueError, TypeError) as err:
        raise ConfigError(f"expert.path={where}: cannot read ({str(err).splitlines()[0]})") from None
    if not isinstance(trained, dict):
        raise ConfigError(f"expert.path={where}: is not a mapping of keyword arguments")
    import inspect

    signature = inspect.signature(type(env.unwrapped).__init__).parameters.values()
    ours = {p.name: p.default for p in signature if p.default is not p.empty}  # the task's defaults ...
    ours.update(env.spec.kwargs if env.spec is not None else {})              # ... and what the run passes
    for key, value in trained.items():
        if ours.get(key) != value:
            raise ConfigError(f"expert.path={where}: the expert was trained with {key}={value!r}, and this run's "
                              f"{env.spec.id} has {key}={ours.get(key)!r}; set env.kwargs.{key}={value!r} or use "
                              "another expert")


class ZooConfigLoader(yaml.SafeLoader):
    """Safe YAML plus the one Python tag rl-baselines3-zoo writes in config.yml, read as a plain dict."""


def _ordered_dict(loader: ZooConfigLoader, node: yaml.Node) -> dict:
    (pairs,) = loader.construct_sequence(node, deep=True)  # the tag's one argument: [[key, value], ...]
    return dict(pairs)


ZooConfigLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _ordered_dict)
