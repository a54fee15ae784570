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
intervention rate alpha (`target_rate`), on held-out states H: the states the learner drove in earlier
rollouts (never labelled, so never fitted on; D's states while there are none):

    delta_h = Quantile_q(sigma(H)),   beta_h = Quantile_q(Q_R(H, pi_hat(H)))
    q       = the lowest level in [1 - alpha, 1] at which at most a fraction alpha of H is novel or risky
    delta_r = mean over D of g(pi_hat(s), a*)                  (the learner's typical gap where it was taught)

so that the gate fires on a fraction alpha of the learner's states. With one gate only, q = 1 - alpha
exactly (the (1 - alpha) quantile); with both, q >= 1 - alpha splits alpha between them. The expert is
queried only under supervisor control and for the hand-back test (c_{t-1} = 1). Choices where the paper
leaves one open: the held-out states (above); failure is termination; the critic's discount `gamma`;
iteration 1 with D empty is driven by the supervisor; the realised intervention rate is takeovers per
learner-driven step (`intervention_rate`, beside `target_rate`).
"""
from __future__ import annotations

import numpy as np
import torch

from dagger.config import ConfigError, Number, check_value, show
from dagger.gates import RiskCritic, seeded
from dagger.supervisors import Act, Decision, Supervisor, action_gap, half_range
from dagger.supervisors.ensemble_dagger import require_ensemble

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


class ThriftyDAgger(Supervisor):
    """The ensemble learner drives; the supervisor takes over at novel or risky states (thresholds from a target
    intervention rate) and hands back once the learner agrees with it and the risk is low."""

    needs_transitions = True

    def __init__(self, action_space, observation_space, num_envs: int, seed: int, target_rate: float = 0.01,
                 gamma: float = 0.98, **_context):
        check_value("algo.target_rate", target_rate, Number(above=0))
        if target_rate >= 1:
            raise ConfigError(f"algo.target_rate={show(target_rate)} must be in (0, 1): interventions per learner step")
        check_value("algo.gamma", gamma, Number(0, 0.999))
        self.target_rate, self.gamma, self.seed = float(target_rate), float(gamma), int(seed)
        self.half = half_range(action_space)
        self.mid = (np.asarray(action_space.high, np.float64) + np.asarray(action_space.low, np.float64)) / 2
        self.obs_dim = observation_space.shape[0]
        self.control = np.zeros(int(num_envs), dtype=bool)
        learner = _context.get("learner")
        if learner is not None:  # refuse a learner without an uncertainty before any work
            require_ensemble(learner, np.zeros((0, self.obs_dim), dtype=np.float32), "algo=thrifty_dagger")
        self.learner = None
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
        self._reset_counts()
        self.learner = learner
        if len(data) == 0:
            return
        require_ensemble(learner, data.obs[:1], "algo=thrifty_dagger")
        transitions = data.transitions
        self.fit_metrics = {}
        if transitions is not None and len(transitions):
            self.critic = RiskCritic(self.obs_dim, self.mid, self.half, self.gamma, seeded(self.seed, iteration, 1))
            self.fit_metrics = self.critic.fit(transitions, learner.act)
        learner_states = transitions["obs"][transitions["learner"]] if transitions is not None else data.obs[:0]
        held_out = learner_states if len(learner_states) >= MIN_HELD_OUT else data.obs
        novelty = learner.uncertainty(held_out)
        risk = self.risk(held_out, learner.act(held_out)) if self.critic is not None else None
        q, delta_h, beta_h = calibrate(novelty, risk, self.target_rate)
        handback = float(action_gap(learner.act(data.obs), data.acts, self.half).mean())
        self.thresholds = {"novelty_threshold": delta_h, "risk_threshold": beta_h, "handback_gap": handback,
                           "quantile": q, "held_out_states": len(held_out)}

    def decide(self, obs: np.ndarray, learner: Act, expert: Act, rng: np.random.Generator) -> Decision:
        before = self.control
        novice = np.asarray(learner(obs))
        labels = np.zeros_like(novice)
        if self.learner is None or np.isnan(self.thresholds["novelty_threshold"]):  # no learner yet: supervisor drives
            control = np.ones(len(obs), dtype=bool)
            novel = risky = np.zeros(len(obs), dtype=bool)
            risk = np.zeros(len(obs))
        else:
            risk = self.risk(obs, novice)
            novel = self.learner.uncertainty(obs) > self.thresholds["novelty_threshold"]
            risky = risk > self.thresholds["risk_threshold"]
            control = before | novel | risky  # asked where it drives (hand-back test) or is asked to take over
        asked = control.copy()
        if asked.any():
            labels[asked] = expert(obs[asked])
        if self.learner is not None and not np.isnan(self.thresholds["novelty_threshold"]):
            agrees = action_gap(novice, labels, self.half) < self.thresholds["handback_gap"]
            safe = risk < self.thresholds["risk_threshold"]
            control = np.where(before, ~(agrees & safe), novel | risky)
        takeover = ~before & control
        if not np.isnan(self.thresholds["novelty_threshold"]):  # the gate ran (not iteration 1's supervisor-only)
            self.takeovers += int(takeover.sum())
            self.novelty_switches += int((takeover & novel).sum())
            self.risk_switches += int((takeover & risky).sum())
            self.learner_steps += int((~before).sum())
        self.states += len(obs)
        self.supervised += int(control.sum())
        self.control = control
        actions = np.where(control[:, None], labels, novice).astype(novice.dtype)
        return Decision(actions, control.copy(), control.copy(), labels, queries=int(asked.sum()))

    def episode_ended(self, env: int) -> None:
        self.control[env] = False

    def metrics(self) -> dict[str, float]:
        return {"target_rate": self.target_rate,
                "intervention_rate": self.takeovers / self.learner_steps if self.learner_steps else float("nan"),
                "novelty_switches": self.novelty_switches, "risk_switches": self.risk_switches,
                "online_burden": self.supervised / max(1, self.states), **self.thresholds, **self.fit_metrics}

    def state_dict(self) -> dict:
        return {"control": torch.from_numpy(self.control.copy())}

    def load_state_dict(self, state: dict) -> None:
        self.control = state["control"].numpy().copy()
