"""What every network here is built and fitted with: an MLP, and Adam minibatch steps with a per-step learning rate."""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Literal, get_args

import torch
from torch import nn

Activation = Literal["relu", "tanh", "elu"]  # the `policy.activation` options
ACTIVATIONS = dict(zip(get_args(Activation), (nn.ReLU, nn.Tanh, nn.ELU)))
PREDICT_CHUNK = 65_536  # states per forward pass when a network predicts on many states (D, held-out sets) ...
PREDICT_NUMBERS = 2**24  # ... and at most this many inputs (rows of camera frames are thousands wide)


def chunks(n: int, width: int = 1) -> list[slice]:
    """The rows 0..n-1 of `width` inputs each, a chunk at a time (at least one slice): a network predicting on many
    states (D, held-out sets) holds one chunk's activations at a time."""
    size = min(PREDICT_CHUNK, max(1, PREDICT_NUMBERS // width))
    return [slice(start, start + size) for start in range(0, max(1, n), size)]


def mlp(sizes: list[int], activation: str) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


def cosine_lr(lr: float, step: int, steps: int) -> float:
    """The learning rate of minibatch `step` of `steps`, annealed from lr to 0 along half a cosine."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / steps))


def minibatch_steps(optimizer: torch.optim.Optimizer, steps: int, lr_at: Callable[[int], float],
                    batch_loss: Callable[[], torch.Tensor],
                    after_step: Callable[[], None] | None = None) -> torch.Tensor:
    """`steps` optimiser steps on `batch_loss()` (a fresh minibatch each), the learning rate `lr_at(step)`, then
    `after_step()` (if given); returns the losses of the last tenth of the steps (at least one)."""
    tail = max(1, steps // 10)
    losses = torch.zeros(tail)
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        loss = batch_loss()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        if step >= steps - tail:
            losses[step - (steps - tail)] = loss.detach()
    return losses
