"""Learners with a memory: a recurrent learner carries a hidden state through each episode, so acting is a sequence
of steps from the episode's start, not a function of one observation.

    h_0 = initial_state,   (a_t, h_t) = step(o_t, h_{t-1})   for t = 1, 2, ... of the episode

`Carried` is such a learner in use, with one hidden state per env: every caller that acts with a learner (the
collector, the evaluation, the videos) goes through `acting(learner)`, which is the learner's own `act` for a
stateless learner. The collector advances it at every step whoever acts (the beta mixture's expert steps, DART's
noisy expert, a gate's takeovers), so the hidden state has seen every observation of the episode, and restarts
it where an episode starts. A batched pass over D (DART's noise fit) reads `actions_over(learner, data)`, which
replays D's episodes through a recurrent learner (`replay`) instead of acting on each row alone.
"""
from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from dagger.policy.fitting import chunks


@runtime_checkable
class RecurrentLearner(Protocol):
    """What a learner with a memory has beyond `dagger.policy.Learner`."""

    def initial_state(self, n: int) -> torch.Tensor:
        """The hidden state at an episode's start, for n envs (n, ...)."""

    def step(self, obs: np.ndarray, hidden: torch.Tensor) -> tuple[np.ndarray, torch.Tensor]:
        """One step for n envs: the actions (n, width) as D stores them, and the next hidden state."""

    def replay(self, data) -> np.ndarray:
        """The actions it would have taken at D's labelled steps, each episode of the record (`dagger.data`) replayed
        from its start in order: (|D|, width)."""


class Carried:
    """A recurrent learner acting with one hidden state per env, carried from each episode's start.

    `advance(obs)` is one step of every env (it returns the actions and keeps them: `act(obs)` then gives the same
    actions, so a supervisor reads this step's action as from any learner); `restart(ended)` starts those envs'
    next episodes. Called as a function it is one use that starts every env's episode at its first call (an
    evaluation, a video); a copy starts afresh, with a frozen copy of the learner."""

    def __init__(self, learner: RecurrentLearner, hidden: torch.Tensor | None = None):
        self.learner, self.hidden = learner, hidden
        self.last: np.ndarray | None = None
        self.spread: np.ndarray | None = None  # an ensemble's sigma at this step

    def advance(self, obs: np.ndarray) -> np.ndarray:
        if self.hidden is None:
            self.hidden = self.learner.initial_state(len(obs))
        with_spread = getattr(self.learner, "step_with_uncertainty", None)  # an ensemble: its spread too
        if with_spread is not None:
            self.last, self.spread, self.hidden = with_spread(obs, self.hidden)
        else:
            self.last, self.hidden = self.learner.step(obs, self.hidden)
        return self.last

    __call__ = advance

    def act(self, obs: np.ndarray) -> np.ndarray:
        """This step's actions (`advance` computed them from the same observations)."""
        if self.last is None or len(self.last) != len(obs):
            raise RuntimeError("a recurrent learner acts on the step it was advanced on (Carried.advance first)")
        return self.last

    def act_and_uncertainty(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """This step's actions and the ensemble's spread (EnsembleDAgger's doubt)."""
        return self.act(obs), self.spread

    def restart(self, ended: np.ndarray) -> None:
        """The envs `ended` start a new episode: their hidden state is the initial one."""
        if self.hidden is not None and ended.any():
            self.hidden = self.hidden.clone()
            self.hidden[torch.as_tensor(ended)] = self.learner.initial_state(int(ended.sum()))

    def __deepcopy__(self, memo) -> Carried:  # a video's frozen copy: its own learner, from the episode's start
        return Carried(copy.deepcopy(self.learner, memo))


ACTS_ALONG_EPISODES = "a carried GRU acts along episodes: through dagger.policy.carried.acting(learner) or Carried"


def acting(learner):
    """What acts for `learner` in one use (an evaluation, a video): its `act`, or a `Carried` that starts every
    env's episode at its first call."""
    return Carried(learner) if isinstance(learner, RecurrentLearner) else learner.act


def actions_over(learner, data) -> Iterator[tuple[slice, np.ndarray]]:
    """The learner's actions at D's labelled steps, a chunk of rows at a time (`chunks`), as (rows, actions): its
    `act` on those rows, or, for a recurrent learner, what it does there with D's episodes replayed from their
    starts (one chunk)."""
    if isinstance(learner, RecurrentLearner):
        yield slice(0, len(data)), learner.replay(data)
        return
    states = data.obs  # D gathers its labelled rows at each read: once
    for part in chunks(len(data), states.shape[1]):
        yield part, learner.act(states[part])
