"""The collection seam: who acts, and which visited states enter D with which label.

Every algorithm of the DAgger family is one `Supervisor`. Per vectorised step, `decide` looks at the
states of all envs and returns a `Decision`: the executed actions, who is in control of each env, which
states are labelled, and their labels (the expert's action). The collector steps the envs, stores the
labelled states, and counts switches of control, interventions and failures; the loop never changes
for a new algorithm. A supervisor calls the expert only where it needs to, and counts every state it
shows the expert (`Decision.queries`): a gate check is a query even when it labels nothing.

A new algorithm is one `Supervisor` subclass in this package plus one `conf/algo/<name>.yaml` whose
`_target_` names the class; its other keys are the class's keyword arguments.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from omegaconf import DictConfig, OmegaConf

from dagger.config import ConfigError

Act = Callable[[np.ndarray], np.ndarray]


@dataclass
class Decision:
    """What happens at one vectorised step, per env."""

    actions: np.ndarray          # executed, (n, act_dim)
    supervisor_acts: np.ndarray  # bool (n,): the supervisor (expert) is in control
    labelled: np.ndarray         # bool (n,): this state enters D ...
    labels: np.ndarray           # (n, act_dim): ... with this label (rows where `labelled`; others unused)
    queries: int                 # states shown to the expert at this step (labels and gate checks)


class Supervisor:
    """Base class: a supervisor with no per-iteration setup, no per-env state and no metrics of its own.

    `begin` can read every visited transition so far as `data.transitions` (`dagger.data.Transitions`:
    s, executed a, r, s', terminated, truncated, learner drove, ...); ThriftyDAgger's risk critic learns from them."""

    def begin(self, iteration: int, learner, data) -> None:
        """Called before collecting iteration `iteration` (1-based; 0 for initial demonstrations)."""

    def decide(self, obs: np.ndarray, learner: Act, expert: Act, rng: np.random.Generator) -> Decision:
        raise NotImplementedError

    def episode_ended(self, env: int) -> None:
        """Env `env` finished an episode (per-env gate state such as hysteresis resets here)."""

    def metrics(self) -> dict[str, float]:
        """This iteration's numbers of the supervisor's own (beta, noise, thresholds, ...)."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def half_range(action_space) -> np.ndarray:
    """h = (high - low) / 2 per action dimension: actions in scaled units are a / h (the learner's units)."""
    return (np.asarray(action_space.high, dtype=np.float64) - np.asarray(action_space.low, dtype=np.float64)) / 2


def action_gap(a: np.ndarray, b: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Per state, the RMS over action dimensions of (a - b) / h: how far two policies' actions are apart."""
    diff = (np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) / half
    return np.sqrt(np.mean(diff ** 2, axis=-1))


NEEDS_ENSEMBLE = "{algo} needs a learner with an uncertainty (its ensemble's spread): use policy=ensemble"


def require_ensemble(learner, obs: np.ndarray, algo: str) -> None:
    """The learner must report an uncertainty (`uncertainty(obs)` not None); a plain MLP (`policy=mlp`,
    `policy=gaussian`) has none. `obs`: a probe batch of observations (it may have no rows)."""
    uncertainty = getattr(learner, "uncertainty", None)
    if uncertainty is None or uncertainty(obs) is None:
        raise ConfigError(NEEDS_ENSEMBLE.format(algo=algo))


def build_supervisor(algo_cfg: DictConfig, **context) -> Supervisor:
    """The supervisor `conf/algo/<name>.yaml` describes; `context` (schedule, action space, number of envs)
    is passed to every supervisor, which takes what it needs."""
    import inspect

    from hydra.utils import get_class

    params = OmegaConf.to_container(algo_cfg, resolve=True)
    name = params.pop("name", None)
    try:
        cls = get_class(str(params.pop("_target_", None)))
        if not issubclass(cls, Supervisor):
            raise TypeError(cls)
    except Exception:  # noqa: BLE001 - an unknown class is bad input
        raise ConfigError(f"algo._target_={algo_cfg.get('_target_')!r} is not a supervisor class") from None
    accepted = inspect.signature(cls).parameters
    for key in params:
        if key not in accepted or key in context:
            raise ConfigError(f"algo.{key}: unknown key for algo={name} ({cls.__name__} takes "
                              f"{', '.join(k for k in accepted if k not in context and k != '_context') or 'no keys'})")
    return cls(**context, **params)
