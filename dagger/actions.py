"""The task's action space, as the algorithms and learners use it: one object per kind of gymnasium space, so that
no algorithm or learner reads the space's bounds or type itself.

    BoxActions       continuous actions in [low, high] (MuJoCo, Pendulum, LunarLanderContinuous). The learner is
                     fitted in scaled units u = (a - mid) / half, which map the bounds to [-1, 1]; the gap between
                     two actions is the RMS over dimensions of their difference in those units; exploration noise
                     is Gaussian in those units, clipped to the bounds; a random action is uniform in the box.
    DiscreteActions  n choices (CartPole, Acrobot, LunarLander). An action is stored as its index in a float32
                     column (exact up to 2^24), so D, the record and the exports keep one layout; the learner's head
                     gives n logits (cross-entropy on the expert's choice, acting with the argmax); the gap is 1
                     where two choices differ and 0 where they agree; exploration noise is epsilon-random: with
                     probability `std` (capped at 1) the choice is replaced by a uniform one; a random action is
                     uniform over the n choices.

`actions_of(space)` picks the object; any other space is refused in one line.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class BoxActions:
    """Continuous actions in the box [low, high]; `mid` and `half` are float64 (exact for float32 bounds), computed
    once (the gates and the ensemble read them at every step)."""

    low: np.ndarray
    high: np.ndarray
    discrete = False

    @classmethod
    def of(cls, space: gym.spaces.Box) -> BoxActions:
        return cls(np.asarray(space.low, np.float64), np.asarray(space.high, np.float64))

    @cached_property
    def mid(self) -> np.ndarray:
        return (self.high + self.low) / 2

    @cached_property
    def half(self) -> np.ndarray:
        return (self.high - self.low) / 2

    @cached_property
    def _scale32(self) -> tuple[np.ndarray, np.ndarray]:
        """mid and half in float32, the units of `features`."""
        return self.mid.astype(np.float32), self.half.astype(np.float32)

    @property
    def width(self) -> int:
        """The stored action's width, and the learner's head's."""
        return len(self.low)

    head = width

    def features(self, acts: np.ndarray) -> np.ndarray:
        """u = (a - mid) / half in float32, (n, head): the units the ensemble averages in and the gates read."""
        mid, half = self._scale32
        return (np.asarray(acts, np.float32) - mid) / half

    def from_features(self, u: np.ndarray) -> np.ndarray:
        """The action whose features are `u`: u * half + mid."""
        mid, half = self._scale32
        return u * half + mid

    def gap(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per state, the RMS over action dimensions of (a - b) / half: how far two policies' actions are apart."""
        diff = (np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) / self.half
        return np.sqrt(np.mean(diff ** 2, axis=-1))

    def noisy(self, acts: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
        """a + half * eps, eps ~ N(0, std^2 I), clipped to the bounds."""
        noise = rng.normal(0.0, std, np.shape(acts)) * self.half if std > 0 else 0.0
        return np.clip(acts + noise, self.low, self.high)

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n actions drawn uniformly in the box."""
        return rng.uniform(self.low, self.high, (n, self.width))

    def valid(self, acts: np.ndarray, slack: float = 0.0) -> np.ndarray:
        """Per action, whether every dimension lies in the bounds, widened by `slack` x (high - low) each side."""
        margin = slack * (self.high - self.low)
        acts = np.asarray(acts).reshape(len(acts), self.width)
        return np.all((acts >= self.low - margin) & (acts <= self.high + margin), axis=1)

    def to_env(self, acts: np.ndarray) -> np.ndarray:
        """A batch of stored actions as the vectorised env takes them."""
        return acts

    def stored(self, acts: np.ndarray) -> np.ndarray:
        """A batch of the env's (or an SB3 expert's) actions as D stores them: (n, width) float32."""
        return np.asarray(acts, np.float32).reshape(len(acts), self.width)


@dataclass(frozen=True)
class DiscreteActions:
    """n discrete choices, stored as their index in a float32 column."""

    n: int
    start: int = 0
    discrete = True
    width = 1

    @classmethod
    def of(cls, space: gym.spaces.Discrete) -> DiscreteActions:
        return cls(int(space.n), int(space.start))

    @property
    def head(self) -> int:
        """The learner's head: one logit per choice."""
        return self.n

    def gap(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Per state, 1 where the two choices differ and 0 where they agree."""
        return (np.asarray(a).reshape(len(a), -1)[:, 0] != np.asarray(b).reshape(len(b), -1)[:, 0]).astype(np.float64)

    def features(self, acts: np.ndarray) -> np.ndarray:
        """The choice as a one-hot float32 row, (n, n_choices): the members' mean is their vote shares."""
        return np.eye(self.n, dtype=np.float32)[self.to_env(acts) - self.start]

    def from_features(self, u: np.ndarray) -> np.ndarray:
        """The choice with the largest feature (the most votes; the lowest index on a tie)."""
        return (np.argmax(u, axis=-1)[:, None] + self.start).astype(np.float32)

    def noisy(self, acts: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
        """Epsilon-random: each choice is replaced by a uniform one with probability min(std, 1)."""
        acts = np.array(acts, copy=True)
        flip = rng.random(len(acts)) < min(std, 1.0)
        acts[flip] = self.random(rng, int(flip.sum())).astype(acts.dtype)
        return acts

    def random(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n choices drawn uniformly."""
        return rng.integers(self.start, self.start + self.n, (n, 1)).astype(np.float32)

    def valid(self, acts: np.ndarray, slack: float = 0.0) -> np.ndarray:
        """Per action, whether it is one of the choices (a whole number in range; `slack` is for Box's signature)."""
        x = np.asarray(acts, np.float64).reshape(len(acts), -1)[:, 0]
        return (x == np.round(x)) & (x >= self.start) & (x < self.start + self.n)

    def to_env(self, acts: np.ndarray) -> np.ndarray:
        return np.asarray(acts).reshape(len(acts), -1)[:, 0].round().astype(np.int64)

    def stored(self, acts: np.ndarray) -> np.ndarray:
        return np.asarray(acts).reshape(len(acts), -1)[:, :1].astype(np.float32)


Actions = BoxActions | DiscreteActions


def actions_of(space: gym.Space, where: str = "env.id") -> Actions:
    """The action object of a flat Box or a Discrete space; anything else is one line naming `where`."""
    from dagger.config import ConfigError

    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ConfigError(f"{where}: its action space {space} is unbounded; the learner scales actions to the "
                              "space's bounds")
        return BoxActions.of(space)
    if isinstance(space, gym.spaces.Discrete):
        return DiscreteActions.of(space)
    raise ConfigError(f"{where}: its action space {space} is neither a flat Box nor Discrete")
