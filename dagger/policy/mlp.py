"""The MLP learner: an MLP policy fitted to the aggregated dataset D by supervised learning (the seed's learner).

Each fit is minibatch regression on all of D (Ross et al. 2011 leave the learner open; this is the usual one):

    pi_hat = argmin_theta  1/|D| sum_{(s, a*) in D}  l(pi_theta(s), a*)

with l the squared error in scaled action units (`loss: mse`, u = (a - mid) / half in [-1, 1]), or the Gaussian
negative log-likelihood of a* under N(mu_theta(s), sigma_theta(s)^2) (`loss: gaussian`, acting with the mean mu);
on discrete actions (`dagger.actions`), the cross-entropy of the expert's choice under the network's n logits
(`loss: cross_entropy`, policy=classifier, acting with the most likely choice).
Observations are standardised with D's statistics at every fit. Choices: Adam, `max(gradient_steps,
ceil(epochs |D| / batch_size))` minibatches per fit, the learning rate cosine-annealed to 0 within each fit
(`lr_schedule: cosine`; `constant` keeps it) from lr * lr_decay^(i-1) at the i-th fit (`lr_decay: 1`, the default,
starts every fit from lr), and warm-started from the previous iteration's weights unless `warm_start: false`.

With `ema: d > 0` the learner acts with an exponential moving average of its weights (Polyak averaging), updated
after every minibatch and carried across fits while warm-starting, its decay warmed up as in timm's ModelEmaV2:

    theta_avg <- d_t * theta_avg + (1 - d_t) * theta_t,   d_t = min(d, (1 + t) / (10 + t))

with t the updates since the average began (at the first fit, and again whenever the weights are drawn afresh, from
the weights then). Without the warm-up the first fits' average is mostly the initial weights (0.999^300 = 0.74 after
a 300-minibatch fit): three 128x128 MLPs with d = 0.999 stayed at 0.07-0.13 of the expert for five iterations of
the default walker run. The observation statistics it standardises with are always D's current ones. `ema: 0` acts
with the last iterate, as before.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Annotated, Literal

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from dagger.config import ConfigError
from dagger.schemas import BOOLEAN, COUNT, Help, number
from dagger.data import Labelled, half_memory
from dagger.actions import Actions, actions_of
from dagger.policy import LearnerConfig
from dagger.policy.fitting import Activation, cosine_lr, minibatch_steps, mlp


class MLPConfig(LearnerConfig):
    """`policy=mlp` and `policy=gaussian`: the network and its fit budget."""

    loss: Annotated[Literal["mse", "gaussian", "cross_entropy"], Help(
        "continuous actions: squared error, or the Gaussian likelihood of the label; discrete actions are always "
        "fitted by cross-entropy (the MLP is a classifier)")]
    hidden: Annotated[list[Annotated[int, COUNT]], Help("the hidden layers' widths")]
    activation: Annotated[Activation, Help("the hidden layers' activation")]
    lr: Annotated[float, number(above=0), Help("Adam's learning rate")]
    weight_decay: Annotated[float, number(low=0), Help("Adam's weight decay")]
    batch_size: Annotated[int, COUNT, Help("labels per minibatch")]
    gradient_steps: Annotated[int, COUNT, Help("minibatches per fit, at least ...")]
    epochs: Annotated[float, number(low=0), Help("... and at least this many passes over D")]
    lr_schedule: Annotated[Literal["constant", "cosine"], Help("cosine: annealed from lr to 0 within every fit")]
    lr_decay: Annotated[float, number(high=1, above=0), Help("the i-th fit starts from lr * lr_decay^(i-1)")]
    warm_start: Annotated[bool, BOOLEAN, Help("false: refit from fresh weights every iteration")]
    ema: Annotated[float, number(0, 0.9999), Help("0: act with the fitted weights; d: with their moving average")]


class MLPPolicy(nn.Module):
    """obs -> action, with observation standardisation and action scaling built in; `net` maps the standardised
    observation to the action head (default: an MLP of `hidden` layers)."""

    def __init__(self, obs_dim: int, actions: Actions, hidden: list[int], activation: str = "relu",
                 loss: str = "mse", net: Callable[[int, int], nn.Module] | None = None,
                 pixels: np.ndarray | None = None):
        super().__init__()
        self.loss_kind = loss
        self.pixels = pixels  # which columns are a frame's 0..255 values: standardised as x / 255 - 0.5
        out_dim = actions.head * (2 if loss == "gaussian" else 1)
        self.net = net(obs_dim, out_dim) if net is not None else mlp([obs_dim, *hidden, out_dim], activation)
        self.register_buffer("obs_mean", torch.zeros(obs_dim))
        self.register_buffer("obs_std", torch.ones(obs_dim))
        if actions.discrete:  # a classifier: n logits; its labels are the choices' indices
            self.first_choice = actions.start
        else:
            self.register_buffer("act_mid", torch.as_tensor(actions.mid, dtype=torch.float32))
            self.register_buffer("act_half", torch.as_tensor(actions.half, dtype=torch.float32))

    def set_obs_stats(self, obs: np.ndarray) -> None:
        if self.pixels is None:
            self.obs_mean.copy_(torch.as_tensor(obs.mean(0)))
            self.obs_std.copy_(torch.as_tensor(obs.std(0) + 1e-6))
            return
        numbers = obs[:, ~self.pixels].astype(np.float64)  # the frames' statistics are fixed, not measured on D
        mean, std = np.full(obs.shape[1], 127.5), np.full(obs.shape[1], 255.0)
        mean[~self.pixels], std[~self.pixels] = numbers.mean(0), numbers.std(0) + 1e-6
        self.obs_mean.copy_(torch.as_tensor(mean))
        self.obs_std.copy_(torch.as_tensor(std))

    def standardize(self, obs: torch.Tensor) -> torch.Tensor:
        return (obs - self.obs_mean) / self.obs_std

    def scale(self, acts: torch.Tensor) -> torch.Tensor:
        """Actions in scaled units: the env's bounds map to [-1, 1] (a classifier's: the choice's class index)."""
        if self.loss_kind == "cross_entropy":
            return acts[:, 0].round().long() - self.first_choice
        return (acts - self.act_mid) / self.act_half

    def split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The network's output as the action head's mean (or logits) and, for `loss: gaussian`, its log std."""
        if self.loss_kind == "gaussian":
            mean, log_std = out.chunk(2, dim=-1)
            return mean, log_std.clamp(-5.0, 2.0)
        return out, None

    def loss(self, obs: torch.Tensor, acts: torch.Tensor) -> torch.Tensor:
        """MSE, or Gaussian negative log-likelihood per action dimension, in scaled action units (or the
        cross-entropy of the expert's choice)."""
        return self.scaled_loss(self.standardize(obs), self.scale(acts))

    def scaled_loss(self, standardized_obs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`loss` on inputs already standardised and targets already scaled (the fit does both once)."""
        return self.output_loss(self.net(standardized_obs), target)

    def output_loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """`loss` of the network's outputs `out` (n, out_dim) against scaled targets."""
        mean, log_std = self.split(out)
        if self.loss_kind == "cross_entropy":
            return nn.functional.cross_entropy(mean, target)
        if log_std is None:
            return ((mean - target) ** 2).mean()
        return (0.5 * ((target - mean) / log_std.exp()) ** 2 + log_std + 0.5 * math.log(2 * math.pi)).mean()

    @torch.no_grad()
    def act(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic action (the mean) for a batch of observations, clipped to the bounds; a classifier's most
        likely choice."""
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.obs_mean.device)
        return self.action_of(self.net(self.standardize(obs_t)))

    def action_of(self, out: torch.Tensor) -> np.ndarray:
        """The deterministic action of the network's outputs `out` (n, out_dim): the mean within the bounds, or the
        most likely choice."""
        mean, _ = self.split(out)
        if self.loss_kind == "cross_entropy":
            return (mean.argmax(-1, keepdim=True) + self.first_choice).float().cpu().numpy()
        return (mean.clamp(-1.0, 1.0) * self.act_half + self.act_mid).cpu().numpy()


def loss_for(loss: str, actions: Actions) -> str:
    """The loss the network is fitted with: on discrete actions always cross-entropy (the MLP is a classifier, so
    the default `mse` of every policy option works there too); a Gaussian likelihood, or cross-entropy on
    continuous actions, is refused."""
    if actions.discrete and loss == "gaussian":
        raise ConfigError(f"policy.loss=gaussian fits continuous actions, and this task's are discrete ({actions.n} "
                          "choices), fitted by cross-entropy: use policy.loss=cross_entropy or mse")
    if not actions.discrete and loss == "cross_entropy":
        raise ConfigError("policy.loss=cross_entropy fits discrete choices, and this task's actions are continuous: "
                          "use mse or gaussian")
    return "cross_entropy" if actions.discrete else loss


def check_fits_in_memory(cfg: MLPConfig, obs_dim: int, act_dim: int) -> None:
    """Refuse a network whose weights (with their gradients and Adam's two moments, float32), or a batch size whose
    one minibatch (inputs, every layer's activations and their gradients) would need more than half this machine's
    memory, before any work."""
    sizes, limit = [obs_dim, *cfg.hidden, 2 * act_dim], half_memory()
    weights = 4 * 4 * sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))
    if weights > limit:
        raise ConfigError(f"policy.hidden={cfg.hidden}: the network's weights and optimiser state would need about "
                          f"{weights / 2**30:,.0f} GiB, more than half this machine's {2 * limit / 2**30:.0f} GiB")
    need = 4 * 3 * cfg.batch_size * (obs_dim + 2 * sum(cfg.hidden) + 2 * act_dim)
    if need > limit:
        raise ConfigError(f"policy.batch_size={cfg.batch_size}: one minibatch would need about {need / 2**30:,.0f} GiB, "
                          f"more than half this machine's {2 * limit / 2**30:.0f} GiB")


class MLPLearner:
    """The policy plus its optimiser and fit budget: `fit(D)` is one supervised-learning phase."""

    Config = MLPConfig

    def __init__(self, cfg: MLPConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                 device: str = "cpu"):
        obs_dim, actions = observation_space.shape[0], actions_of(action_space)
        check_fits_in_memory(cfg, obs_dim, actions.head)
        loss = loss_for(cfg.loss, actions)
        self.make_policy = lambda: MLPPolicy(obs_dim, actions, cfg.hidden, cfg.activation, loss,
                                             self.network(), self.pixel_columns()).to(device)
        self.cfg, self.device = cfg, device
        self.policy = self.make_policy()
        self.optimizer = self._new_optimizer()
        self.averaged: MLPPolicy | None = None  # the moving average of the weights (ema > 0), once fitted
        self.averaged_updates = 0  # t: the average's updates since it began (its decay's warm-up)
        self.fits = 0  # fits begun so far: the i-th starts from the rate lr * lr_decay^(i-1)

    def network(self) -> Callable[[int, int], nn.Module] | None:
        """What maps the standardised observation to the action head, given (obs_dim, out_dim): None for the MLP of
        `hidden` layers (a subclass's own network otherwise)."""
        return None

    def pixel_columns(self) -> np.ndarray | None:
        """Which input columns are frame pixels (a subclass's; None: all are numbers, standardised with D's
        statistics)."""
        return None

    def augment(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """A minibatch's inputs as the fit sees them (a subclass's data augmentation; none here): uint8 frames, or
        rows already standardised (a frame's pixels all share one standardisation, so shifting them commutes
        with it)."""
        return batch

    def _new_optimizer(self) -> torch.optim.Optimizer:
        # The rate given here is set again before every minibatch (`lr_at`, by `minibatch_steps`).
        return torch.optim.Adam(self.policy.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay,
                                fused=True)

    def fit_steps(self, n: int) -> int:
        """Minibatches in a fit on n labels: at least `gradient_steps`, and at least `epochs` passes over them."""
        return max(self.cfg.gradient_steps, math.ceil(self.cfg.epochs * n / self.cfg.batch_size))

    def lr_at(self, step: int, steps: int) -> float:
        """The learning rate of minibatch `step` of `steps`: the fit's rate lr * lr_decay^(i-1), constant or
        cosine-annealed from it to 0 within the fit."""
        lr = self.cfg.lr * self.cfg.lr_decay ** (self.fits - 1)
        return cosine_lr(lr, step, steps) if self.cfg.lr_schedule == "cosine" else lr

    def acting(self) -> MLPPolicy:
        """The network that acts: the weights' moving average (ema > 0) once there is one, else the weights."""
        return self.averaged if self.averaged is not None else self.policy

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.acting().act(obs)

    def _average(self) -> None:
        """theta_avg <- d_t * theta_avg + (1 - d_t) * theta, after a minibatch (d_t: the warmed-up decay)."""
        decay = min(self.cfg.ema, (1 + self.averaged_updates) / (10 + self.averaged_updates))
        with torch.no_grad():
            torch._foreach_lerp_(list(self.averaged.net.parameters()), list(self.policy.net.parameters()),
                                 1.0 - decay)
        self.averaged_updates += 1

    def fit(self, data: Labelled, generator: torch.Generator) -> dict[str, float]:
        """Train on all of D for `fit_steps(|D|)` minibatches; returns the mean loss of the last 10% and the count."""
        states = data.obs  # D gathers its labelled rows at each read: once per fit
        self.start_fit(states, generator)
        with torch.no_grad():  # once per fit, not per minibatch (the same numbers either way)
            obs = torch.as_tensor(states, device=self.device)
            frames = obs.dtype == torch.uint8  # frames: standardised per minibatch (all of D as floats is 4x its size)
            obs = obs if frames else self.policy.standardize(obs)
            targets = self.policy.scale(torch.as_tensor(data.acts, device=self.device))
        steps, n, batch = self.fit_steps(len(data)), len(data), self.cfg.batch_size

        def batch_loss() -> torch.Tensor:
            idx = torch.randint(n, (batch,), generator=generator).to(self.device)
            inputs = self.augment(obs[idx], generator)  # frames are shifted as uint8, then standardised
            return self.policy.scaled_loss(self.policy.standardize(inputs) if frames else inputs, targets[idx])

        return {"train_loss": float(self.minibatches(steps, batch_loss).mean()), "gradient_steps": steps}

    def start_fit(self, states: np.ndarray, generator: torch.Generator) -> None:
        """Before a fit on D's rows `states`: fresh weights unless warm-starting (drawn from `generator`), D's
        observation statistics, and the moving average's copy of them."""
        self.fits += 1
        if not self.cfg.warm_start:  # retrain from scratch, the fresh weights drawn from `generator`
            torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
            self.policy = self.make_policy()
            self.optimizer = self._new_optimizer()
            self.averaged = None
        self.policy.set_obs_stats(states)
        if self.cfg.ema > 0:
            if self.averaged is None:
                self.averaged, self.averaged_updates = copy.deepcopy(self.policy), 0
            self.averaged.load_state_dict({**self.averaged.state_dict(), "obs_mean": self.policy.obs_mean,
                                           "obs_std": self.policy.obs_std})

    def minibatches(self, steps: int, batch_loss: Callable[[], torch.Tensor]) -> torch.Tensor:
        """`steps` Adam steps on `batch_loss()` at the fit's learning rates, averaging the weights after each (ema);
        the losses of the last tenth."""
        return minibatch_steps(self.optimizer, steps, lambda step: self.lr_at(step, steps), batch_loss,
                               self._average if self.averaged is not None else None)

    def policy_state_dict(self) -> dict:
        """The weights that act (saved as learner.pt)."""
        return self.acting().state_dict()

    def state_dict(self) -> dict:
        averaged = ({"averaged": self.averaged.state_dict(), "averaged_updates": self.averaged_updates}
                    if self.averaged is not None else {})
        return {"policy": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(), "fits": self.fits,
                **averaged}

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.fits = int(state.get("fits", 0))  # a checkpoint from before the count: its rate never decayed
        self.averaged = None
        if "averaged" in state:
            self.averaged = copy.deepcopy(self.policy)
            self.averaged.load_state_dict(state["averaged"])
            # a checkpoint from before the warm-up goes on with the constant decay it began with
            self.averaged_updates = int(state.get("averaged_updates", 10**9))
