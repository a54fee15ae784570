"""DART (Laskey, Lee, Fox, Dragan & Goldberg 2017, "DART: Noise Injection for Robust Imitation Learning").

The expert drives, with Gaussian noise added to what it executes, so that it demonstrates how to
recover from the kind of errors the learner will make; every visited state is labelled with the
expert's clean action. All quantities are in scaled action units, u = a / h with h = (high - low) / 2
(the units the learner is fitted in):

    executed   a_t = clip(pi*(s_t) + h * eps_t, low, high),   eps_t ~ N(0, Sigma_i)
    label      (s_t, pi*(s_t)) enters D for every visited s_t

Before iteration i (in `begin`) the noise is re-estimated from the current learner pi_hat_i on all of D,
the paper's closed form for Gaussian noise (the maximum-likelihood covariance of zero-mean noise that
would make the noisy expert produce the learner's actions):

    e(s, a)       = (pi_hat_i(s) - a) / h                        for every (s, a) in D
    Sigma_hat_i   = 1/|D| * sum_{(s, a) in D} e e^T              (second moment: not centred)
    Sigma_i       = noise_scale * Sigma_hat_i                                      (total_variance: null)
    Sigma_i       = noise_scale * total_variance * Sigma_hat_i / tr(Sigma_hat_i)   (total_variance set)

Choices where the paper leaves one open:

* The expectation over trajectories of the noisy expert is taken over all of D (every state in D was
  visited by the noisy expert of some earlier iteration), as in the paper's own experiments, which use
  the learner's error on the data it was trained on.
* The error is not centred: a learner biased by a constant offset errs as much as one that scatters,
  and the noise should reproduce it (the maximum-likelihood estimate for noise with mean zero).
* The paper's version with a designer's prior on the final learner's error, alpha, rescales the
  estimate to trace alpha / T: `algo.total_variance` is that alpha / T (the expected squared error per
  step, summed over action dimensions, in scaled units). Left null (default), the estimate is used as
  it is, as the authors' released experiments do.
* Full covariance by default (the paper's); `algo.diagonal=true` keeps only the per-dimension variances.
* Iteration 1 with D empty (no initial demonstrations): there is no learner to measure, and the noise
  is isotropic with standard deviation `algo.initial_std` (default 0: a clean expert demonstration,
  i.e. behaviour cloning data, as the paper starts from). With initial demonstrations, the learner
  fitted on them sets the noise of iteration 1.

`metrics()` reports `noise_std` (the executed noise's per-dimension standard deviation, averaged over
dimensions) and `learner_error_std` (the same for Sigma_hat_i, before scaling), in scaled units.

Discrete actions (`dagger.actions.DiscreteActions`): the noise is epsilon-random, each executed choice replaced by
a uniform one with probability epsilon_i. Its closed form is the same maximum-likelihood fit: an epsilon-random
expert over n choices differs from its clean choice with probability eps (1 - 1/n), so

    eps_hat_i = min(1, r_i n / (n - 1)),   r_i = the share of D where pi_hat_i(s) differs from a
    eps_i     = min(1, noise_scale * eps_hat_i)   (total_variance: eps_i = min(1, noise_scale * total_variance))

and `initial_std` is iteration 1's epsilon. `noise_std` and `learner_error_std` report eps_i and eps_hat_i.

Reads (students that see less, `dagger.views`): the expert acts and labels on the full state; the noise is fitted
from the learner's actions on the student's views in D.
"""
from __future__ import annotations

from typing import Annotated

import numpy as np
import torch

from dagger.schemas import BOOLEAN, Help, number
from dagger.policy.carried import actions_over
from dagger.actions import actions_of
from dagger.policy import Learner
from dagger.supervisors import Act, Decision, Supervisor



