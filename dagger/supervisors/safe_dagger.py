"""SafeDAgger (Zhang & Cho 2017, "Query-Efficient Imitation Learning for End-to-End Simulated Driving"),
with the shipped expert as the reference policy.

A safety classifier p(s) (`dagger.gates.SafetyClassifier`) predicts whether the learner's action at s
departs from the expert's by more than tau. Whenever the expert labels a state s_t, the gap between the
learner acting then, pi_hat_k, and the label is recorded, in scaled action units (u = (a - mid) / h, d
action dimensions):

    g_t       = sqrt(1/d sum_j ((pi_hat_k(s_t) - pi*(s_t))_j / h_j)^2)
    target_t  = 1[g_t > tau]

and before every iteration the classifier is refitted from scratch on all the (s_t, target_t) recorded so
far. It then gates every visited state:

    unsafe(s) = p(s) > 1/2
    a_t = pi*(s_t) if unsafe(s_t) else pi_hat_i(s_t);   the expert is queried, and (s_t, pi*(s_t)) enters D,
                                                          only where unsafe(s_t)

so queries = labels = states the classifier flags. Choices where the paper leaves one open:

* The classifier is a separate MLP on the state (the paper's shares the policy's features). The paper
  fits it on held-out data; here each target is held out by construction: g_t is measured with the
  learner that had not yet been fitted on s_t (the learner's gaps on D itself, which it was fitted on,
  would call almost every state safe). Classes are weighted equally in the loss.
* Before anything is recorded (iteration 1; initial demonstrations are not recorded) there is no
  classifier: the expert drives and labels every state, the same first iteration as DAgger's.
* The gate has no memory: each step is decided on its own (LazyDAgger adds hysteresis).

Discrete actions (`dagger.actions`): the gap is 1 where the learner's choice differs from the expert's, 0 where
they agree; the classifier predicts whether the learner would choose wrongly (any tau in [0, 1) means the same).

Reads (students that see less, `dagger.views`): the safety classifier is trained on and predicts from the
student's view; its targets are gaps between the learner's action (on the view) and the expert's label (on the
full state).
"""
from __future__ import annotations

from typing import Annotated

import numpy as np

import torch

from dagger.schemas import COUNT, Help, number
from dagger.data import Columns
from dagger.gates import MINIBATCHES, SafetyClassifier, seeded
from dagger.actions import actions_of
from dagger.policy import Learner
from dagger.supervisors import Act, Decision, Supervisor, ask_where, online_burden


ClassifierMinibatches = Annotated[int, COUNT, Help(  # algo.gate_minibatches of SafeDAgger and LazyDAgger
    "Adam minibatches of the safety classifier's fit, refitted every iteration")]


class SafeDAgger(Supervisor):
    """The learner acts where the safety classifier says safe; the expert acts, and labels, where it says unsafe."""

    def __init__(self, action_space, observation_space, seed: int,
                 tau: Annotated[float, number(0, 2), Help(
                     "the classifier predicts gap > tau (RMS, scaled action units): the expert acts")] = 0.1,
                 gate_minibatches: ClassifierMinibatches = MINIBATCHES,
                 **_context):
        self.tau, self.seed, self.gate_minibatches = float(tau), int(seed), int(gate_minibatches)
        self.actions = actions_of(action_space)
        self.obs_dim = observation_space.shape[0]
        self.classifier: SafetyClassifier | None = None
        self.records = self.new_records()
        self.fit_metrics: dict[str, float] = {}
        self._reset_counts()

    def new_records(self) -> Columns:
        """(s_t, g_t) of every state the expert labelled: the classifier's training data."""
        return Columns({"obs": ((self.obs_dim,), np.float32), "gap": ((), np.float64)})

    def record(self, obs: np.ndarray, novice: np.ndarray, labels: np.ndarray, labelled: np.ndarray) -> None:
        if labelled.any():
            self.records.add(obs=obs[labelled], gap=self.actions.gap(novice[labelled], labels[labelled]))

    def _reset_counts(self) -> None:
        self.states = self.flagged = 0

    def fit_classifier(self, iteration: int, tau: float) -> None:
        """p(s) for iteration `iteration`: the recorded states, unsafe where the learner then was more than tau off."""
        self.classifier, self.fit_metrics = None, {}
        if len(self.records) == 0:
            return
        self.classifier = SafetyClassifier(self.obs_dim, seeded(self.seed, iteration, 0), self.gate_minibatches)
        self.fit_metrics = self.classifier.fit(self.records["obs"], self.records["gap"] > tau)

    def unsafe(self, obs: np.ndarray) -> np.ndarray:
        """Per state: the classifier predicts the learner is off (everywhere while there is no classifier)."""
        if self.classifier is None:
            return np.ones(len(obs), dtype=bool)
        return self.classifier.unsafe_probability(obs) > 0.5

    def begin(self, iteration: int, learner, data) -> None:
        self.fit_classifier(iteration, self.tau)
        self._reset_counts()

    def decide(self, obs: np.ndarray, learner: Learner, expert: Act, rng: np.random.Generator,
               state: np.ndarray | None = None) -> Decision:
        state = obs if state is None else state  # the expert reads the full state, the learner its view
        unsafe = self.unsafe(obs)
        novice = np.asarray(learner.act(obs))
        labels = ask_where(expert, state, unsafe, novice)  # the expert is shown only the flagged states
        actions = np.where(unsafe[:, None], labels, novice).astype(novice.dtype)
        self.record(obs, novice, labels, unsafe)
        self.states += len(obs)
        self.flagged += int(unsafe.sum())
        return Decision(actions, unsafe, unsafe.copy(), labels, queries=int(unsafe.sum()))

    def metrics(self) -> dict[str, float]:
        return {"tau": self.tau, "online_burden": online_burden(self.flagged, self.states), **self.fit_metrics}

    def state_dict(self) -> dict:
        return {"records": {name: torch.from_numpy(self.records[name].copy()) for name in ("obs", "gap")}}

    def load_state_dict(self, state: dict) -> None:
        self.records = self.new_records()
        self.records.add(**{name: value.numpy() for name, value in state["records"].items()})
