"""ThriftyDAgger (Hoque, Balakrishna, Novoseller, Lee, Dragan & Goldberg 2021, "ThriftyDAgger: Budget-Aware
Novelty and Risk Gating for Interactive Imitation Learning"), with the shipped expert as the supervisor.

The learner is an ensemble (`policy=ensemble`): it acts with its mean pi_hat and its spread sigma(s) is the
novelty of a state (`learner.uncertainty`). A risk critic Q_R(s, a) (`dagger.gates.RiskCritic`) estimates
the discounted probability that the learner fails (the episode terminates) from s after a; it is refitted
before every iteration on every transition collected so far. The learner asks for help where a state is
novel or risky, and the supervisor hands back once the learner agrees with it and the risk is low:

    novel(s)  = sigma(s) > delta_h          risky(s) = Q_R(s, pi_hat(s)) > beta_h
    c_t = 1        if c_{t-1} = 0 and (novel(s_t) or risky(s_t))                 (intervention)
    c_t = 0        if c_{t-1} = 1 and g(pi_hat(s_t), pi*(s_t)) < delta_r and Q_R(s_t, pi_hat(s_t)) < beta_h
    c_t = c_{t-1}  otherwise;                 c = 0 at the start of every episode
    a_t = pi*(s_t) if c_t = 1 else pi_hat(s_t);   (s_t, pi*(s_t)) enters D iff c_t = 1

with g the RMS scaled action gap. Thresholds are re-estimated before every iteration from the target
intervention rate alpha (`target_rate`), on held-out states H: the states the learner drove in the last
rollout (never labelled, so never fitted on, and the closest sample of where the gate will run); all
earlier learner-driven states while the last rollout has too few, D's states while there are none:

    delta_h = Quantile_q(sigma(H)),   beta_h = Quantile_q(Q_R(H, pi_hat(H)))
    q       = the lowest level in [1 - a_i, 1] at which at most a fraction a_i of H is novel or risky
    delta_r = mean over D of g(pi_hat(s), a*)                  (the learner's typical gap where it was taught)
    a_1     = alpha,   a_{i+1} = clip(a_i * alpha / r_i, alpha / 10, min(10 alpha, 1/2))

so that the gate fires on a fraction a_i of held-out learner states. With one gate only, q = 1 - a_i
exactly (the (1 - a_i) quantile); with both, q >= 1 - a_i splits it between them. r_i is the realised
rate of iteration i (takeovers per learner-driven step; r_i = 0 doubles a_i), used only when iteration
i was calibrated on learner-driven states (a_i is kept after a calibration on D's states): H comes from
the previous learner, and the refitted one meets more novel states than its quantile promises, so the
calibration level is corrected by the ratio of target to realised rate. The expert is
queried only under supervisor control and for the hand-back test (c_{t-1} = 1). Choices where the paper
leaves one open: the held-out states (above); failure is termination; the critic's discount `gamma`;
iteration 1 with D empty is driven by the supervisor; the realised intervention rate is takeovers per
learner-driven step (`intervention_rate` this iteration, `intervention_rate_so_far` over the iterations
calibrated on learner states, beside `target_rate`).

Discrete actions (`dagger.actions`): novelty is the spread of the members' one-hot votes, the hand-back gap is 1
where the choices differ, and the risk critic reads the action as a one-hot choice.

Reads (students that see less, `dagger.views`): novelty is the ensemble's spread on the student's view, the
risk critic learns Q(o, a) on the student's views in the transitions record, and the hand-back gap compares the
learner's action on the view with the expert's label on the full state.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np

from dagger.config import ConfigError, show
from dagger.schemas import COUNT, Help, number
from dagger.gates import MINIBATCHES, RiskCritic, seeded
from dagger.actions import actions_of
from dagger.policy import Learner
from dagger.policy.carried import RecurrentLearner
from dagger.supervisors import (Act, Decision, Takeovers, ask_where, online_burden,
                                require_ensemble)

MIN_HELD_OUT = 100  # learner-driven states needed before they replace D's states as the held-out set


def calibrate(novelty: np.ndarray, risk: np.ndarray | None, rate: float) -> tuple[float, float, float]:
    """(q, delta_h, beta_h): quantile level q >= 1 - rate, as low as possible with at most `rate` of the
    states over either threshold (bisection on q; the flagged fraction falls as q rises)."""
    def flagged(q: float) -> tuple[float, float, float]:
        delta = float(np.quantile(novelty, q))
        beta = float(np.quantile(risk, q)) if risk is not None else float("inf")
        over = (novelty > delta) | ((risk > beta) if risk is not None else False)
        return float(np.mean(over)), delta, beta

    low, high = 1.0 - rate, 1.0
    if risk is None or flagged(low)[0] <= rate:
        return low, *flagged(low)[1:]
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (low, mid) if flagged(mid)[0] <= rate else (mid, high)
    return high, *flagged(high)[1:]


def held_out_states(data, since: int) -> tuple[np.ndarray, bool]:
    """H: the learner-driven states of the transitions after `since` (the last rollout); else all of them; else
    D's states. The flag says whether H is learner-driven states."""
    transitions = data.transitions
    if transitions is not None:
        learner = transitions["learner"]
        recent = transitions["obs"][since:][learner[since:]]
        if len(recent) >= MIN_HELD_OUT:
            return recent, True
        if learner.sum() >= MIN_HELD_OUT:
            return transitions["obs"][learner], True
    return data.obs, False


