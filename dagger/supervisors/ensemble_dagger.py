"""EnsembleDAgger (Menda, Driggs-Campbell & Kochenderfer 2019, "EnsembleDAgger: A Bayesian Approach to Safe
Imitation Learning"): the novice is an ensemble (`policy=ensemble`), and it acts only where it is both
confident and close to the expert; the expert acts everywhere else.

At every visited state s the expert is queried, a*(s) = pi*(s), and with actions in scaled units
(x -> (x - mid) / half, the env's bounds mapped to [-1, 1]; d action dimensions, K members a_k):

    mu(s)    = 1/K sum_k a_k(s)                                  the novice's action (the ensemble's mean)
    sigma(s) = 1/d sum_j std_k(a_kj(s))                          doubt: the members' spread (`learner.uncertainty`)
    delta(s) = sqrt(1/d sum_j (mu_j(s) - a*_j(s))^2)              discrepancy: RMS distance to the expert's action
    novice acts  iff  sigma(s) <= chi (`max_spread`)  and  delta(s) <= tau (`max_discrepancy`)

otherwise the expert's action a*(s) is executed. As in the paper (and DAgger), every visited state enters D
with the expert's label, whoever acted there, so labels = queries = visited states; the gate only shapes
which states are visited (the novice's own, as long as it is trusted). The paper's doubt is the ensemble's
variance and its discrepancy a 2-norm; here the spread is a standard deviation (in action units, like delta) and
the norm is divided by sqrt(d) so that one pair of thresholds means the same on every env (||.||_2 <= tau' is
delta <= tau' / sqrt(d)). chi -> inf leaves the discrepancy gate alone (SafeDAgger's gate with a perfect safety
classifier); chi, tau -> inf is DAgger with beta = 0; small chi or tau keep the expert in control (behaviour
cloning on the expert's own states in the limit).

Discrete actions (`dagger.actions`): the members vote (one-hot choices); the ensemble acts with the majority,
the spread is the std of the votes averaged over the choices (0 where all agree), and the discrepancy is 1 where
the majority's choice differs from the expert's.

Reads (students that see less, `dagger.views`): the spread is the ensemble's on the student's view; the
discrepancy compares its mean action with the expert's label on the full state.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np

from dagger.schemas import Help, number
from dagger.actions import actions_of
from dagger.policy import Learner
from dagger.supervisors import Act, Decision, Supervisor, require_ensemble

class EnsembleDAgger(Supervisor):
    """The ensemble's mean acts where sigma <= max_spread and delta <= max_discrepancy (the expert elsewhere);
    the expert labels every state."""

    def __init__(self, action_space,
                 max_spread: Annotated[float, number(low=0), Help(
                     "chi: the most spread of the members (std, scaled units) at which the learner acts")] = 0.1,
                 max_discrepancy: Annotated[float, number(low=0), Help(
                     "tau: the most RMS gap between the ensemble's mean and the expert's action")] = 0.2,
                 **_context):
        self.max_spread, self.max_discrepancy = float(max_spread), float(max_discrepancy)
        self.actions = actions_of(action_space)
        if _context.get("learner") is not None:  # passed by the caller: refuse before any work
            require_ensemble(_context["learner"], "algo=ensemble_dagger")
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.states = self.doubted = self.discrepant = 0
        self.spread_sum = self.discrepancy_sum = 0.0

    def begin(self, iteration: int, learner, data) -> None:
        require_ensemble(learner, "algo=ensemble_dagger")
        self._reset_counts()

    def decide(self, obs: np.ndarray, learner: Learner, expert: Act, rng: np.random.Generator,
               state: np.ndarray | None = None) -> Decision:
        state = obs if state is None else state  # the expert reads the full state, the learner its view
        labels = expert(state)  # the expert is queried at every state: the discrepancy needs it, and it labels all
        novice, spread = learner.act_and_uncertainty(obs)  # the learner's act and spread, members run once
        spread = np.asarray(spread, dtype=np.float64)
        discrepancy = self.actions.gap(novice, labels)
        doubted, discrepant = spread > self.max_spread, discrepancy > self.max_discrepancy
        expert_acts = doubted | discrepant
        actions = np.where(expert_acts[:, None], labels, novice)
        self.states += len(obs)
        self.doubted += int(doubted.sum())
        self.discrepant += int(discrepant.sum())
        self.spread_sum += float(spread.sum())
        self.discrepancy_sum += float(discrepancy.sum())
        return Decision(actions, expert_acts, np.ones(len(obs), dtype=bool), labels, queries=len(obs))

    def metrics(self) -> dict[str, float]:
        """The thresholds, and over this iteration's decisions: the mean spread and discrepancy, and the
        fraction of states over each threshold (a state can be over both)."""
        n = max(1, self.states)
        return {"max_spread": self.max_spread, "max_discrepancy": self.max_discrepancy,
                "rollout_spread": self.spread_sum / n, "rollout_discrepancy": self.discrepancy_sum / n,
                "doubt_fraction": self.doubted / n, "discrepancy_fraction": self.discrepant / n}
