"""The collection seam: who acts, and which visited states enter D with which label.

Every algorithm of the DAgger family is one `Supervisor`. Per vectorised step, `decide` looks at the
states of all envs (the student's view, which the learner and the gates read, and the full state, which the
expert reads: `dagger.views`) and returns a `Decision`: the executed actions, who is in control of each env, which
states are labelled, and their labels (the expert's action). The collector steps the envs, stores the
labelled states, and counts switches of control, interventions and failures; the loop never changes
for a new algorithm. A supervisor calls the expert only where it needs to, and counts every state it
shows the expert (`Decision.queries`): a gate check is a query even when it labels nothing.

A new algorithm is one `Supervisor` subclass in this package plus one `conf/algo/<name>.yaml` whose
`_target_` names the class; its other keys are the class's keyword arguments.
"""
from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import create_model

import numpy as np
import torch

from dagger.config import ConfigError, show
from dagger.schemas import OpenSchema, Schema, Targeted, parse, target_class
from dagger.policy import Learner, UncertainLearner

Act = Callable[[np.ndarray], np.ndarray]


@dataclass
class Decision:
    """What happens at one vectorised step, per env."""

    actions: np.ndarray          # executed, (n, act_dim)
    supervisor_acts: np.ndarray  # bool (n,): the supervisor (expert) is in control
    labelled: np.ndarray         # bool (n,): this state enters D ...
    labels: np.ndarray | None    # (n, act_dim): ... with this label (rows where `labelled`; others unused), or
                                 # None: the expert labels them after the rollout, in one batch (the decision
                                 # did not need the expert's actions)
    queries: int                 # states shown to the expert at this step (labels and gate checks)


class Supervisor:
    """Base class: a supervisor with no per-iteration setup, no per-env state and no metrics of its own.

    `begin` can read every visited transition so far as `data.transitions` (`dagger.data.Transitions`:
    s, executed a, r, s', terminated, truncated, learner drove, ...); ThriftyDAgger's risk critic learns from them."""

    def begin(self, iteration: int, learner, data) -> None:
        """Called before collecting iteration `iteration` (1-based: iteration 0's initial demonstrations are the
        expert's alone, collected under a beta = 1 mixture, not this supervisor)."""

    def decide(self, obs: np.ndarray, learner: Learner, expert: Act, rng: np.random.Generator,
               state: np.ndarray | None = None) -> Decision:
        """One vectorised step: `obs` is what the learner sees of each env (the student's view; the learner and
        the gates read it), `state` the full observation the expert reads (`obs` itself when None)."""
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


class Takeovers(Supervisor):
    """A supervisor that takes over and hands back (HG-, Lazy- and ThriftyDAgger): per env, whether the supervisor
    is in control persists across steps (and across iterations where episodes carry over, schedule.collection=
    carry_over; by default every iteration starts from a reset), returns to the learner when an episode ends, and is part
    of the checkpoint."""

    def start_with_learner(self, num_envs: int) -> None:
        self.control = np.zeros(int(num_envs), dtype=bool)  # True: the supervisor drives that env

    @staticmethod
    def check_thresholds(takeover: tuple[str, float], handback: tuple[str, float]) -> None:
        """Refuse a hand-back threshold above the takeover one, naming both keys: `(key, value)` each."""
        (take_key, take), (back_key, back) = takeover, handback
        if back > take:
            raise ConfigError(f"algo.{back_key}={show(back)} must be <= algo.{take_key}={show(take)} (the "
                              f"supervisor hands back below {back_key} after taking over above {take_key})")

    def switch(self, hand_back: np.ndarray, take_over: np.ndarray) -> np.ndarray:
        """The takeover rule, per env: c_t = not hand_back where the supervisor was in control (c_{t-1} = 1), and
        take_over where the learner was; c_t is kept for the next step and returned."""
        self.control = np.where(self.control, ~hand_back, take_over)
        return self.control

    def episode_ended(self, env: int) -> None:
        self.control[env] = False

    def state_dict(self) -> dict:
        return {**super().state_dict(), "control": torch.from_numpy(self.control.copy())}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.control = state["control"].numpy().copy()


def ask_where(expert: Act, state: np.ndarray, asked: np.ndarray, like: np.ndarray) -> np.ndarray:
    """The expert's labels of the states `asked` (it is shown those alone), zeros elsewhere, shaped like `like`."""
    labels = np.zeros_like(like)
    if asked.any():
        labels[asked] = expert(state[asked])
    return labels


def online_burden(supervised: int, states: int) -> float:
    """The share of the iteration's states the supervisor drove or was shown (0 before any state)."""
    return supervised / max(1, states)


NEEDS_ENSEMBLE = "{algo} needs a learner with an uncertainty (its ensemble's spread): use policy=ensemble"


def require_ensemble(learner: Learner, algo: str) -> UncertainLearner:
    """The learner must report an uncertainty (`dagger.policy.UncertainLearner`); a plain MLP (`policy=mlp`,
    `policy=gaussian`) has none."""
    if not isinstance(learner, UncertainLearner):
        raise ConfigError(NEEDS_ENSEMBLE.format(algo=algo))
    return learner


class AlgoConfig(Targeted, OpenSchema):
    """The `algo` group: its name and supervisor class (`_target_`); its other keys are the class's keyword
    arguments, checked by the class's keyword_schema."""


CONTEXT = ("schedule", "action_space", "observation_space", "num_envs", "learner", "seed")  # passed to every class


def keyword_schema(cls: type[Supervisor]) -> type[Schema]:
    """The `algo` keys a supervisor class takes: its keyword arguments beyond the CONTEXT, typed by their
    annotations (`Annotated[float, number(0, 2)]`), with their defaults."""
    hints = get_type_hints(cls.__init__, include_extras=True)
    fields = {name: (hints.get(name, Any), ... if param.default is param.empty else param.default)
              for name, param in inspect.signature(cls).parameters.items()
              if name not in CONTEXT and param.kind is not param.VAR_KEYWORD}
    return create_model(f"{cls.__name__}Keys", __base__=Schema, **fields)


def build_supervisor(algo_cfg: AlgoConfig, **context) -> Supervisor:
    """The supervisor `conf/algo/<name>.yaml` describes: its class from `_target_`, its keys checked against the
    class's keyword arguments (`keyword_schema`); `context` (schedule, spaces, number of envs, the learner, the
    seed) is passed to every supervisor, which takes what it needs."""
    if not isinstance(algo_cfg, AlgoConfig):
        algo_cfg = parse(AlgoConfig, algo_cfg, "algo.")
    params, name = dict(algo_cfg.model_extra or {}), algo_cfg.name
    cls = target_class("algo._target_", algo_cfg.target, lambda cls: issubclass(cls, Supervisor), "a supervisor class")
    schema = keyword_schema(cls)
    for key in params:
        if key not in schema.model_fields:
            raise ConfigError(f"algo.{key}: unknown key for {name} ({cls.__name__} takes "
                              f"{', '.join(schema.model_fields) or 'no keys'})")
    keys = parse(schema, params, "algo.")
    return cls(**context, **{key: getattr(keys, key) for key in schema.model_fields})
