"""Stable-Baselines3 checkpoints as batched experts: `act(obs) -> actions` for many states at once.

A checkpoint can come from anyone, so by default (`expert.trust=false`) loading one never runs code
that the file carries:

* The model `.zip` is read into memory once; its sha256 is that of exactly the bytes loaded. SB3
  stores every value that JSON cannot hold in the zip's `data` entry as a cloudpickle blob marked
  `":serialized:"`, and unpickling a blob can run anything. We read that JSON ourselves and hand SB3
  a value built here for every such field through `custom_objects`, which SB3's `json_to_data` uses
  *instead of* unpickling the field. A field we cannot rebuild from its readable parts is refused.
  The weights (`*.pth`) are read by SB3 itself with `torch.load(weights_only=True)`, which only
  builds tensors.
* The algorithm is read from the file (its policy class and algorithm-specific keys), so a
  mismatching `expert.algo` is an error, not a surprise.
* `vecnormalize.pkl` is a pickle of a whole VecNormalize. It is read by `StatisticsUnpickler`:
  numpy arrays, scalars and dtypes are built for real, the SB3/gymnasium/numpy-random classes such a
  file names become inert `StandIn`s that only record their state, and any other global is refused.
  Only the observation statistics are kept, applied by `ObsNormalizer` with VecNormalize's formula.
* rl-baselines3-zoo's `config.yml` is parsed by a safe YAML loader that only adds the zoo's
  `OrderedDict` tag (read as a plain dict).

`expert.trust=true` loads with SB3's own `cls.load` and `pickle.load` instead: for files you trust.
"""
from __future__ import annotations

import copy
import hashlib
import io
import json
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import gymnasium as gym
import numpy as np
import torch
import yaml
from stable_baselines3.common.base_class import BaseAlgorithm

from dagger.config import COUNT, PROJECT_ROOT, Boolean, ConfigError, Mapping, Schema, Text, resolve_path

try:
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct, scalar

Algorithm = Literal["sac", "td3", "tqc", "ppo"]
ALGORITHMS = get_args(Algorithm)


class ExpertTrainingConfig(Schema):
    """`expert.train`: how experts/train.py trains this kind of expert."""

    timesteps: Annotated[int, COUNT]
    normalize: Annotated[bool, Boolean()]
    hyperparams: Annotated[dict[str, Any], Mapping(what="a mapping of stable-baselines3 keyword arguments")]


class ExpertConfig(Schema):
    """The `expert` group: which checkpoint labels the states, and how it is read."""

    algo: Algorithm
    path: Annotated[str, Text()]
    deterministic: Annotated[bool, Boolean()]
    trust: Annotated[bool, Boolean()] = False
    train: ExpertTrainingConfig | None = None  # experts/train.py's; conf/expert/ sets it
SHIPPED_MANIFEST = PROJECT_ROOT / "experts" / "manifest.yaml"  # a module constant so tests can point elsewhere
TRUST_HINT = "set expert.trust=true only if you trust this file"


def algorithm_class(algo: str) -> type[BaseAlgorithm]:
    """The SB3 class for an `expert.algo` name."""
    if algo == "tqc":
        from sb3_contrib import TQC

        return TQC
    import stable_baselines3 as sb3

    classes = {"sac": sb3.SAC, "td3": sb3.TD3, "ppo": sb3.PPO}
    if algo not in classes:
        raise ConfigError(f"expert.algo={algo!r} is not one of {', '.join(ALGORITHMS)}")
    return classes[algo]


def train_command(env_name: str, algo: str) -> str:
    return f"python experts/train.py env={env_name} expert={algo}"


def one_line(err: object) -> str:
    return " ".join(str(err).split())


# ---------------------------------------------------------------------------------------------- layouts

def zoo_runs(folder: Path, env_id: str) -> list[Path]:
    """rl-baselines3-zoo run folders `<EnvId>_<n>` inside `folder`, lowest n first."""
    if not folder.is_dir():
        return []
    runs = [p for p in folder.iterdir() if p.is_dir() and re.fullmatch(rf"{re.escape(env_id)}_\d+", p.name)]
    return sorted(runs, key=lambda p: int(p.name.rsplit("_", 1)[1]))


def find_checkpoint(path: Path, env_id: str, algo: str | None = None) -> tuple[Path, Path | None]:
    """The model .zip and its optional vecnormalize.pkl.

    Accepts a .zip file, a folder holding `<EnvId>.zip`, an rl-baselines3-zoo algorithm folder with
    runs `<EnvId>_<n>/` (the highest n is used), or the zoo's log root holding `<algo>/` (either of
    the previous two). Zoo keeps the statistics in `<EnvId>/vecnormalize.pkl` beside the model; a
    `vecnormalize.pkl` next to it also counts.
    """
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
    for stats in (path.with_suffix("") / "vecnormalize.pkl", path.parent / "vecnormalize.pkl"):
        if stats.is_file():
            return path, stats
    return path, None


