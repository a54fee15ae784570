"""A run's aggregated dataset as a Minari dataset (Farama's standard format for offline RL and imitation
data), and a local Minari dataset as the initial demonstrations D_0.

Export (`python -m dagger.export <run dir>`) writes every visited step, episode by episode, as collected:

    episode      the consecutive steps of one env between resets; an episode the run stopped in the middle
                 of (the run's end, or a final partial vector step whose envs stepped unrecorded) ends truncated
    actions      the expert's label a* = pi*(s); at states a gate did not show the expert (SafeDAgger, LazyDAgger,
                 ThriftyDAgger, HG-DAgger) the executed action, with infos["labelled"] False
    infos        per step, aligned with the actions (T entries, not T + 1): executed_action, labelled,
                 learner (the learner drove), iteration
    metadata     the env spec (task, kwargs, time limit), algorithm_name, ref_min_score and ref_max_score
                 (the run's random and expert returns), and the run's algorithm and expert (file, sha256)

Import (`schedule.initial_demos=<dataset id>`): the dataset's labelled steps are D_0, and BC on them is
iteration 0. Only local datasets are read (never downloaded), through h5py and JSON: nothing in the files is
executed, and the dataset's env spec is never instantiated.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np

from dagger.config import ConfigError, first_line
from dagger.data import Dataset, Transitions

NAMESPACE = "dagger-lab"
INFO_KEYS = ("executed_action", "labelled", "learner", "iteration")


def episode_indices(t: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The transitions' indices, split into episodes and ordered by when each started.

    Within one env (in time order) an episode ends where the env terminated or truncated, or where the next
    recorded step does not start from this step's s' (a step taken but not recorded)."""
    order = np.argsort(t["env"], kind="stable")
    if len(order) == 0:
        return []
    env, obs, nxt = t["env"][order], t["obs"][order], t["next_obs"][order]
    ended = (t["terminated"] | t["truncated"])[order]
    breaks = ended[:-1] | (env[1:] != env[:-1]) | np.any(nxt[:-1] != obs[1:], axis=1)
    return sorted(np.split(order, np.flatnonzero(breaks) + 1), key=lambda ix: ix[0])


def episode_buffers(data: Dataset) -> list:
    """Minari episode buffers of every visited step in D (see the module docstring for the conventions)."""
    from minari.data_collector import EpisodeBuffer

    t = {name: data.transitions[name] for name in Transitions.FIELDS}
    buffers = []
    for k, ix in enumerate(episode_indices(t)):
        truncated = t["truncated"][ix].copy()
        if not (t["terminated"][ix[-1]] or truncated[-1]):
            truncated[-1] = True  # the run stopped in the middle of this episode
        labelled = t["labelled"][ix]
        buffers.append(EpisodeBuffer(
            id=k, observations=np.concatenate([t["obs"][ix], t["next_obs"][ix[-1:]]]),
            actions=np.where(labelled[:, None], t["label"][ix], t["acts"][ix]),
            rewards=t["reward"][ix], terminations=t["terminated"][ix], truncations=truncated,
            infos={"executed_action": t["acts"][ix], "labelled": labelled, "learner": t["learner"][ix],
                   "iteration": t["iteration"][ix]}))
    return buffers


def dataset_path(dataset_id: str) -> Path:
    from minari.storage import get_dataset_path

    return Path(get_dataset_path(dataset_id))


def write_minari(dataset_id: str, data: Dataset, env: gym.Env, algorithm: str, description: str,
                 ref_min_score: float, ref_max_score: float, extra_metadata: dict) -> Path:
    """Create the local Minari dataset `dataset_id` from D's transitions; a failure leaves no partial dataset."""
    import shutil

    import minari

    path = dataset_path(dataset_id)
    if path.exists():
        raise ConfigError(f"a Minari dataset {dataset_id!r} already exists ({path}); choose another --id, or remove "
                          f"it with `minari delete {dataset_id}`")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is set to None.*")  # author, email, code permalink
            dataset = minari.create_dataset_from_buffers(
                dataset_id, episode_buffers(data), env=env, algorithm_name=algorithm, description=description,
                ref_min_score=ref_min_score, ref_max_score=ref_max_score, data_format="hdf5")
        dataset.storage.update_metadata(extra_metadata)
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    return path


