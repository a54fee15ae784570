"""The recurrent student (`policy=gru`): a GRU over the student's last K views (Cho et al. 2014, "Learning Phrase
Representations using RNN Encoder-Decoder"), for students that must infer what they do not see (velocities,
noise-free states) from how their observations change.

The view stacks the last K views (`obs.history` = K; `dagger.views`), restarted at every episode's start and
advanced at every step whoever acts, and the GRU reads that window as a sequence:

    h_0 = 0,   h_k = GRU(h_{k-1}, f_{t-K+k})   for k = 1..K,     a_t = head([h_K, a_{t-1}])

(with `obs.actions`, the previous executed action joins the GRU's last output). It is fitted like the MLP
(`dagger.policy.mlp`: the same loss, minibatches, learning-rate schedule, warm start and averaging), each D row
being one window, so back-propagation runs through its K steps (truncated BPTT on segments of K steps ending at
each labelled state).

Choice where the literature leaves one open: the hidden state is recomputed from the window at every step rather
than carried through the episode, so the learner acts on exactly the context it was trained on (robomimic's RNN
policies carry it and reset it every `horizon` steps instead). The window and the previous action live in the
view, so every batched call over D (DART's noise, the gates' training) stays valid and a checkpoint holds the
window. The window is `obs.history` views; where the view keeps one (`obs.history=1`, the default), the GRU
gets a window of `GRULearner.WINDOW` = 8 views (the student_view sweep's better length for the GRU).

`policy=gru_ensemble` makes K such GRU students the members of the ensemble learner (`dagger.policy.ensemble`: the
mean action acts, the members' spread is the uncertainty EnsembleDAgger and ThriftyDAgger read).
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import gymnasium as gym
import torch
from torch import nn

from dagger.actions import actions_of
from dagger.config import ConfigError
from dagger.schemas import BOOLEAN, COUNT, Help
from dagger.policy.ensemble import EnsembleConfig, EnsembleLearner
from dagger.policy.fitting import mlp
from dagger.policy.mlp import MLPConfig, MLPLearner
from dagger.views import ViewConfig


class GRUConfig(MLPConfig):
    """`policy=gru`: the MLP's fit keys, the GRU's width, and the view's layout (conf/policy/gru.yaml reads
    `steps` and `actions` from the obs group)."""

    gru_size: Annotated[int, COUNT, Help("the GRU's hidden units")]
    steps: Annotated[int, COUNT, Help("K: the views in a window (obs.history; 8 where that is 1)")]
    actions: Annotated[bool, BOOLEAN, Help("the window ends with the previous action (obs.actions)")]


class WindowGRU(nn.Module):
    """[f_1, ..., f_K, extra] (flat) -> GRU over f_1..f_K -> head([h_K, extra])."""

    def __init__(self, steps: int, feature_dim: int, extra: int, gru_size: int, hidden: list[int], activation: str,
                 out_dim: int):
        super().__init__()
        self.steps, self.feature_dim = steps, feature_dim
        self.gru = nn.GRU(feature_dim, gru_size, batch_first=True)
        self.head = mlp([gru_size + extra, *hidden, out_dim], activation)

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        window = flat[:, :self.steps * self.feature_dim].reshape(len(flat), self.steps, self.feature_dim)
        outputs, _ = self.gru(window)
        return self.head(torch.cat([outputs[:, -1], flat[:, self.steps * self.feature_dim:]], dim=1))


class GRULearner(MLPLearner):
    """The MLP learner with a GRU over the view's window in place of the MLP's first layers."""

    Config = GRUConfig
    WINDOW = 8  # the views a GRU reads where the view keeps one (obs.history=1, the default)

    @classmethod
    def with_window(cls, cfg: GRUConfig, obs: ViewConfig) -> tuple[GRUConfig, ViewConfig]:
        """The learner's and the view's configs, the view keeping the GRU's window: `obs.history` views, or WINDOW
        where it keeps one (`policy.steps` follows obs.history unless set apart)."""
        if obs.history > 1 or cfg.steps > 1:
            return cfg, obs
        return cfg.model_copy(update={"steps": cls.WINDOW}), obs.model_copy(update={"history": cls.WINDOW})

    def __init__(self, cfg: GRUConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                 device: str = "cpu"):
        extra = actions_of(action_space).head if cfg.actions else 0  # a discrete choice is seen one-hot
        width = observation_space.shape[0] - extra
        if cfg.steps < 2 or width % cfg.steps:
            raise ConfigError(f"policy.steps={cfg.steps} must be >= 2 (the GRU reads a window of views as a sequence)"
                              if cfg.steps < 2 else f"policy.steps={cfg.steps} does not divide the view's width {width}")
        self.layout = (cfg.steps, width // cfg.steps, extra)
        super().__init__(cfg, observation_space, action_space, device)

    def network(self) -> Callable[[int, int], nn.Module]:
        steps, feature_dim, extra = self.layout
        return lambda obs_dim, out_dim: WindowGRU(steps, feature_dim, extra, self.cfg.gru_size, self.cfg.hidden,
                                                  self.cfg.activation, out_dim)


class GRUEnsembleConfig(GRUConfig, EnsembleConfig):
    """`policy=gru_ensemble`: the GRU's keys (per member) and the ensemble's (members, bootstrap)."""


class GRUEnsembleLearner(EnsembleLearner):
    """An ensemble whose members are GRU students."""

    Config = GRUEnsembleConfig
    Member = GRULearner