class ThriftyDAgger(Takeovers):
    """The ensemble learner drives; the supervisor takes over at novel or risky states (thresholds from a target
    intervention rate) and hands back once the learner agrees with it and the risk is low."""

    def __init__(self, action_space, observation_space, num_envs: int, seed: int,
                 target_rate: Annotated[float, number(above=0), Help(
                     "alpha: interventions per learner-driven step the thresholds aim for")] = 0.01,
                 gamma: Annotated[float, number(0, 0.999), Help(
                     "the discount of the risk critic's failure probability")] = 0.98,
                 gate_minibatches: Annotated[int, COUNT, Help(
                     "Adam minibatches of each of the risk critic's 4 rounds, refitted every iteration")] = MINIBATCHES,
                 **_context):
        if target_rate >= 1:
            raise ConfigError(f"algo.target_rate={show(target_rate)} must be in (0, 1): interventions per learner step")
        self.target_rate, self.gamma, self.seed = float(target_rate), float(gamma), int(seed)
        self.gate_minibatches = int(gate_minibatches)
        self.actions = actions_of(action_space)
        self.obs_dim = observation_space.shape[0]
        self.start_with_learner(num_envs)
        self.seen = 0  # transitions in D at the last `begin`: the ones after it are the last rollout's
        self.calibration_rate = self.target_rate  # a_i
        self.on_learner_states = False  # the last calibration used learner-driven states (not D's)
        self.total_takeovers = self.total_learner_steps = 0
        if _context.get("learner") is not None:  # refuse a learner without an uncertainty before any work
            require_ensemble(_context["learner"], "algo=thrifty_dagger")
            if isinstance(_context["learner"], RecurrentLearner):
                raise ConfigError("algo=thrifty_dagger fits its risk critic and thresholds on D's states one by one, "
                                  "and a carried GRU acts along episodes: use policy=gru_ensemble")
        self.critic: RiskCritic | None = None
        self.thresholds = {"novelty_threshold": float("nan"), "risk_threshold": float("nan"),
                           "handback_gap": float("nan"), "quantile": float("nan")}
        self.fit_metrics: dict[str, float] = {}
        self._reset_counts()

    def _reset_counts(self) -> None:
        self.states = self.supervised = self.learner_steps = 0
        self.novelty_switches = self.risk_switches = self.takeovers = 0

    def risk(self, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        return self.critic.risk(obs, acts) if self.critic is not None else np.zeros(len(obs))

    def begin(self, iteration: int, learner, data) -> None:
        """Refit the risk critic on every transition so far and re-estimate the thresholds from alpha."""
        if self.learner_steps and self.on_learner_states:  # steer the calibration level towards the target
            realised = self.takeovers / self.learner_steps
            step = self.target_rate / realised if realised > 0 else 2.0
            self.calibration_rate = float(np.clip(self.calibration_rate * step, self.target_rate / 10,
                                                  min(10 * self.target_rate, 0.5)))
        self._reset_counts()
        if len(data) == 0:
            return
        learner = require_ensemble(learner, "algo=thrifty_dagger")
        transitions = data.transitions
        self.fit_metrics = {}
        if transitions is not None and len(transitions):
            self.critic = RiskCritic(self.obs_dim, self.actions, self.gamma, seeded(self.seed, iteration, 1),
                                     minibatches=self.gate_minibatches)
            self.fit_metrics = self.critic.fit(transitions, learner.act)
        held_out, self.on_learner_states = held_out_states(data, self.seen)
        self.seen = len(transitions) if transitions is not None else 0
        novelty = learner.uncertainty(held_out)
        risk = self.risk(held_out, learner.act(held_out)) if self.critic is not None else None
        q, delta_h, beta_h = calibrate(novelty, risk, self.calibration_rate)
        handback = float(self.actions.gap(learner.act(data.obs), data.acts).mean())
        self.thresholds = {"novelty_threshold": delta_h, "risk_threshold": beta_h, "handback_gap": handback,
                           "quantile": q, "calibration_rate": self.calibration_rate, "held_out_states": len(held_out)}

    def decide(self, obs: np.ndarray, learner: Learner, expert: Act, rng: np.random.Generator,
               state: np.ndarray | None = None) -> Decision:
        state = obs if state is None else state  # the expert reads the full state, the learner its view
        before = self.control
        gating = not np.isnan(self.thresholds["novelty_threshold"])
        if gating:  # the thresholds are set once a learner was fitted, and it is an UncertainLearner
            novice, spread = learner.act_and_uncertainty(obs)  # the learner's act and spread, members run once
            risk = self.risk(obs, novice)
            novel = spread > self.thresholds["novelty_threshold"]
            risky = risk > self.thresholds["risk_threshold"]
            asked = before | novel | risky  # it drives (the hand-back test needs the expert) or is asked to take over
        else:  # no learner fitted yet (iteration 1): the supervisor drives
            novice = np.asarray(learner.act(obs))
            asked = np.ones(len(obs), dtype=bool)
        labels = ask_where(expert, state, asked, novice)
        if gating:
            agrees = self.actions.gap(novice, labels) < self.thresholds["handback_gap"]
            safe = risk < self.thresholds["risk_threshold"]
            control = self.switch(agrees & safe, novel | risky)
        else:
            control = self.switch(~asked, asked)  # the supervisor drives where it is asked: everywhere
        takeover = ~before & control
        if gating:
            self.takeovers += int(takeover.sum())
            self.novelty_switches += int((takeover & novel).sum())
            self.risk_switches += int((takeover & risky).sum())
            self.learner_steps += int((~before).sum())
            if self.on_learner_states:  # the run's realised rate: iterations calibrated on learner states
                self.total_takeovers += int(takeover.sum())
                self.total_learner_steps += int((~before).sum())
        self.states += len(obs)
        self.supervised += int(control.sum())
        actions = np.where(control[:, None], labels, novice).astype(novice.dtype)
        return Decision(actions, control.copy(), control.copy(), labels, queries=int(asked.sum()))

    def metrics(self) -> dict[str, float]:
        return {"target_rate": self.target_rate,
                "intervention_rate": self.takeovers / self.learner_steps if self.learner_steps else float("nan"),
                "intervention_rate_so_far": (self.total_takeovers / self.total_learner_steps
                                             if self.total_learner_steps else float("nan")),
                "novelty_switches": self.novelty_switches, "risk_switches": self.risk_switches,
                "online_burden": online_burden(self.supervised, self.states), **self.thresholds, **self.fit_metrics}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "seen": self.seen,
                "calibration_rate": self.calibration_rate, "on_learner_states": self.on_learner_states,
                "takeovers": self.takeovers, "learner_steps": self.learner_steps,
                "total_takeovers": self.total_takeovers, "total_learner_steps": self.total_learner_steps}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.seen = int(state["seen"])
        self.calibration_rate = float(state["calibration_rate"])
        self.on_learner_states = bool(state["on_learner_states"])
        self.takeovers, self.learner_steps = int(state["takeovers"]), int(state["learner_steps"])
        self.total_takeovers, self.total_learner_steps = int(state["total_takeovers"]), int(state["total_learner_steps"])
