"""VecNormalize's observation statistics (`vecnormalize.pkl`), read without running code (`expert.trust=false`).

`vecnormalize.pkl` is a pickle of a whole VecNormalize. It is read by `StatisticsUnpickler`: numpy
arrays, scalars and dtypes are built for real, the SB3/gymnasium/numpy-random classes such a file
names become inert `StandIn`s that only record their state, and any other global is refused. Only
the observation statistics are kept, applied by `ObsNormalizer` with VecNormalize's formula. A model
trained with VecNormalize but found without its statistics is refused (`check_statistics_present`).
"""
from __future__ import annotations

import io
import pickle
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from dagger.config import ConfigError, PROJECT_ROOT, first_line
from dagger.expert.layout import ZooConfigLoader
from dagger.expert.safe_zip import TRUST_HINT

try:
    from numpy._core.multiarray import _reconstruct, scalar
except ImportError:  # numpy 1.x
    from numpy.core.multiarray import _reconstruct, scalar


SHIPPED_MANIFEST = PROJECT_ROOT / "experts" / "manifest.yaml"  # a module constant so tests can point elsewhere


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
        raise ConfigError(f"expert.path={where}: cannot read the normalisation statistics ({first_line(err)})") from None
    state = root.state if isinstance(root, StandIn) and root.name == VECNORMALIZE else None
    rms = state.get("obs_rms") if isinstance(state, dict) else None
    rms_state = rms.state if isinstance(rms, StandIn) and rms.name == RUNNING_MEAN_STD else None
    return normalizer_from_state(state, rms_state, obs_shape, where)


def check_statistics_present(model_path: Path, model_sha256: str) -> None:
    """A model trained with VecNormalize is useless without its statistics: refuse to run it bare."""
    zoo = model_path.with_suffix("") / "config.yml"
    config = zoo if zoo.is_file() else model_path.parent / "config.yml"  # the zoo's place, or the hub's
    if config.is_file():
        try:
            hyperparams = yaml.load(config.read_text(), Loader=ZooConfigLoader)  # noqa: S506 - a SafeLoader
        except (yaml.YAMLError, ValueError, TypeError) as err:
            raise ConfigError(f"expert.path={config}: cannot read ({first_line(err)})") from None
        normalize = hyperparams.get("normalize") if isinstance(hyperparams, dict) else None
        if normalize and normalize not in ("False", "false"):
            raise ConfigError(f"expert.path={config} says normalize={normalize!r} but there is no "
                              f"{config.parent / ('vecnormalize.pkl' if config == zoo else 'vec_normalize.pkl')}; "
                              "copy the statistics too")
    if SHIPPED_MANIFEST.is_file():
        manifest = yaml.safe_load(SHIPPED_MANIFEST.read_text()) or {}
        for key, entry in manifest.items():
            if isinstance(entry, dict) and entry.get("sha256") == model_sha256 and entry.get("normalize"):
                raise ConfigError(f"expert.path={model_path} is the shipped expert {key}, trained with normalized "
                                  f"observations, but no vecnormalize.pkl was found beside it or in "
                                  f"{model_path.with_suffix('')}/; copy the statistics too")
