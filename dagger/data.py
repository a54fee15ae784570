"""The aggregated dataset D of (student's view, expert action) pairs, kept as contiguous arrays, and every visited
transition of the rollouts: the episodes as they were collected, the student's view beside the full state that
the expert read (the gates learn from them, and `dagger.export` writes them as a Minari dataset)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from dagger.files import atomic_write


class Columns:
    """Append-only named arrays of one length; capacity doubles so appends are amortised O(1)."""

    def __init__(self, shapes: dict[str, tuple[tuple[int, ...], type]], capacity: int = 1024):
        self._arrays = {name: np.empty((capacity, *shape), dtype=dtype) for name, (shape, dtype) in shapes.items()}
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name][: self.size]

    def add(self, **arrays: np.ndarray) -> None:
        lengths = {name: len(arrays[name]) for name in self._arrays}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"arrays of different lengths: {lengths}")
        need = self.size + next(iter(lengths.values()))
        for name, array in self._arrays.items():
            if need > len(array):
                array = self._arrays[name] = np.resize(array, (max(need, 2 * len(array)), *array.shape[1:]))
            array[self.size:need] = arrays[name]
        self.size = need

    def truncated(self, size: int) -> dict[str, np.ndarray]:
        return {name: self[name][:size] for name in self._arrays}


class Transitions(Columns):
    """Every visited step: the student's view o of s, the executed action, the reward, o' (of the final state where
    the episode ended), whether it terminated or was truncated there, whether the learner drove, the expert's label
    (nan where the state was not labelled), the env it happened in (-1: loaded demonstrations), the iteration, and
    the full states s and s' the expert reads (the same as o and o' when the student sees everything)."""

    FIELDS = ("obs", "acts", "reward", "next_obs", "terminated", "truncated", "learner", "label", "labelled",
              "env", "iteration", "state", "next_state")
    OPTIONAL = ("state", "next_state")  # files written before student views: the state is the observation

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 1024, state_dim: int | None = None):
        state_dim = obs_dim if state_dim is None else state_dim
        super().__init__({"obs": ((obs_dim,), np.float32), "acts": ((act_dim,), np.float32),
                          "state": ((state_dim,), np.float32), "next_state": ((state_dim,), np.float32),
                          "reward": ((), np.float64), "next_obs": ((obs_dim,), np.float32),
                          "terminated": ((), bool), "truncated": ((), bool), "learner": ((), bool),
                          "label": ((act_dim,), np.float32), "labelled": ((), bool),
                          "env": ((), np.int32), "iteration": ((), np.int32)}, capacity)


class Dataset:
    """D: (student's view, expert action) pairs, and every visited transition (`Transitions`; `transitions=False`
    for a file written before they were kept). `state_dim` is the full state's width (the view's by default)."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 1024, transitions: bool = True,
                 state_dim: int | None = None):
        self.pairs = Columns({"obs": ((obs_dim,), np.float32), "acts": ((act_dim,), np.float32)}, capacity)
        self.transitions = Transitions(obs_dim, act_dim, state_dim=state_dim) if transitions else None

    def __len__(self) -> int:
        return len(self.pairs)

    @property
    def obs(self) -> np.ndarray:
        return self.pairs["obs"]

    @property
    def acts(self) -> np.ndarray:
        return self.pairs["acts"]

    def add(self, obs: np.ndarray, acts: np.ndarray, transitions: dict[str, np.ndarray] | None = None,
            iteration: int | None = None) -> None:
        """D <- D + {(obs_k, acts_k)} (and the rollout's transitions, collected in `iteration`)."""
        if len(obs) != len(acts):
            raise ValueError(f"{len(obs)} observations but {len(acts)} actions")
        self.pairs.add(obs=obs, acts=acts)
        if self.transitions is not None and transitions is not None:
            if iteration is not None:
                transitions = {**transitions, "iteration": np.full(len(transitions["obs"]), iteration, np.int32)}
            if "state" not in transitions:  # the student saw the full state (loaded demonstrations, older files)
                transitions = {**transitions, "state": transitions["obs"], "next_state": transitions["next_obs"]}
            self.transitions.add(**transitions)

    def save(self, path: Path) -> None:
        arrays = {"obs": self.obs, "acts": self.acts}
        if self.transitions is not None:
            arrays |= {f"transition_{name}": self.transitions[name] for name in Transitions.FIELDS}
        atomic_write(path, lambda tmp: np.savez(tmp, **arrays))

    @classmethod
    def load(cls, path: Path) -> "Dataset":
        """D as `save` wrote it. Arrays are read without pickle, and their declared sizes are checked against the
        machine's memory before any is read (a crafted file cannot make it allocate or inflate without bound)."""
        check_declared_size(path)
        with np.load(path) as f:
            names = [name for name in Transitions.FIELDS if f"transition_{name}" in f.files]
            keep = set(Transitions.FIELDS) - set(Transitions.OPTIONAL) <= set(names)
            state_dim = f["transition_state"].shape[1] if "state" in names else None
            data = cls(f["obs"].shape[1], f["acts"].shape[1], capacity=max(1, len(f["obs"])), transitions=keep,
                       state_dim=state_dim)
            data.add(f["obs"], f["acts"], {name: f[f"transition_{name}"] for name in names} if keep else None)
        return data


def half_memory() -> int:
    """Half this machine's memory in bytes: no dataset, file or minibatch here may need more."""
    import os

    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


def bytes_per_step(obs_dim: int, act_dim: int, state_dim: int) -> int:
    """What D keeps of one visited step: three float32 copies of the student's view (D's pairs, the transition's
    o and o') and of the action (pair, executed, label), two of the full state (s, s'), plus reward and flags."""
    return 4 * (3 * obs_dim + 3 * act_dim + 2 * state_dim) + 24


def check_declared_size(path: Path) -> None:
    """Refuse an .npz whose arrays declare more bytes than half this machine's memory (a zip bomb, a forged header)."""
    import zipfile

    limit = half_memory()
    total = 0
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            with archive.open(info) as member:
                major, _ = np.lib.format.read_magic(member)
                read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                shape, _, dtype = read_header(member)
            total += int(np.prod(shape, dtype=object)) * dtype.itemsize
            if total > limit:
                raise ValueError(f"its arrays declare {total / 2**30:.0f} GiB, more than half this machine's memory")
