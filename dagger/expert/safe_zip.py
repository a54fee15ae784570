"""A Stable-Baselines3 model `.zip` read without running code that the file carries (`expert.trust=false`).

* The model `.zip` is read into memory once; its sha256 is that of exactly the bytes loaded. SB3
  stores every value that JSON cannot hold in the zip's `data` entry as a cloudpickle blob marked
  `":serialized:"`, and unpickling a blob can run anything. We read that JSON ourselves and hand SB3
  a value built here for every such field through `custom_objects`, which SB3's `json_to_data` uses
  *instead of* unpickling the field. A field we cannot rebuild from its readable parts is refused.
  The weights (`*.pth`) are read by SB3 itself with `torch.load(weights_only=True)`, which only
  builds tensors.
* The algorithm is read from the file (its policy class and algorithm-specific keys), so a
  mismatching `expert.algo` is an error, not a surprise.
"""
from __future__ import annotations

import copy
import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from dagger.config import ConfigError, first_line
from dagger.expert.layout import ALGORITHMS, algorithm_class


TRUST_HINT = "set expert.trust=true only if you trust this file"


# The policy class SB3 saves for each algorithm's MlpPolicy, and a key only that algorithm saves.
POLICY_ALGORITHMS = {
    ("stable_baselines3.sac.policies", "SACPolicy"): "sac",
    ("stable_baselines3.td3.policies", "TD3Policy"): "td3",
    ("sb3_contrib.tqc.policies", "TQCPolicy"): "tqc",
    ("stable_baselines3.common.policies", "ActorCriticPolicy"): "ppo a2c",  # told apart by their keys
    ("stable_baselines3.dqn.policies", "DQNPolicy"): "dqn",
}
ALGORITHM_KEYS = {"sac": "target_entropy", "td3": "policy_delay", "tqc": "top_quantiles_to_drop_per_net",
                  "ppo": "n_epochs", "a2c": "normalize_advantage", "dqn": "exploration_fraction"}

# The readable `:type:` each known pickled field must have (a regex inside "<class '...'>").
SCHEDULE = r"function|stable_baselines3\.common\.utils\.\w+Schedule"
FIELD_TYPES = {
    "policy_class": r"abc\.ABCMeta|type",
    "observation_space": r"gymnasium\.spaces\.\w+\.\w+",
    "action_space": r"gymnasium\.spaces\.\w+\.\w+",
    "policy_kwargs": r"dict",
    "learning_rate": SCHEDULE,
    "lr_schedule": SCHEDULE,
    "clip_range": SCHEDULE,
    "clip_range_vf": SCHEDULE,
    "exploration_schedule": SCHEDULE,
    "train_freq": r"stable_baselines3\.common\.type_aliases\.TrainFreq",
    "target_entropy": r"numpy\.float(32|64)",
    "_last_obs": r"numpy\.ndarray|dict|collections\.OrderedDict",
    "_last_original_obs": r"numpy\.ndarray|dict|collections\.OrderedDict",
    "_last_episode_starts": r"numpy\.ndarray",
    "ep_info_buffer": r"collections\.deque",
    "ep_success_buffer": r"collections\.deque",
    "replay_buffer_class": r"abc\.ABCMeta|type",
    "rollout_buffer_class": r"abc\.ABCMeta|type",
    "action_noise": r"stable_baselines3\.common\.noise\.\w+",
}
# Training-only state: acting never reads it, and `_setup_model` works with None.
TRAINING_STATE = ("_last_obs", "_last_original_obs", "_last_episode_starts", "ep_info_buffer", "ep_success_buffer",
                  "replay_buffer_class", "rollout_buffer_class", "action_noise")
ACTIVATIONS = {str(cls): cls for cls in (torch.nn.ReLU, torch.nn.Tanh, torch.nn.ELU, torch.nn.LeakyReLU,
                                         torch.nn.SiLU, torch.nn.GELU)}
