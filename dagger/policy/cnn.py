"""The pixel student (`policy=cnn`): a convolutional encoder of the camera frames feeding the MLP head, for students
that see the task through a camera (`obs=pixels`, `dagger.views`) while the expert reads the full state.

The encoder is DrQ's (Kostrikov, Yarats & Fergus 2021, "Image Augmentation Is All You Need"): 3x3 filters, 32
channels, ReLUs, then a linear layer of `features` units, layer-normalised and squashed by tanh; it reads the last
K frames stacked as 3K channels (`obs.history` = K). The vector part (`obs.proprio`) and the previous action
(`obs.actions`) join its features before the head:

    a = head([tanh(LayerNorm(W conv(frames_{t-K+1..t} / 255 - 0.5))), vector_{t-K+1..t}, a_{t-1}])

It is fitted like the MLP (`dagger.policy.mlp`: the same loss, minibatches, learning-rate schedule, warm start and
averaging; `policy.epochs` and `gradient_steps` have their own defaults in conf/policy/cnn.yaml, since a
minibatch of frames costs far more). With `augment: p > 0` every minibatch's frames are shifted at random by up to
p pixels each way (DrQ's random shift): the frames are padded by p with their edge pixels and cropped back at a
uniformly drawn offset, the same offset for the K frames of one sample, drawn from the fit's generator. The policy
acts on the frames as they are.

Choices where the papers leave one open: three conv layers with strides 2, 2, 1 (DrQ has four, strides 2, 1, 1, 1,
at 84x84; the second stride halves the CPU cost at 64x64). The DQN encoder CS285 uses (Mnih et al. 2015: 8x8
filters with stride 4 first) was tried first: fitted on 2,000 InvertedPendulum frames for 1,500 minibatches it
did not learn the pole's angle at all (held-out error at the labels' variance), where this one reached 1% of it
in 500. `policy=cnn_ensemble` makes K such students the members of the ensemble learner (`dagger.policy.ensemble`).

The recurrent head (`policy=cnn_gru`, `gru_size` > 0) encodes each of the K frames alone with the same encoder and
runs a GRU (Cho et al. 2014) over their features, each view's vector beside its frame, the head reading its last
state and the previous action: the window GRU of `dagger.policy.recurrent`, on frames.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from dagger.config import ConfigError
from dagger.policy.ensemble import EnsembleConfig, EnsembleLearner
from dagger.policy.fitting import mlp
from dagger.policy.mlp import MLPConfig, MLPLearner
from dagger.policy.recurrent import WindowGRU
from dagger.schemas import COUNT, Help, integer


class CNNConfig(MLPConfig):
    """`policy=cnn`: the MLP's keys (its `hidden` layers are the head's), the encoder's width and the augmentation."""

    features: Annotated[int, COUNT, Help("the encoder's output units")]
    augment: Annotated[int, integer(0, 16), Help("random shift of the frames by up to this many pixels (0: none)")]
    gru_size: Annotated[int, integer(0, 4096), Help("0: the frames stacked as channels; n: a GRU of n units reads "
                                                    "them one after another")]