class ZooConfigLoader(yaml.SafeLoader):
    """Safe YAML plus the one Python tag rl-baselines3-zoo writes in config.yml, read as a plain dict."""


def _ordered_dict(loader: ZooConfigLoader, node: yaml.Node) -> dict:
    (pairs,) = loader.construct_sequence(node, deep=True)  # the tag's one argument: [[key, value], ...]
    return dict(pairs)


ZooConfigLoader.add_constructor("tag:yaml.org,2002:python/object/apply:collections.OrderedDict", _ordered_dict)


def check_statistics_present(model_path: Path, model_sha256: str) -> None:
    """A model trained with VecNormalize is useless without its statistics: refuse to run it bare."""
    config = model_path.with_suffix("") / "config.yml"
    if config.is_file():
        try:
            hyperparams = yaml.load(config.read_text(), Loader=ZooConfigLoader)  # noqa: S506 - a SafeLoader
        except (yaml.YAMLError, ValueError, TypeError) as err:
            raise ConfigError(f"expert.path={config}: cannot read ({one_line(err)})") from None
        normalize = hyperparams.get("normalize") if isinstance(hyperparams, dict) else None
        if normalize and normalize not in ("False", "false"):
            raise ConfigError(f"expert.path={config} says normalize={normalize!r} but there is no "
                              f"{model_path.with_suffix('') / 'vecnormalize.pkl'}; copy the statistics too")
    if SHIPPED_MANIFEST.is_file():
        manifest = yaml.safe_load(SHIPPED_MANIFEST.read_text()) or {}
        for key, entry in manifest.items():
            if isinstance(entry, dict) and entry.get("sha256") == model_sha256 and entry.get("normalize"):
                raise ConfigError(f"expert.path={model_path} is the shipped expert {key}, trained with normalized "
                                  f"observations, but no vecnormalize.pkl was found beside it or in "
                                  f"{model_path.with_suffix('')}/; copy the statistics too")


# -------------------------------------------------------------------------------- the model .zip, safely

# The policy class SB3 saves for each algorithm's MlpPolicy, and a key only that algorithm saves.
POLICY_ALGORITHMS = {
    ("stable_baselines3.sac.policies", "SACPolicy"): "sac",
    ("stable_baselines3.td3.policies", "TD3Policy"): "td3",
    ("sb3_contrib.tqc.policies", "TQCPolicy"): "tqc",
    ("stable_baselines3.common.policies", "ActorCriticPolicy"): "ppo",  # also A2C's: told apart by n_epochs
}
ALGORITHM_KEYS = {"sac": "target_entropy", "td3": "policy_delay", "tqc": "top_quantiles_to_drop_per_net",
                  "ppo": "n_epochs"}

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
        raise ConfigError(f"expert.path={where}: not a Stable-Baselines3 model ({one_line(err)})") from None
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
    algo = POLICY_ALGORITHMS.get(saved_policy(data))
    return algo if algo is not None and ALGORITHM_KEYS[algo] in data else None


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
        elif key in ("learning_rate", "lr_schedule", "clip_range", "clip_range_vf"):
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


# ------------------------------------------------------------------------- normalisation statistics

VECNORMALIZE = "stable_baselines3.common.vec_env.vec_normalize.VecNormalize"
RUNNING_MEAN_STD = "stable_baselines3.common.running_mean_std.RunningMeanStd"
# Globals built for real: numpy arrays, scalars and dtypes, and the plain OrderedDict container.
REAL_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "scalar"): scalar,
    ("numpy._core.multiarray", "scalar"): scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("collections", "OrderedDict"): OrderedDict,
}
# Globals replaced by a StandIn: the classes a VecNormalize pickle names, with its spaces' random generators.
STAND_IN_GLOBALS = (VECNORMALIZE, RUNNING_MEAN_STD)
STAND_IN_MODULES = re.compile(r"gymnasium\.spaces(\.\w+)*|gym\.spaces(\.\w+)*|numpy\.random(\.\w+)*")


class StandIn:
    """Built in place of a class a statistics pickle names: records its arguments and state, runs nothing."""

    name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> StandIn:
        self = super().__new__(cls)
        self.args, self.state = args, None
        return self

    def __setstate__(self, state: Any) -> None:
        self.state = state


class StatisticsUnpickler(pickle.Unpickler):
    """Reads a vecnormalize.pkl without running any code it names (see the module docstring)."""

    def __init__(self, file: io.BytesIO, where: Path):
        super().__init__(file)
        self.where = where
        self.stand_ins: dict[str, type[StandIn]] = {}

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        if (module, name) in REAL_GLOBALS:
            return REAL_GLOBALS[(module, name)]
        dtypes = getattr(np, "dtypes", None)
        if module == "numpy.dtypes" and name.endswith("DType") and isinstance(getattr(dtypes, name, None), type):
            return getattr(dtypes, name)
        if full in STAND_IN_GLOBALS or STAND_IN_MODULES.fullmatch(module):
            return self.stand_ins.setdefault(full, type(name, (StandIn,), {"name": full}))
        raise ConfigError(f"expert.path={self.where}: refused global '{full}': the statistics may only hold numpy "
                          f"arrays and VecNormalize's own classes, and pickled code is never run by default; "
                          f"{TRUST_HINT}")