OPTIMIZERS = {str(cls): cls for cls in (torch.optim.Adam, torch.optim.RMSprop)}  # A2C saves RMSprop in policy_kwargs


def zero_schedule(_progress_remaining: float) -> float:
    """Stands in for saved learning-rate and clip-range schedules, which only training reads."""
    return 0.0


def is_pickled(value: object) -> bool:
    """Exactly what SB3's `json_to_data` would unpickle."""
    return isinstance(value, dict) and ":serialized:" in value


def refused(where: Path, key: str, detail: str) -> ConfigError:
    return ConfigError(f"expert.path={where}: field '{key}' holds pickled Python objects{detail}, which are never "
                       f"loaded by default; {TRUST_HINT}")


def read_model_data(raw: bytes, where: Path) -> dict[str, Any]:
    """The zip's `data` JSON, as plain data (nothing unpickled)."""
    try:
        with zipfile.ZipFile(io.BytesIO(raw)) as archive:
            data = json.loads(archive.read("data"))
    except (zipfile.BadZipFile, KeyError, ValueError) as err:
        raise ConfigError(f"expert.path={where}: not a Stable-Baselines3 model ({first_line(err)})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"expert.path={where}: not a Stable-Baselines3 model (its data is not a JSON object)")
    return data


def saved_policy(data: dict[str, Any]) -> tuple[str, str] | None:
    """(module, class name) of the saved policy class, from its readable parts."""
    policy = data.get("policy_class")
    if not isinstance(policy, dict):
        return None
    module, init = policy.get("__module__"), policy.get("__init__")
    match = re.match(r"<function (\w+)\.__init__ at ", init) if isinstance(init, str) else None
    return (module, match.group(1)) if isinstance(module, str) and match else None


def saved_algorithm(data: dict[str, Any]) -> str | None:
    """Which of ALGORITHMS wrote `data` (None: none of them, or a policy other than MlpPolicy)."""
    candidates = POLICY_ALGORITHMS.get(saved_policy(data), "").split()  # PPO's key first: A2C's is PPO's too
    return next((algo for algo in candidates if ALGORITHM_KEYS[algo] in data), None)


def check_algorithm(data: dict[str, Any], algo: str, where: Path, trust: bool) -> str:
    """The algorithm to load with: the one the file says, which must be the configured one."""
    saved = saved_algorithm(data)
    if saved is None:
        if trust:
            return algo
        policy = ".".join(saved_policy(data) or ("unknown",))
        raise ConfigError(f"expert.path={where}: policy class {policy} is not the MlpPolicy of one of "
                          f"{', '.join(ALGORITHMS)}; only those load by default; {TRUST_HINT}")
    if saved != algo:
        raise ConfigError(f"expert.path={where} holds a {saved.upper()} model, not {algo.upper()}; use expert={saved}")
    return saved


def parse_array(text: object) -> np.ndarray | None:
    """A numpy array printed by `str()`, or None where it cannot be read back exactly enough."""
    if not isinstance(text, str) or "..." in text:
        return None
    try:
        return np.array(text.strip().strip("[]").split(), dtype=np.float64)
    except ValueError:
        return None


def check_shapes(kind: str, theirs: tuple, ours: tuple, env_id: str, where: Path) -> None:
    if tuple(theirs) != tuple(ours):
        raise ConfigError(f"expert.path={where}: {kind} space {tuple(theirs)} does not match "
                          f"env {env_id} {kind} space {tuple(ours)}")


def check_saved_space(kind: str, saved: dict[str, Any], ours: gym.Space, env_id: str, where: Path) -> None:
    """The readable parts of a pickled space must describe the env's own space."""
    shape = saved.get("_shape")
    if not isinstance(shape, list):
        raise refused(where, f"{kind}_space", " with no readable shape")
    check_shapes(kind, tuple(shape), ours.shape, env_id, where)
    differences = []
    if saved[":type:"] != str(type(ours)):
        differences.append(f"type {saved[':type:']} vs {type(ours)}")
    if saved.get("dtype") is not None and saved["dtype"] != str(ours.dtype):
        differences.append(f"dtype {saved['dtype']} vs {ours.dtype}")
    for bound in ("low", "high"):
        theirs = parse_array(saved.get(bound))
        if theirs is not None and hasattr(ours, bound):
            mine = np.asarray(getattr(ours, bound), dtype=np.float64)
            if theirs.shape != mine.shape or not np.allclose(theirs, mine, rtol=1e-6, atol=1e-12):
                differences.append(f"{bound} {saved[bound]} vs {getattr(ours, bound)}")
    if differences:
        raise ConfigError(f"expert.path={where}: {kind} space does not match env {env_id}'s ({'; '.join(differences)})")


def is_layers(value: object) -> bool:
    """`net_arch`: a list of ints, a dict of such lists, or SB3's older list holding one of those."""
    def ints(v: object) -> bool:
        return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v)

    def arch(v: object) -> bool:
        return ints(v) or (isinstance(v, dict) and all(isinstance(k, str) and ints(x) for k, x in v.items()))

    return arch(value) or (isinstance(value, list) and all(
        (isinstance(x, int) and not isinstance(x, bool)) or arch(x) for x in value))


