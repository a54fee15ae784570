"""The aggregated dataset D of (state, expert action) pairs, kept as contiguous arrays."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dagger.files import atomic_write


class Dataset:
    """Append-only (obs, expert action) storage; capacity doubles so appends are amortised O(1)."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 1024):
        self._obs = np.empty((capacity, obs_dim), dtype=np.float32)
        self._acts = np.empty((capacity, act_dim), dtype=np.float32)
        self.size = 0

    def __len__(self) -> int:
        return self.size

    @property
    def obs(self) -> np.ndarray:
        return self._obs[: self.size]

    @property
    def acts(self) -> np.ndarray:
        return self._acts[: self.size]

    def add(self, obs: np.ndarray, acts: np.ndarray) -> None:
        """D <- D + {(obs_k, acts_k)}."""
        if len(obs) != len(acts):
            raise ValueError(f"{len(obs)} observations but {len(acts)} actions")
        need = self.size + len(obs)
        if need > len(self._obs):
            capacity = max(need, 2 * len(self._obs))
            self._obs = np.resize(self._obs, (capacity, self._obs.shape[1]))
            self._acts = np.resize(self._acts, (capacity, self._acts.shape[1]))
        self._obs[self.size:need] = obs
        self._acts[self.size:need] = acts
        self.size = need

    def save(self, path: Path) -> None:
        atomic_write(path, lambda tmp: np.savez(tmp, obs=self.obs, acts=self.acts))

    @classmethod
    def load(cls, path: Path) -> "Dataset":
        with np.load(path) as f:
            data = cls(f["obs"].shape[1], f["acts"].shape[1], capacity=max(1, len(f["obs"])))
            data.add(f["obs"], f["acts"])
        return data