class DART(Supervisor):
    """The expert acts with Gaussian noise fitted to the learner's error; every state gets the clean label."""

    def __init__(self, action_space,
                 noise_scale: Annotated[float, number(low=0), Help(
                     "Sigma_i = noise_scale x the second moment of the learner's scaled error on D")] = 1.0,
                 initial_std: Annotated[float, number(low=0), Help(
                     "noise std (scaled units) while D is empty; 0: iteration 1 is a clean demonstration")] = 0.0,
                 total_variance: Annotated[Annotated[float, number(above=0)] | None,
                                           Help("the paper's alpha / T: rescale Sigma to this trace (null: the estimate's own)")] = None,
                 diagonal: Annotated[bool, BOOLEAN, Help("keep only the per-dimension variances of Sigma")] = False,
                 **_context):
        self.actions = actions_of(action_space)
        self.noise_scale, self.initial_std = float(noise_scale), float(initial_std)
        self.total_variance = None if total_variance is None else float(total_variance)
        self.diagonal = bool(diagonal)
        dim = self.actions.width
        self.error_cov = np.zeros((dim, dim))  # Sigma_hat_i (scaled units)
        self._set_cov(self.initial_noise())

    # ---- the noise ------------------------------------------------------------------------------

    def initial_noise(self) -> np.ndarray:
        """Sigma while D is empty: initial_std^2 I (for discrete choices, epsilon = initial_std)."""
        dim = self.actions.width
        return (self.initial_std if self.actions.discrete else self.initial_std ** 2) * np.eye(dim)

    def spread(self, cov: np.ndarray) -> float:
        """What `metrics` reports of a Sigma: the mean per-dimension std (for discrete choices, epsilon)."""
        return float(cov[0, 0]) if self.actions.discrete else float(np.sqrt(np.diag(cov)).mean())

    def _set_cov(self, cov: np.ndarray) -> None:
        """Sigma_i, and a factor A with A A^T = Sigma_i for drawing eps = A z, z ~ N(0, I)."""
        cov = (cov + cov.T) / 2
        if self.diagonal:
            cov = np.diag(np.diag(cov))
        self.cov = cov
        values, vectors = np.linalg.eigh(cov)  # PSD but possibly singular: no Cholesky
        self.factor = vectors * np.sqrt(np.clip(values, 0.0, None))

    def learner_error(self, learner, data) -> np.ndarray:
        """Sigma_hat = mean over D of e e^T, e = (pi_hat(s) - a) / h, in scaled units; for discrete choices, the
        epsilon under which an epsilon-random expert errs as often as the learner (a 1 x 1 matrix)."""
        dim = self.actions.width
        total = np.zeros((dim, dim))
        labels = data.acts
        for part, predicted in actions_over(learner, data):  # a recurrent learner replays D's episodes
            acts = labels[part]
            if self.actions.discrete:
                total += self.actions.gap(predicted, acts).sum()
                continue
            err = (np.asarray(predicted, dtype=np.float64) - acts) / self.actions.half
            total += err.T @ err
        if self.actions.discrete:  # an epsilon-random choice differs from the expert's with p = eps (1 - 1/n)
            return np.minimum(total / len(data) * self.actions.n / (self.actions.n - 1), 1.0)
        return total / len(data)

    def begin(self, iteration: int, learner, data) -> None:
        dim = self.actions.width
        if len(data) == 0:  # nothing to measure the learner on yet
            self.error_cov = np.zeros((dim, dim))
            self._set_cov(self.initial_noise())
            return
        self.error_cov = self.learner_error(learner, data)
        cov = self.error_cov
        if self.total_variance is not None:
            trace = float(np.trace(cov))
            cov = cov * (self.total_variance / trace) if trace > 0 else self.total_variance / dim * np.eye(dim)
        self._set_cov(self.noise_scale * cov)

    # ---- collection ----------------------------------------------------------------------------

    def decide(self, obs: np.ndarray, learner: Learner, expert: Act, rng: np.random.Generator,
               state: np.ndarray | None = None) -> Decision:
        state = obs if state is None else state  # the expert reads the full state, the learner its view
        labels = np.asarray(expert(state))
        n = len(obs)
        if np.any(self.factor) and self.actions.discrete:
            actions = self.actions.noisy(labels, float(self.cov[0, 0]), rng)
        elif np.any(self.factor):
            eps = rng.standard_normal((n, self.actions.width)) @ self.factor.T
            actions = np.clip(labels + eps * self.actions.half, self.actions.low, self.actions.high).astype(labels.dtype)
        else:
            actions = labels
        everyone = np.ones(n, dtype=bool)
        return Decision(actions, everyone, everyone, labels, queries=n)

    def metrics(self) -> dict[str, float]:
        return {"noise_std": self.spread(self.cov), "learner_error_std": self.spread(self.error_cov)}

    # ---- checkpoint: Sigma is recomputed in `begin`, kept so a checkpoint shows the noise used --

    def state_dict(self) -> dict:
        return {"cov": torch.from_numpy(self.cov.copy()), "error_cov": torch.from_numpy(self.error_cov.copy())}

    def load_state_dict(self, state: dict) -> None:
        if "cov" in state:
            self.error_cov = state["error_cov"].numpy().copy()
            self._set_cov(state["cov"].numpy().copy())