def safe_policy_kwargs(saved: dict[str, Any], where: Path) -> dict[str, Any]:
    """Rebuild pickled `policy_kwargs` from its readable key/values: layer sizes, plain numbers and
    allow-listed activation functions; anything else is refused."""
    kwargs: dict[str, Any] = {}
    for name, value in saved.items():
        if name in (":type:", ":serialized:"):
            continue
        if name == "activation_fn" and value in ACTIVATIONS:
            kwargs[name] = ACTIVATIONS[value]
        elif name == "net_arch" and is_layers(value):
            kwargs[name] = value
        elif name == "optimizer_class" and value in OPTIMIZERS:
            kwargs[name] = OPTIMIZERS[value]
        elif name == "optimizer_kwargs" and isinstance(value, dict) and all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
            kwargs[name] = dict(value)
        elif value is None or isinstance(value, (bool, int, float)):
            kwargs[name] = value
        else:
            raise refused(where, "policy_kwargs", f" ({name}={repr(value)[:80]} cannot be rebuilt safely)")
    return kwargs


def safe_custom_objects(data: dict[str, Any], algo: str, env: gym.Env, where: Path) -> dict[str, Any]:
    """A safely built value for every pickled field of `data`, so that SB3 unpickles none of them."""
    custom: dict[str, Any] = {"env": None}  # SB3 never saves an env; a string here would be gym.make'd
    for key, value in data.items():
        if not is_pickled(value):
            continue
        pattern = FIELD_TYPES.get(key)
        saved_type = value.get(":type:")
        if pattern is None or not isinstance(saved_type, str) or not re.fullmatch(rf"<class '(?:{pattern})'>",
                                                                                 saved_type):
            raise refused(where, key, f" ({saved_type})" if isinstance(saved_type, str) else "")
        if key == "policy_class":
            custom[key] = algorithm_class(algo).policy_aliases["MlpPolicy"]
        elif key in ("observation_space", "action_space"):
            ours = getattr(env, key)
            check_saved_space(key.split("_")[0], value, ours, env.spec.id, where)
            custom[key] = copy.deepcopy(ours)
        elif key == "policy_kwargs":
            custom[key] = safe_policy_kwargs(value, where)
        elif key in ("learning_rate", "lr_schedule", "clip_range", "clip_range_vf", "exploration_schedule"):
            custom[key] = zero_schedule
        elif key == "train_freq":
            custom[key] = (1, "step")  # a NamedTuple keeps no readable fields; only training reads it
        elif key == "target_entropy":
            custom[key] = -float(np.prod(env.action_space.shape))  # TQC's default; only training reads it
        else:
            assert key in TRAINING_STATE, key
            custom[key] = None
    assert all(key in custom for key, value in data.items() if is_pickled(value))
    return custom
