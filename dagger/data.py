"""The aggregated dataset D: every visited transition of the rollouts, the episodes as they were collected, the
student's view beside the full state that the expert read; D's (student's view, expert action) pairs are its
labelled steps (the learner fits them, the gates learn from the rest, `dagger.export` writes them all as a Minari
dataset)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Union

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
    the full states s and s' the expert reads (the same as o and o' when the student sees everything). The views
    are float32, or uint8 where the student sees camera frames alone (`dagger.views`)."""

    FIELDS = ("obs", "acts", "reward", "next_obs", "terminated", "truncated", "learner", "label", "labelled",
              "env", "iteration", "state", "next_state")
    OPTIONAL = ("state", "next_state")  # files written before student views: the state is the observation

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 1024, state_dim: int | None = None,
                 obs_dtype: type = np.float32):
        state_dim = obs_dim if state_dim is None else state_dim
        super().__init__({"obs": ((obs_dim,), obs_dtype), "acts": ((act_dim,), np.float32),
                          "state": ((state_dim,), np.float32), "next_state": ((state_dim,), np.float32),
                          "reward": ((), np.float64), "next_obs": ((obs_dim,), obs_dtype),
                          "terminated": ((), bool), "truncated": ((), bool), "learner": ((), bool),
                          "label": ((act_dim,), np.float32), "labelled": ((), bool),
                          "env": ((), np.int32), "iteration": ((), np.int32)}, capacity)

    def episodes(self) -> list[np.ndarray]:
        """The record's episodes, each the rows of its steps in order: an env's steps (in collection order, so an
        episode that carries over into the next iteration stays whole) up to each termination or truncation; the
        loaded demonstrations (env -1) likewise. A last episode still running is one too."""
        ends = self["terminated"] | self["truncated"]
        episodes = []
        for env in np.unique(self["env"]):
            rows = np.flatnonzero(self["env"] == env)
            cuts = np.flatnonzero(ends[rows]) + 1
            episodes += [part for part in np.split(rows, cuts) if len(part)]
        return sorted(episodes, key=lambda rows: rows[0])


@dataclass(frozen=True)
class Pairs:
    """(student's view, expert action) pairs that a learner fits: D's labelled rows, a resample of them, a test's."""

    obs: np.ndarray
    acts: np.ndarray

    def __len__(self) -> int:
        return len(self.obs)


Labelled = Union[Pairs, "Dataset"]  # what a learner fits: anything with obs, acts and a length


class Dataset:
    """D: the labelled rows of the transitions record (`Transitions`), in collection order. Every visited step is
    kept once; D's (view, label) pairs are read from the labelled ones (`obs`, `acts`), and the steps around them
    (the episodes, the full states, who drove) stay beside them for the gates, sequences and the export.
    `state_dim` is the full state's width (the view's by default), `obs_dtype` what the view is stored as."""

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 1024, state_dim: int | None = None,
                 obs_dtype: type = np.float32):
        self.transitions = Transitions(obs_dim, act_dim, capacity, state_dim, obs_dtype)
        self.rows = np.empty(0, dtype=np.int64)  # where D's pairs are in the record, in order

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def obs(self) -> np.ndarray:
        """The student's view at each labelled step, (|D|, obs_dim) float32 (or uint8 frames)."""
        return self.transitions["obs"][self.rows]

    @property
    def acts(self) -> np.ndarray:
        """The expert's label at each labelled step, (|D|, act_dim) float32."""
        return self.transitions["label"][self.rows]

    def add(self, transitions: dict[str, np.ndarray], iteration: int | None = None) -> None:
        """D <- D + the labelled steps of `transitions` (one rollout's, collected in `iteration`), which are kept
        whole in the record."""
        if iteration is not None:
            transitions = {**transitions, "iteration": np.full(len(transitions["obs"]), iteration, np.int32)}
        if "state" not in transitions:  # the student saw the full state (loaded demonstrations, older files)
            transitions = {**transitions, "state": transitions["obs"], "next_state": transitions["next_obs"]}
        start = len(self.transitions)
        self.transitions.add(**transitions)
        self.rows = np.concatenate([self.rows, start + np.flatnonzero(transitions["labelled"])])

    def save(self, path: Path) -> None:
        """dataset.npz: D's pairs (`obs`, `acts`) and the record (`transition_<field>`)."""
        arrays = {"obs": self.obs, "acts": self.acts}
        arrays |= {f"transition_{name}": self.transitions[name] for name in Transitions.FIELDS}
        atomic_write(path, lambda tmp: np.savez(tmp, **arrays))

    @classmethod
    def load(cls, path: Path) -> "Dataset":
        """D as `save` wrote it. Arrays are read without pickle, and their declared sizes are checked against the
        machine's memory before any is read (a crafted file cannot make it allocate or inflate without bound).
        ValueError where the file holds no record (an older version's) or its pairs are not the record's labelled
        steps."""
        check_declared_size(path)
        with np.load(path) as f:
            names = [name for name in Transitions.FIELDS if f"transition_{name}" in f.files]
            if not set(Transitions.FIELDS) - set(Transitions.OPTIONAL) <= set(names):
                raise ValueError("written by an older version that did not record the visited transitions")
            record = {name: f[f"transition_{name}"] for name in names}
            data = cls(record["obs"].shape[1], record["acts"].shape[1], capacity=max(1, len(record["obs"])),
                       state_dim=record["state"].shape[1] if "state" in record else None,
                       obs_dtype=np.uint8 if record["obs"].dtype == np.uint8 else np.float32)
            data.add(record)
            pairs = f["obs"][:len(data)], f["acts"][:len(data)]
        if not (np.array_equal(pairs[0], data.obs) and np.array_equal(pairs[1], data.acts, equal_nan=True)):
            raise ValueError("its pairs (obs, acts) are not the labelled steps of its transitions")
        return data


def half_memory() -> int:
    """Half this machine's memory in bytes: no dataset, file or minibatch here may need more."""
    import os

    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2


def bytes_per_step(obs_dim: int, act_dim: int, state_dim: int, obs_bytes: int = 4) -> int:
    """What D keeps of one visited step: the student's view (o, o'; `obs_bytes` each, 1 for uint8 frames), and
    float32 copies of the action (executed, label) and the full state (s, s'), plus reward and flags."""
    return obs_bytes * 2 * obs_dim + 4 * (2 * act_dim + 2 * state_dim) + 24


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
