"""LazyDAgger (Hoque, Balakrishna, Putterman, Luo, Brown, Seita, Thananjeyan, Novoseller & Goldberg 2021,
"LazyDAgger: Reducing Context Switching in Interactive Imitation Learning"), with the shipped expert as
the supervisor.

SafeDAgger's safety classifier p(s) (`dagger.gates.SafetyClassifier`, refitted before every iteration on the
labelled states with target 1[g_t > tau_sup], g_t the gap of the learner acting when s_t was labelled)
decides when the learner hands control to the supervisor;
the supervisor hands it back once the actual gap is small, so that control does not flip at every step.
With g the RMS scaled action gap and c the per-env controller (0 learner, 1 supervisor):

    c_t = 1        if c_{t-1} = 0 and p(s_t) > 1/2                        (predicted gap > tau_sup: take over)
    c_t = 0        if c_{t-1} = 1 and g(pi_hat_i(s_t), pi*(s_t)) < tau_auto   (hand back)
    c_t = c_{t-1}  otherwise;                 c = 0 at the start of every episode

    executed  a_t = clip(pi*(s_t) + h * eps_t, low, high), eps_t ~ N(0, sigma^2 I)   if c_t = 1
              a_t = pi_hat_i(s_t)                                                 if c_t = 0
    labelled  (s_t, pi*(s_t)) enters D iff c_t = 1 (the clean label)

with tau_auto <= tau_sup: between the two the current controller keeps control. The expert is queried
where c_t = 1 and where c_{t-1} = 1 (the hand-back test needs its action); nowhere else.
Choices where the paper leaves one open:

* The noise is Gaussian, isotropic in scaled units (`noise_std` = sigma), as LazyDAgger's experiments use
  to widen the supervisor's state distribution; labels stay clean.
* The hand-back step is the learner's (it is not labelled); the take-over step is the supervisor's.
* Iteration 1 with D empty: the supervisor drives throughout (no classifier yet), as in SafeDAgger.
* Per-env control is checkpointed; the classifier is refitted identically on resume.

Discrete actions (`dagger.actions`): the gaps are 1 where the choices differ and 0 where they agree, and the
executed noise is epsilon-random: the supervisor's choice is replaced by a uniform one with probability noise_std.

Reads (students that see less, `dagger.views`): SafeDAgger's classifier on the student's view; the hand-back
gap compares the learner's action on the view with the expert's label on the full state.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np

from dagger.gates import MINIBATCHES
from dagger.schemas import Help, number
from dagger.policy import Learner
from dagger.supervisors import Act, Decision, Takeovers, ask_where, online_burden
from dagger.supervisors.safe_dagger import ClassifierMinibatches, SafeDAgger


class LazyDAgger(Takeovers, SafeDAgger):
    """SafeDAgger's classifier with hysteresis: take over when it predicts a gap > tau_sup, hand back when the
    actual gap < tau_auto; noise on the supervisor's executed actions."""

    def __init__(self, action_space, observation_space, num_envs: int, seed: int,
                 tau_sup: Annotated[float, number(0, 2), Help(
                     "the classifier predicts gap > tau_sup (RMS, scaled action units): the expert takes over")] = 0.1,
                 tau_auto: Annotated[float, number(low=0), Help(
                     "<= tau_sup: hand back once the learner's action is this close to the expert's")] = 0.05,
                 noise_std: Annotated[float, number(low=0), Help(
                     "noise on the expert's executed actions (scaled units); labels stay clean")] = 0.1,
                 gate_minibatches: ClassifierMinibatches = MINIBATCHES,
                 **_context):
        self.check_thresholds(("tau_sup", tau_sup), ("tau_auto", tau_auto))
        super().__init__(action_space, observation_space, seed, tau=tau_sup, gate_minibatches=gate_minibatches)
        self.tau_sup, self.tau_auto, self.noise_std = float(tau_sup), float(tau_auto), float(noise_std)
        self.start_with_learner(num_envs)

    def _reset_counts(self) -> None:
        super()._reset_counts()
        self.supervised = 0

    def decide(self, obs: np.ndarray, learner: Learner, expert: Act, rng: np.random.Generator,
               state: np.ndarray | None = None) -> Decision:
        state = obs if state is None else state  # the expert reads the full state, the learner its view
        before = self.control
        novice = np.asarray(learner.act(obs))
        asked = before | (~before & self.unsafe(obs))   # the supervisor keeps, or is handed, control: ask it
        labels = ask_where(expert, state, asked, novice)
        control = self.switch(self.actions.gap(novice, labels) < self.tau_auto, asked)
        noisy = self.actions.noisy(labels, self.noise_std, rng)
        actions = np.where(control[:, None], noisy, novice).astype(novice.dtype)
        self.record(obs, novice, labels, control)
        self.states += len(obs)
        self.flagged += int((~before & control).sum())
        self.supervised += int(control.sum())
        return Decision(actions, control.copy(), control.copy(), labels, queries=int(asked.sum()))

    def metrics(self) -> dict[str, float]:
        return {"tau_sup": self.tau_sup, "tau_auto": self.tau_auto, "noise_std": self.noise_std,
                "online_burden": online_burden(self.supervised, self.states), **self.fit_metrics}
