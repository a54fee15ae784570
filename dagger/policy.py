"""The learner: an MLP policy fitted to the aggregated dataset by supervised learning.

Two losses: `mse` (a deterministic MLP, as in the seed) and `gaussian` (a Gaussian MLP trained
by negative log-likelihood, acting with its mean). Observations are standardised with the
dataset's statistics at every fit; actions are scaled to [-1, 1] using the env's action bounds.

`policy=ensemble` (`policy.members` K >= 1) is K such learners, each fitted on its own bootstrap
resample of D: it acts with the members' mean action and reports their spread as its uncertainty.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from dagger.data import Dataset

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU}
LOSSES = ("mse", "gaussian")
LR_SCHEDULES = ("constant", "cosine")


def cosine_lr(lr: float, step: int, steps: int) -> float:
    """The learning rate of minibatch `step` of `steps`, annealed from lr to 0 along half a cosine."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / steps))


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


PREDICT_CHUNK = 65_536  # states per forward pass when a network predicts on many states (D, held-out sets)


class MLPPolicy(nn.Module):
    """obs -> action, with observation standardisation and action scaling built in."""

    def __init__(self, obs_dim: int, act_low: np.ndarray, act_high: np.ndarray, hidden: list[int],
                 activation: str = "relu", loss: str = "mse"):
        super().__init__()
        act_dim = len(act_low)
        self.loss_kind = loss
        self.net = mlp([obs_dim, *hidden, act_dim * (2 if loss == "gaussian" else 1)], activation)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        self.register_buffer("act_mid", torch.as_tensor((act_high + act_low) / 2, dtype=torch.float32))
        self.register_buffer("act_half", torch.as_tensor((act_high - act_low) / 2, dtype=torch.float32))

    def set_obs_stats(self, obs: np.ndarray) -> None:
        self.obs_mean.copy_(torch.as_tensor(obs.mean(0)))
        self.obs_std.copy_(torch.as_tensor(obs.std(0) + 1e-6))

    def standardize(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def scale(self, acts: torch.Tensor) -> torch.Tensor:
        """Actions in scaled units: the env's bounds map to [-1, 1]."""
        return (acts - self.act_mid) / self.act_half

    def _heads(self, standardized_obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        out = self.net(standardized_obs)
        if self.loss_kind == "gaussian":
            mean, log_std = out.chunk(2, dim=-1)
            return mean, log_std.clamp(-5.0, 2.0)
        return out, None

    def loss(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """MSE, or Gaussian negative log-likelihood per action dimension, in scaled action units."""
        return self.scaled_loss(self.standardize(obs), self.scale(acts))

    def scaled_loss(self, standardized_obs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`loss` on inputs already standardised and targets already scaled (the fit does both once)."""
        mean, log_std = self._heads(standardized_obs)
        if log_std is None:
            return ((mean - target) ** 2).mean()
        return (0.5 * ((target - mean) / log_std.exp()) ** 2 + log_std + 0.5 * math.log(2 * math.pi)).mean()

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action (the mean) for a batch of observations, clipped to the bounds."""
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.obs_mean.device)
        mean, _ = self._heads(self.standardize(obs_t))
        return (mean.clamp(-1.0, 1.0) * self.act_half + self.act_mid).cpu().numpy()


class Learner:
    """The policy plus its optimiser and fit budget: `fit(D)` is one supervised-learning phase."""

    def __init__(self, obs_dim: int, act_low: np.ndarray, act_high: np.ndarray, *, hidden: list[int],
                 activation: str, loss: str, lr: float, batch_size: int, gradient_steps: int,
                 warm_start: bool, weight_decay: float = 0.0, epochs: float = 0.0, lr_schedule: str = "constant",
                 device: str = "cpu"):
        self.make_policy = lambda: MLPPolicy(obs_dim, act_low, act_high, hidden, activation, loss).to(device)
        self.lr, self.weight_decay, self.lr_schedule = lr, weight_decay, lr_schedule
        self.batch_size, self.gradient_steps, self.epochs = batch_size, gradient_steps, epochs
        self.warm_start = warm_start
        self.device = device
        self.policy = self.make_policy()
        self.optimizer = self._new_optimizer()

    def _new_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.policy.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=True)

    def fit_steps(self, n: int) -> int:
        """Minibatches in a fit on n labels: at least `gradient_steps`, and at least `epochs` passes over them."""
        return max(self.gradient_steps, math.ceil(self.epochs * n / self.batch_size))

    def lr_at(self, step: int, steps: int) -> float:
        """The learning rate of minibatch `step` of `steps`: constant, or cosine-annealed from lr to 0 in each fit."""
        return cosine_lr(self.lr, step, steps) if self.lr_schedule == "cosine" else self.lr

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.policy.act(obs)

    def fit(self, data: Dataset, generator: torch.Generator) -> dict[str, float]:
        """Train on all of D for `fit_steps(|D|)` minibatches; returns the mean loss of the last 10% and the count."""
        if not self.warm_start:  # retrain from scratch, the fresh weights drawn from `generator`
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            self.policy = self.make_policy()
            self.optimizer = self._new_optimizer()
        self.policy.set_obs_stats(data.obs)
        with torch.no_grad():  # once per fit, not per minibatch (the same numbers either way)
            obs = self.policy.standardize(torch.as_tensor(data.obs, device=self.device))
            targets = self.policy.scale(torch.as_tensor(data.acts, device=self.device))
        steps = self.fit_steps(len(data))
        tail = max(1, steps // 10)
        losses = torch.zeros(tail, device=self.device)
        for step in range(steps):
            for group in self.optimizer.param_groups:
                group["lr"] = self.lr_at(step, steps)
            idx = torch.randint(len(data), (self.batch_size,), generator=generator).to(self.device)
            loss = self.policy.scaled_loss(obs[idx], targets[idx])
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            if step >= steps - tail:
                losses[step - (steps - tail)] = loss.detach()
        return {"train_loss": float(losses.mean()), "gradient_steps": steps}

    def uncertainty(self, obs: np.ndarray) -> np.ndarray | None:
        """Per-state uncertainty of the action (None: this learner has no notion of it)."""
        return None

    def policy_state_dict(self) -> dict:
        """The weights that act (saved as learner.pt)."""
        return self.policy.state_dict()

    def state_dict(self) -> dict:
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])


class EnsembleLearner:
    """K `Learner`s (the members), each fitted on a bootstrap resample of D with the MLP learner's budget.

    It acts with the members' mean action, mu(s) = 1/K sum_k a_k(s), and its uncertainty is their
    spread in scaled action units ([-1, 1] per dimension):

        sigma(s) = 1/d sum_j std_k(a_kj(s))     (std over the K members, population form; mean over the d action dims)

    a_k(s) is the action member k would take, clipped to the bounds like every action: members that all
    saturate at the same bound agree on what is done there.

    The members differ by their initial weights (drawn one after another from torch's global generator)
    and by their resamples (`bootstrap`: n indices drawn with replacement from the fit's generator).
    """

    def __init__(self, members: int, bootstrap: bool, obs_dim: int, act_low: np.ndarray, act_high: np.ndarray,
                 **learner_kwargs):
        self.members = [Learner(obs_dim, act_low, act_high, **learner_kwargs) for _ in range(members)]
        self.bootstrap = bootstrap
        self.act_mid = np.asarray((act_high + act_low) / 2, dtype=np.float32)
        self.act_half = np.asarray((act_high - act_low) / 2, dtype=np.float32)

    def scaled_member_actions(self, obs: np.ndarray) -> np.ndarray:
        """Every member's action in scaled units, (K, n, act_dim)."""
        return np.stack([(m.act(obs) - self.act_mid) / self.act_half for m in self.members])

    def act(self, obs: np.ndarray) -> np.ndarray:
        """The members' mean action (within the bounds, as each member's is)."""
        return self.scaled_member_actions(obs).mean(0) * self.act_half + self.act_mid

    def uncertainty(self, obs: np.ndarray) -> np.ndarray:
        """sigma(s) per state, (n,): the std across members, averaged over the action dimensions."""
        return self.scaled_member_actions(obs).std(0).mean(-1)

    def act_and_uncertainty(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`act(obs)` and `uncertainty(obs)` from one pass of the members (the gates need both at every step)."""
        scaled = self.scaled_member_actions(obs)
        return scaled.mean(0) * self.act_half + self.act_mid, scaled.std(0).mean(-1)

    def fit(self, data: Dataset, generator: torch.Generator) -> dict[str, float]:
        """Each member fits its own resample of D (or D itself) with its own generator seeded from `generator`."""
        losses = []
        for member in self.members:
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
            own = torch.Generator().manual_seed(seed)
            fitted = member.fit(self._resample(data, own) if self.bootstrap else data, own)
            losses.append(fitted["train_loss"])
        return {"train_loss": float(np.mean(losses)), "gradient_steps": fitted["gradient_steps"],
                "ensemble_spread": float(self._spread_on(data))}

    @staticmethod
    def _resample(data: Dataset, generator: torch.Generator) -> Dataset:
        idx = torch.randint(len(data), (len(data),), generator=generator).numpy()
        sample = Dataset(data.obs.shape[1], data.acts.shape[1], capacity=max(1, len(data)))
        sample.add(data.obs[idx], data.acts[idx])
        return sample

    def _spread_on(self, data: Dataset, chunk: int = PREDICT_CHUNK) -> float:
        """Mean sigma(s) over the states of D."""
        total = sum(float(self.uncertainty(data.obs[i:i + chunk]).sum()) for i in range(0, len(data), chunk))
        return total / max(1, len(data))

    def policy_state_dict(self) -> dict:
        """The weights that act (saved as learner.pt), keyed `<member>.<parameter>` like an nn.ModuleList."""
        return {f"{k}.{name}": value for k, member in enumerate(self.members)
                for name, value in member.policy_state_dict().items()}

    def state_dict(self) -> dict:
        return {"members": [m.state_dict() for m in self.members]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["members"]) != len(self.members):
            raise ValueError(f"the saved ensemble has {len(state['members'])} members, this one {len(self.members)}")
        for member, saved in zip(self.members, state["members"]):
            member.load_state_dict(saved)


def build_learner(policy_cfg, observation_space, action_space, device: str) -> Learner | EnsembleLearner:
    """The learner described by the `policy` config group: an ensemble when it sets `members`."""
    from dagger.config import ConfigError

    if policy_cfg.loss not in LOSSES:
        raise ConfigError(f"policy.loss={policy_cfg.loss!r} is not one of {', '.join(LOSSES)}")
    if policy_cfg.activation not in ACTIVATIONS:
        raise ConfigError(f"policy.activation={policy_cfg.activation!r} is not one of {', '.join(ACTIVATIONS)}")
    if policy_cfg.lr_schedule not in LR_SCHEDULES:
        raise ConfigError(f"policy.lr_schedule={policy_cfg.lr_schedule!r} is not one of {', '.join(LR_SCHEDULES)}")
    kwargs = dict(hidden=list(policy_cfg.hidden), activation=policy_cfg.activation, loss=policy_cfg.loss,
                  lr=float(policy_cfg.lr), batch_size=int(policy_cfg.batch_size),
                  gradient_steps=int(policy_cfg.gradient_steps), warm_start=bool(policy_cfg.warm_start),
                  weight_decay=float(policy_cfg.weight_decay), epochs=float(policy_cfg.epochs),
                  lr_schedule=str(policy_cfg.lr_schedule), device=device)
    if "members" in policy_cfg:
        return EnsembleLearner(int(policy_cfg.members), bool(policy_cfg.get("bootstrap", True)),
                               observation_space.shape[0], action_space.low, action_space.high, **kwargs)
    if "bootstrap" in policy_cfg:
        raise ConfigError("policy.bootstrap applies to an ensemble only: use policy=ensemble (or set policy.members)")
    return Learner(observation_space.shape[0], action_space.low, action_space.high, **kwargs)
