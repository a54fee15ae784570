"""HG-DAgger (Kelly, Sidrane, Driggs-Campbell & Kochenderfer 2019, "HG-DAgger: Interactive Imitation
Learning with Human Experts"), with a synthetic supervisor built from the expert.

The learner drives. In the paper a human watches and takes control when the learner is heading
somewhere unsafe, drives until the situation is recovered, then hands control back; only the states
driven by the human enter D, labelled with the human's actions. Here the human's judgment is replaced
by the gap between the learner's and the expert's action, with hysteresis. In scaled action units
(u = a / h, h = (high - low) / 2, as the learner is fitted), with d action dimensions:

    g_t = || (pi_hat(s_t) - pi*(s_t)) / h ||_2 / sqrt(d)      (root mean square over action dimensions)

    c_t = 1        if c_{t-1} = 0 and g_t > takeover          (the supervisor takes over)
    c_t = 0        if c_{t-1} = 1 and g_t < handback          (it hands back)
    c_t = c_{t-1}  otherwise;                c = 0 (learner) at the start of every episode

    a_t = pi*(s_t) if c_t = 1 else pi_hat(s_t);   (s_t, pi*(s_t)) enters D iff c_t = 1

with handback <= takeover. Choices where the paper leaves one open (its gate is a person):

* The norm is the root mean square of the per-dimension gap (the Euclidean norm over sqrt(d)), so the
  same thresholds mean the same per-joint disagreement on tasks with 1 or 17 action dimensions.
* The gate is evaluated at the state the decision is made in, so the step at which the supervisor
  takes over is already its own (and labelled), and the step at which it hands back is the learner's.
* The expert is evaluated at every visited state to run the gate: each is a query (`Decision.queries`),
  labelled only under supervisor control.
* Per-env control persists across steps (and iterations, where episodes carry over: schedule.collection=carry_over) and
  is part of the checkpoint; it resets to the learner in `episode_ended`.

`metrics()` reports `action_gap_mean`: the mean of g_t over the iteration's states (all of them, both
drivers), a reading of how far the learner is from the expert where it is being run.

Discrete actions (`dagger.actions`): the gap g_t is 1 where the learner's choice differs from the expert's and
0 where they agree, so with the default thresholds the expert takes over at the first disagreement and hands back
at the first agreement.

Reads (students that see less, `dagger.views`): the gap compares the learner's action on the student's view
with the expert's label on the full state.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np

from dagger.schemas import Help, number
from dagger.actions import actions_of
from dagger.policy import Learner
from dagger.supervisors import Act, Decision, Takeovers


class HGDAgger(Takeovers):
    """The learner drives; the expert takes over above `takeover`, hands back below `handback`."""

    def __init__(self, action_space, num_envs: int,
                 takeover: Annotated[float, number(0, 2), Help(
                     "the expert takes over above this action gap (RMS over dimensions, scaled units)")] = 0.3,
                 handback: Annotated[float, number(low=0), Help(
                     "<= takeover: it hands back below this gap")] = 0.1, **_context):
        self.check_thresholds(("takeover", takeover), ("handback", handback))
        self.actions = actions_of(action_space)
        self.takeover, self.handback = float(takeover), float(handback)
        self.start_with_learner(num_envs)
        self._gap_sum, self._gap_count = 0.0, 0

    def gap(self, learner_acts: np.ndarray, expert_acts: np.ndarray) -> np.ndarray:
        """g = RMS over action dimensions of the scaled difference, per state."""
        return self.actions.gap(learner_acts, expert_acts)

    def begin(self, iteration: int, learner, data) -> None:
        self._gap_sum, self._gap_count = 0.0, 0

    def decide(self, obs: np.ndarray, learner: Learner, expert: Act, rng: np.random.Generator,
               state: np.ndarray | None = None) -> Decision:
        state = obs if state is None else state  # the expert reads the full state, the learner its view
        expert_acts = np.asarray(expert(state))
        learner_acts = np.asarray(learner.act(obs))
        g = self.gap(learner_acts, expert_acts)
        control = self.switch(g < self.handback, g > self.takeover)
        self._gap_sum += float(g.sum())
        self._gap_count += len(g)
        actions = np.where(control[:, None], expert_acts, learner_acts).astype(expert_acts.dtype)
        return Decision(actions, control.copy(), control.copy(), expert_acts, queries=len(obs))

    def metrics(self) -> dict[str, float]:
        return {"action_gap_mean": self._gap_sum / self._gap_count if self._gap_count else float("nan")}
