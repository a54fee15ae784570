"""The learned gates of SafeDAgger, LazyDAgger and ThriftyDAgger: a safety classifier and a risk critic.

Both are small MLPs (`dagger.policy.fitting.mlp`) refitted from scratch before every iteration (their supervisor's
`begin`) for `algo.gate_minibatches` Adam minibatches (500 by default; the papers leave the fit open), with fresh
weights drawn from a generator seeded by the run's seed and the iteration, so a resumed run refits them to the very
same weights and they need no checkpoint. Inputs are standardised with the
statistics of the states they are fitted on; actions enter in scaled units ((a - mid) / half).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from dagger.actions import Actions
from dagger.policy.fitting import chunks, cosine_lr, minibatch_steps, mlp

HIDDEN = [128, 128]
MINIBATCHES = 500    # per fit, by default (`algo.gate_minibatches`)
BATCH = 256
LR = 1e-3


def seeded(seed: int, iteration: int, what: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(np.random.SeedSequence([seed, iteration, what]).generate_state(1)[0]))


class Standardized(nn.Module):
    """x -> net((x - mean) / std), with the statistics of the inputs it was fitted on."""

    def __init__(self, in_dim: int, generator: torch.Generator):
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            self.net = mlp([in_dim, *HIDDEN, 1], "relu")
        self.register_buffer("mean", torch.zeros(in_dim))
        self.register_buffer("std", torch.ones(in_dim))

    def set_stats(self, x: torch.Tensor) -> None:
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0, unbiased=False) + 1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x - self.mean) / self.std).squeeze(-1)

    def fit(self, x: torch.Tensor, target: torch.Tensor, loss, generator: torch.Generator, steps: int) -> float:
        """`steps` Adam minibatches of `loss(logits, target)`, cosine-annealed; the mean loss of the last tenth."""
        def batch_loss() -> torch.Tensor:
            idx = torch.randint(len(x), (BATCH,), generator=generator)
            return loss(self(x[idx]), target[idx])

        optimizer = torch.optim.Adam(self.net.parameters(), lr=LR)
        tail = minibatch_steps(optimizer, steps, lambda step: cosine_lr(LR, step, steps), batch_loss)
        return float(np.mean(tail.tolist()))

    @torch.no_grad()
    def predict(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)  # made float32 a chunk at a time (camera frames are stored as uint8)
        return torch.cat([torch.sigmoid(self(torch.as_tensor(x[part], dtype=torch.float32)))
                          for part in chunks(len(x), x.shape[1])]).numpy()


class SafetyClassifier:
    """SafeDAgger's safety policy: p(s) = P(the learner's action at s is more than tau away from the expert's).

    Fitted on D: the target of (s, a*) is 1[g(pi_hat(s), a*) > tau] with g the RMS scaled action gap (or, on
    discrete actions, 1 where the choices differ: `dagger.actions`), by binary cross-entropy weighted so that both
    classes count equally (unsafe states are rare on the data the learner was fitted on). Unsafe where p(s) > 0.5."""

    def __init__(self, obs_dim: int, generator: torch.Generator, minibatches: int = MINIBATCHES):
        self.model = Standardized(obs_dim, generator)
        self.generator, self.minibatches = generator, minibatches

    def fit(self, obs: np.ndarray, unsafe: np.ndarray) -> dict[str, float]:
        x, y = torch.as_tensor(obs, dtype=torch.float32), torch.as_tensor(unsafe, dtype=torch.float32)
        self.model.set_stats(x)
        positives = float(y.sum())
        weight = torch.tensor((len(y) - positives) / positives if 0 < positives < len(y) else 1.0)
        loss = nn.BCEWithLogitsLoss(pos_weight=weight)
        return {"classifier_loss": self.model.fit(x, y, loss, self.generator, self.minibatches),
                "recorded_unsafe_fraction": positives / len(y)}

    def unsafe_probability(self, obs: np.ndarray) -> np.ndarray:
        return self.model.predict(obs)


class RiskCritic:
    """ThriftyDAgger's risk: Q_R(s, a), the discounted probability that the learner, taking a at s and
    acting itself afterwards, ends in failure (a termination), learned by fitted Q-iteration on transitions:

        y(s, a, s') = 1                           if the step terminated (failure)
                      gamma * Q_R(s', pi_hat(s'))  otherwise (a truncation is not a failure: bootstrap)

    `rounds` times: compute the targets with the current Q_R, then fit Q_R to them (binary cross-entropy
    on sigmoid outputs: every target is a probability)."""

    def __init__(self, obs_dim: int, actions: Actions, gamma: float, generator: torch.Generator, rounds: int = 4,
                 minibatches: int = MINIBATCHES):
        self.model = Standardized(obs_dim + actions.head, generator)
        self.actions = actions
        self.gamma, self.rounds, self.generator, self.minibatches = gamma, rounds, generator, minibatches

    def inputs(self, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        return np.concatenate([np.asarray(obs, np.float32), self.actions.features(acts)], -1)

    def fit(self, transitions, learner_act) -> dict[str, float]:
        x = torch.as_tensor(self.inputs(transitions["obs"], transitions["acts"]))
        self.model.set_stats(x)
        next_in = self.inputs(transitions["next_obs"], learner_act(transitions["next_obs"]))
        failed = torch.as_tensor(transitions["terminated"], dtype=torch.float32)
        loss = nn.BCEWithLogitsLoss()
        value = float("nan")
        for _ in range(self.rounds):
            target = failed + (1 - failed) * self.gamma * torch.as_tensor(self.model.predict(next_in))
            value = self.model.fit(x, target, loss, self.generator, self.minibatches)
        return {"risk_loss": value, "failure_fraction": float(failed.mean())}

    def risk(self, obs: np.ndarray, acts: np.ndarray) -> np.ndarray:
        return self.model.predict(self.inputs(obs, acts))