class Layout:
    """Where the frames are in a row of the student's view (`dagger.views.FrameSpace`): `history` blocks of
    [frame (3, height, width) flattened, `vector` numbers], then `extra` numbers (the previous action)."""

    def __init__(self, space: gym.spaces.Box):
        from dagger.views import FrameSpace

        if not isinstance(space, FrameSpace):
            raise ConfigError("policy=cnn reads camera frames, and this student sees a vector: use obs=pixels "
                              "(or a vector learner, e.g. policy=mlp)")
        self.frame, self.history, self.vector, self.extra = space.frame, space.history, space.vector, space.extra
        self.pixels = int(np.prod(self.frame))
        self.block = self.pixels + self.vector

    def pixel_columns(self) -> np.ndarray:
        """True at the columns of a row that are frame pixels."""
        block = np.r_[np.ones(self.pixels, bool), np.zeros(self.vector, bool)]
        return np.r_[np.tile(block, self.history), np.zeros(self.extra, bool)]

    def split(self, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Rows -> the frames as (n, 3K, height, width) channels, and the numbers beside them
        (n, K * vector + extra)."""
        n, (channels, height, width) = len(rows), self.frame
        if not self.vector and not self.extra:  # frames alone: a view of the rows, no copy
            return rows.reshape(n, self.history * channels, height, width), rows[:, :0]
        blocks = rows[:, :self.history * self.block].reshape(n, self.history, self.block)
        frames = blocks[:, :, :self.pixels].reshape(n, self.history * channels, height, width)
        numbers = torch.cat([blocks[:, :, self.pixels:].reshape(n, -1), rows[:, self.history * self.block:]], dim=1)
        return frames, numbers

    def join(self, frames: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """`split`'s inverse."""
        n = len(frames)
        if not self.vector and not self.extra:
            return frames.reshape(n, -1)
        vectors = numbers[:, :self.history * self.vector].reshape(n, self.history, self.vector)
        blocks = torch.cat([frames.reshape(n, self.history, self.pixels), vectors], dim=2).reshape(n, -1)
        return torch.cat([blocks, numbers[:, self.history * self.vector:]], dim=1)


class FrameNet(nn.Module):
    """Rows of the student's view -> the action head: the conv encoder on the frames, the head on its features and
    the numbers beside them. With `gru_size` > 0 the encoder reads one frame at a time and a GRU reads the K frames'
    features (and each view's vector) in order, the head its last state and the previous action."""

    def __init__(self, layout: Layout, features: int, hidden: list[int], activation: str, out_dim: int,
                 gru_size: int = 0):
        super().__init__()
        self.layout, self.recurrent = layout, gru_size > 0
        channels, height, width = layout.frame
        stacked = 1 if self.recurrent else layout.history  # frames per encoder input
        self.encoder = nn.Sequential(
            nn.Conv2d(channels * stacked, 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            flat = self.encoder(torch.zeros(1, channels * stacked, height, width)).shape[1]
        self.project = nn.Sequential(nn.Linear(flat, features), nn.LayerNorm(features), nn.Tanh())
        if self.recurrent:  # the window GRU's network, on each frame's features and vector
            self.window = WindowGRU(layout.history, features + layout.vector, layout.extra, gru_size, hidden,
                                    activation, out_dim)
        else:
            self.head = mlp([features + layout.history * layout.vector + layout.extra, *hidden, out_dim], activation)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        frames, numbers = self.layout.split(rows)
        if not self.recurrent:
            return self.head(torch.cat([self.project(self.encoder(frames)), numbers], dim=1))
        n, (channels, height, width), history = len(rows), self.layout.frame, self.layout.history
        encoded = self.project(self.encoder(frames.reshape(n * history, channels, height, width)))
        vectors = numbers[:, :history * self.layout.vector].reshape(n, history, self.layout.vector)
        steps = torch.cat([encoded.reshape(n, history, -1), vectors], dim=2).reshape(n, -1)
        return self.window(torch.cat([steps, numbers[:, history * self.layout.vector:]], dim=1))


def random_shift(frames: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each sample's frames (n, c, h, w), padded by `pad` edge pixels and cropped back at a random offset."""
    n, _, height, width = frames.shape
    padded = nn.functional.pad(frames, (pad, pad, pad, pad), mode="replicate")
    offsets = torch.randint(2 * pad + 1, (n, 2), generator=generator)
    shifted = torch.empty_like(frames)
    for dy, dx in offsets.unique(dim=0).tolist():  # one slice per offset drawn (at most (2 pad + 1)^2)
        which = ((offsets[:, 0] == dy) & (offsets[:, 1] == dx)).nonzero()[:, 0]
        shifted[which] = padded[which, :, dy:dy + height, dx:dx + width]
    return shifted


class CNNLearner(MLPLearner):
    """The MLP learner with the conv encoder in front of its head, fitted on frames (and their random shifts)."""

    Config = CNNConfig

    def __init__(self, cfg: CNNConfig, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                 device: str = "cpu"):
        self.layout = Layout(observation_space)
        super().__init__(cfg, observation_space, action_space, device)

    def network(self) -> Callable[[int, int], nn.Module]:
        cfg = self.cfg
        return lambda obs_dim, out_dim: FrameNet(self.layout, cfg.features, cfg.hidden, cfg.activation, out_dim,
                                                 cfg.gru_size)

    def pixel_columns(self) -> np.ndarray:
        return self.layout.pixel_columns()

    def augment(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if not self.cfg.augment:
            return batch
        frames, numbers = self.layout.split(batch)
        return self.layout.join(random_shift(frames, self.cfg.augment, generator), numbers)


class CNNEnsembleConfig(CNNConfig, EnsembleConfig):
    """`policy=cnn_ensemble`: the CNN's keys (per member) and the ensemble's (members, bootstrap)."""


class CNNEnsembleLearner(EnsembleLearner):
    """An ensemble whose members are CNN students."""

    Config = CNNEnsembleConfig
    Member = CNNLearner
