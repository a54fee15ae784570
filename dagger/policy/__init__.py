"""Learners: what is fitted to D and then acts. Every learner is one class behind the `Learner` protocol plus one
`conf/policy/<name>.yaml` whose `_target_` names the class; the class's `Config` is its typed schema (the yaml's
other keys) and its constructor takes `(cfg, observation_space, action_space, device)`.

    mlp.py       MLPLearner: an MLP regressed on the expert's actions (policy=mlp; policy=gaussian by likelihood); on
                 discrete actions a classifier, cross-entropy on the expert's choice (policy=classifier)
    ensemble.py  EnsembleLearner: K MLP learners; their spread is an uncertainty (policy=ensemble)
    recurrent.py GRULearner: a GRU over the view's last K views, a recurrent student (policy=gru),
                 GRUEnsembleLearner: K of them as the ensemble's members (policy=gru_ensemble), and
                 CarriedGRULearner: a GRU whose hidden state is carried through each episode (policy=gru_carried),
                 and CarriedGRUEnsembleLearner: K of those as the ensemble's members (policy=gru_carried_ensemble)
    carried.py   learners with a memory: the RecurrentLearner protocol and Carried, its hidden state per env
    cnn.py       CNNLearner: a conv encoder of camera frames (obs=pixels) feeding the MLP head, a pixel student
                 (policy=cnn; policy=cnn_gru with a GRU over the frames), and CNNEnsembleLearner: K of them as the
                 ensemble's members (policy=cnn_ensemble)
    fitting.py   the MLP, the Adam minibatch loop and the cosine learning rate every network here uses
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch

from dagger.schemas import OpenSchema, Targeted, parse_targeted, target_class


@runtime_checkable
class Learner(Protocol):
    """What the loop and the supervisors use of a learner. One with a memory (`dagger.policy.carried.RecurrentLearner`)
    acts along episodes: every caller acts with a learner through `dagger.policy.carried.acting(learner)`."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic actions for a batch of observations, within the action bounds (or the chosen indices),
        as D stores them: (n, width) float32 (`dagger.actions`)."""

    def fit(self, data, generator: torch.Generator) -> dict[str, float]:
        """One supervised-learning phase on all of D; returns its metrics (a row's `train_loss`, ...)."""

    def policy_state_dict(self) -> dict:
        """The weights that act (saved as learner.pt)."""

    def state_dict(self) -> dict:
        """Everything a resumed run needs (weights and optimiser state)."""

    def load_state_dict(self, state: dict) -> None: ...


@runtime_checkable
class UncertainLearner(Protocol):
    """What the uncertainty gates (EnsembleDAgger, ThriftyDAgger) need of a learner beyond `Learner`: a per-state
    uncertainty of its action (their novelty). `policy=ensemble` has one; a single MLP has none."""

    def act(self, obs: np.ndarray) -> np.ndarray: ...

    def uncertainty(self, obs: np.ndarray) -> np.ndarray:
        """Per state, (n,)."""

    def act_and_uncertainty(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both from one pass (the gates need both at every step)."""


class LearnerConfig(Targeted):
    """The keys every `policy` option has (its name and `_target_`); each learner class's `Config` adds its own."""


class AnyLearnerConfig(LearnerConfig, OpenSchema):
    """The `policy` group before its class is known (its other keys are checked by the class's `Config`)."""


def learner_class(target: Any) -> type:
    """The learner class `policy._target_` names: one whose `Config` is a LearnerConfig."""
    def has_config(cls) -> bool:
        return isinstance(getattr(cls, "Config", None), type) and issubclass(cls.Config, LearnerConfig)

    return target_class("policy._target_", target, has_config, "a learner class (one with a Config schema)")


def learner_config(policy_cfg) -> LearnerConfig:
    """The `policy` group (a DictConfig or a mapping) checked against its class's schema (`_target_` names it)."""
    return parse_targeted(policy_cfg, learner_class, "policy.")


def build_learner(policy_cfg: LearnerConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                  device: str) -> Learner:
    """The learner the `policy` group describes (checked first when it is not a learner's `Config` yet)."""
    if not isinstance(policy_cfg, LearnerConfig) or isinstance(policy_cfg, AnyLearnerConfig):
        policy_cfg = learner_config(policy_cfg)
    return learner_class(policy_cfg.target)(policy_cfg, observation_space, action_space, device)