@dataclass(frozen=True)
class ObsNormalizer:
    """VecNormalize's observation statistics, applied exactly as `VecNormalize.normalize_obs` does."""

    mean: np.ndarray
    var: np.ndarray
    epsilon: float
    clip_obs: float
    norm_obs: bool = True

    def normalize_obs(self, obs: np.ndarray) -> np.ndarray:
        if not self.norm_obs:
            return obs
        normalized = np.clip((obs - self.mean) / np.sqrt(self.var + self.epsilon), -self.clip_obs, self.clip_obs)
        return normalized.astype(np.float32)


def normalizer_from_state(state: object, rms_state: object, obs_shape: tuple, where: Path) -> ObsNormalizer:
    """Check the recorded VecNormalize and RunningMeanStd states and keep what acting needs."""
    def bad(why: str) -> ConfigError:
        return ConfigError(f"expert.path={where}: no usable VecNormalize observation statistics ({why})")

    if not isinstance(state, dict) or not isinstance(rms_state, dict):
        raise bad("expected a VecNormalize with one RunningMeanStd for the observations")
    mean, var = rms_state.get("mean"), rms_state.get("var")
    for name, array in (("mean", mean), ("var", var)):
        if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
            raise bad(f"obs_rms.{name} is not a float array")
        if array.shape != tuple(obs_shape):
            raise bad(f"obs_rms.{name} has shape {array.shape}, the env's observations {tuple(obs_shape)}")
        if not np.isfinite(array).all():
            raise bad(f"obs_rms.{name} holds inf or nan")
    if (var < 0).any():
        raise bad("obs_rms.var has negative entries")
    epsilon, clip_obs, norm_obs = state.get("epsilon"), state.get("clip_obs"), state.get("norm_obs")
    for name, number in (("epsilon", epsilon), ("clip_obs", clip_obs)):
        if not isinstance(number, (float, int, np.floating)) or isinstance(number, bool):
            raise bad(f"{name} is not a number")
        if not np.isfinite(number) or number <= 0:
            raise bad(f"{name}={number} must be a finite number > 0")
    if not isinstance(norm_obs, (bool, np.bool_)):
        raise bad("norm_obs is not a bool")
    return ObsNormalizer(mean=mean, var=var, epsilon=float(epsilon), clip_obs=float(clip_obs), norm_obs=bool(norm_obs))


def read_statistics(raw: bytes, where: Path, obs_shape: tuple, trust: bool) -> ObsNormalizer:
    """The observation statistics of a vecnormalize.pkl (with `trust`, through plain `pickle.load`)."""
    try:
        if trust:
            venv = pickle.load(io.BytesIO(raw))  # noqa: S301 - the user trusts this file
            rms = getattr(venv, "obs_rms", None)
            return normalizer_from_state(getattr(venv, "__dict__", None), getattr(rms, "__dict__", None),
                                         obs_shape, where)
        root = StatisticsUnpickler(io.BytesIO(raw), where).load()
    except ConfigError:
        raise
    except Exception as err:  # noqa: BLE001 - a broken file gets one clear line
        raise ConfigError(f"expert.path={where}: cannot read the normalisation statistics ({one_line(err)})") from None
    state = root.state if isinstance(root, StandIn) and root.name == VECNORMALIZE else None
    rms = state.get("obs_rms") if isinstance(state, dict) else None
    rms_state = rms.state if isinstance(rms, StandIn) and rms.name == RUNNING_MEAN_STD else None
    return normalizer_from_state(state, rms_state, obs_shape, where)


# ------------------------------------------------------------------------------------------ the expert

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
        if policy.squash_output:
            return policy.unscale_action(actions)
        return np.clip(actions, policy.action_space.low, policy.action_space.high)


def load_expert(expert_cfg: ExpertConfig, env_name: str, env: gym.Env, device: str = "cpu") -> Expert:
    """Load `expert.path` for this env, checking it exists, is the configured algorithm and matches the
    env's spaces. Bad input raises ConfigError (one line); nothing is printed."""
    env_id = env.spec.id
    algo, trust = expert_cfg.algo, expert_cfg.trust
    cls = algorithm_class(algo)
    try:
        model_path, stats_path = find_checkpoint(resolve_path(expert_cfg.path), env_id, algo)
    except FileNotFoundError as err:
        raise ConfigError(f"expert.path: no {algo} checkpoint at {err.args[0]}; train one with "
                          f"`{train_command(env_name, algo)}`") from None

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
        raise ConfigError(f"expert.path={model_path}: cannot load as {cls.__name__}: {one_line(err)}") from None
    check_shapes("observation", model.observation_space.shape, env.observation_space.shape, env_id, model_path)
    check_shapes("action", model.action_space.shape, env.action_space.shape, env_id, model_path)

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
