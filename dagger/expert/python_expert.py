"""A policy of the user's own, written in Python, as the expert: `expert=python expert.target=package.module:name`.

`name` is a batched callable `obs -> actions` (a scripted controller, a model from another library): a function, or
a class that `expert.kwargs` builds. Importing the module runs the user's code, by design: the user named it on the
command line. The module is imported from the folder the command runs in (or anywhere on the Python path). Before
any work, the callable is tried on a batch of the task's own observations, and an output of the wrong shape, type
or range is one line. The run's provenance records the module's file and its sha256 (`files`), as it records an
SB3 checkpoint's.
"""
from __future__ import annotations

import hashlib
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gymnasium as gym
import numpy as np

from dagger.actions import Actions, actions_of
from dagger.config import ConfigError, describe
from dagger.envs import visited_states

PROBE_STATES = 32  # observations the callable is tried on before any work


@dataclass
class PythonExpert:
    """The user's callable, its outputs as D stores actions (`dagger.actions`)."""

    policy: Callable[[np.ndarray], np.ndarray]
    actions: Actions
    files: dict

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.actions.stored(np.asarray(self.policy(obs)))


def load_python_expert(target: str, kwargs: dict, env: gym.Env) -> PythonExpert:
    """Import `target` (`package.module:name`), build it with `kwargs` if it is a class, and check its actions on
    the task's observations; every failure is one line naming `expert.target` or `expert.kwargs`."""
    key = f"expert.target={target!r}"
    module_name, _, name = target.partition(":")
    if not module_name or not name:
        raise ConfigError(f"{key} must be package.module:name (a batched callable obs -> action)")
    here = str(Path.cwd())
    if here not in sys.path:
        sys.path.insert(0, here)
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # noqa: BLE001 - the user's module, whatever it raises: one line
        raise ConfigError(f"{key}: cannot import {module_name} ({describe(err, 160)})") from None
    found = getattr(module, name, None)
    if found is None:
        raise ConfigError(f"{key}: {module_name} has no {name}")
    if isinstance(found, type):
        try:
            found = found(**kwargs)
        except Exception as err:  # noqa: BLE001
            raise ConfigError(f"expert.kwargs: {name}({', '.join(kwargs)}) fails: {describe(err, 160)}") from None
    elif kwargs:
        raise ConfigError(f"expert.kwargs: {name} is not a class, so it takes no keyword arguments")
    if not callable(found):
        raise ConfigError(f"{key}: {name} is not callable (a function obs -> action, or a class)")
    check_outputs(key, found, env)
    source = Path(getattr(module, "__file__", "") or "")
    digest = hashlib.sha256(source.read_bytes()).hexdigest() if source.is_file() else "unknown"
    files = {"algo": "PYTHON", "model": f"{target} ({source})", "model_sha256": digest, "stats": None,
             "stats_sha256": None}
    return PythonExpert(found, actions_of(env.action_space), files)


def check_outputs(key: str, policy: Callable, env: gym.Env) -> None:
    """The callable's actions on PROBE_STATES of the task's observations (a reset, then random steps) must be one
    action per state, of the action space's shape, finite and within its bounds (or valid choices)."""
    batch = visited_states(env, PROBE_STATES, lambda obs: env.action_space.sample(), seed=0)
    try:
        out = np.asarray(policy(batch))
    except Exception as err:  # noqa: BLE001
        raise ConfigError(f"{key}: fails on a batch of {len(batch)} observations: {describe(err, 160)}") from None
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        shapes, kind = [(len(batch),), (len(batch), 1)], f"{space.n} choices"
    else:
        shapes, kind = [(len(batch), *space.shape)], f"actions in {space}"
    if out.shape not in shapes:
        raise ConfigError(f"{key}: on a batch of {len(batch)} observations it returned shape {out.shape}; "
                          f"expected {' or '.join(map(str, shapes))}")
    if not np.issubdtype(out.dtype, np.number) or not np.isfinite(out.astype(np.float64)).all():
        raise ConfigError(f"{key}: its actions must be finite numbers (got dtype {out.dtype})")
    valid = actions_of(space).valid(out, slack=1e-6)
    if not valid.all():
        bad = out.reshape(len(out), -1)[~valid][0]
        shown = bad.item() if bad.size == 1 else bad.tolist()
        raise ConfigError(f"{key}: it returned {shown}, outside the task's {kind}")
