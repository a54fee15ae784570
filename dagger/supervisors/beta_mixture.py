"""DAgger's beta mixture (Ross, Gordon & Bagnell 2011, "A Reduction of Imitation Learning and Structured
Prediction to No-Regret Online Learning", Algorithm 3.1), and behaviour cloning as its beta = 1 case.

    pi_i = beta_i * pi* + (1 - beta_i) * pi_hat_i,   every visited state s is labelled with pi*(s)

The mixture is drawn per env and per step (as `imitation` does; the paper leaves open whether it is
drawn per step or per trajectory). beta_i comes from the `schedule` group (indicator, constant, linear,
exponential, bc). Behaviour cloning at an equal label budget is its beta = 1 case: `schedule=bc`, which `algo=bc`
selects (the expert acts throughout and the same labels are collected).

Discrete actions (`dagger.actions`): unchanged; the labels are the expert's choices and the learner a classifier.

Reads (students that see less, `dagger.views`): the learner acts on the student's view; the expert labels
the full state.
"""
from __future__ import annotations

import numpy as np

from dagger.policy import Learner
from dagger.schedules import BetaSchedule
from dagger.supervisors import Act, Decision, Supervisor


class BetaMixture(Supervisor):
    """The expert acts with probability beta_i, independently per env and step; the expert labels every state."""

    def __init__(self, schedule: BetaSchedule, **_context):
        self.schedule = schedule
        self.beta = 1.0

    def begin(self, iteration: int, learner, data) -> None:
        # Initial demonstrations (iteration 0) are the expert's alone.
        self.beta = 1.0 if iteration == 0 else self.schedule(iteration)

    def decide(self, obs: np.ndarray, learner: Learner, expert: Act, rng: np.random.Generator,
               state: np.ndarray | None = None) -> Decision:
        state = obs if state is None else state  # the expert reads the full state, the learner its view
        expert_acts = rng.random(len(obs)) < self.beta
        if not expert_acts.any():  # the learner drives: the expert labels these states after the rollout
            return Decision(learner.act(obs), expert_acts, np.ones(len(obs), dtype=bool), None, queries=len(obs))
        labels = expert(state)
        actions = labels if expert_acts.all() else np.where(expert_acts[:, None], labels, learner.act(obs))
        return Decision(actions, expert_acts, np.ones(len(obs), dtype=bool), labels, queries=len(obs))

    def metrics(self) -> dict[str, float]:
        return {"beta": self.beta}