def load_demonstrations(dataset_id: str, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                        env_id: str):
    """The local Minari dataset `dataset_id` as the rollout of iteration 0 (a `dagger.rollout.Rollout`).

    Every problem (no such local dataset, spaces that do not match the env, non-finite values) is one
    ConfigError naming `schedule.initial_demos`."""
    import minari

    from dagger.rollout import Rollout, control_counts

    key = f"schedule.initial_demos={dataset_id!r}"
    if not dataset_path(dataset_id).is_dir():
        raise ConfigError(f"{key}: no local Minari dataset of that id in {dataset_path('')} (MINARI_DATASETS_PATH); "
                          "`minari list local` shows the local ones")
    try:
        dataset = minari.load_dataset(dataset_id)  # local only: download=False
    except Exception as err:  # noqa: BLE001 - missing, corrupt or foreign: one line
        raise ConfigError(f"{key}: not a readable local Minari dataset ({first_line(err)[:200]}); "
                          "`minari list local` shows the local ones") from None
    for kind, theirs, ours in (("observation", dataset.observation_space, observation_space),
                               ("action", dataset.action_space, action_space)):
        same = isinstance(theirs, gym.spaces.Box) and theirs.shape == ours.shape and (
            kind == "observation" or (np.allclose(theirs.low, ours.low) and np.allclose(theirs.high, ours.high)))
        if not same:
            raise ConfigError(f"{key}: its {kind} space {theirs} does not match {env_id}'s {ours}")
    steps: dict[str, list] = {name: [] for name in Transitions.FIELDS}
    for episode in dataset.iterate_episodes():
        obs, acts = np.asarray(episode.observations), np.asarray(episode.actions)
        n = len(acts)
        infos = episode.infos or {}

        def info(name: str, default: np.ndarray) -> np.ndarray:
            """Our own per-step info where the dataset has it (an export of this project), else `default`."""
            return np.asarray(infos[name], default.dtype) if len(infos.get(name, ())) == n else default

        labelled, learner = info("labelled", np.ones(n, bool)), info("learner", np.zeros(n, bool))
        executed = info("executed_action", acts)
        for name, value in (("obs", obs[:-1]), ("acts", executed), ("reward", episode.rewards),
                            ("next_obs", obs[1:]), ("terminated", episode.terminations),
                            ("truncated", episode.truncations), ("learner", learner),
                            ("label", np.where(labelled[:, None], acts, np.nan)), ("labelled", labelled),
                            ("env", np.full(n, -1)), ("iteration", np.zeros(n))):
            steps[name].append(np.asarray(value))
    if not steps["obs"]:
        raise ConfigError(f"{key}: the dataset holds no episodes")
    columns = Transitions(observation_space.shape[0], action_space.shape[0], capacity=1)
    columns.add(**{name: np.concatenate(chunks) for name, chunks in steps.items()})  # cast to D's dtypes
    t = {name: columns[name] for name in Transitions.FIELDS}
    labelled = t["labelled"]
    if not labelled.any():
        raise ConfigError(f"{key}: the dataset holds no labelled steps")
    if not (np.isfinite(t["obs"]).all() and np.isfinite(t["next_obs"]).all() and np.isfinite(t["label"][labelled]).all()):
        raise ConfigError(f"{key}: the dataset holds non-finite observations or actions")
    ends = np.flatnonzero(t["terminated"] | t["truncated"])
    returns = [float(r.sum()) for r in np.split(t["reward"], ends + 1)[:len(ends)]]
    return Rollout(t["obs"][labelled], t["label"][labelled], env_steps=0, queries=0, episode_returns=returns,
                   counts=control_counts(len(t["obs"]), supervised=int((~t["learner"]).sum())), transitions=t)
