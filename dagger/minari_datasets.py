"""A run's aggregated dataset as a Minari dataset (Farama's standard format for offline RL and imitation
data), and a local Minari dataset as the initial demonstrations D_0.

Export (`python -m dagger.export <run dir>`) writes every visited step, episode by episode, as collected:

    episode      the consecutive steps of one env between resets; an episode the run stopped in the middle
                 of (the run's end, or a final partial vector step whose envs stepped unrecorded) ends truncated
    actions      the expert's label a* = pi*(s); at states a gate did not show the expert (SafeDAgger, LazyDAgger,
                 ThriftyDAgger, HG-DAgger) the executed action, with infos["labelled"] False
    observations what the learner saw (the student's view, `obs=`; the env's observation under obs=full)
    infos        per step, aligned with the actions (T entries, not T + 1): executed_action, labelled,
                 learner (the learner drove), iteration; for a student that saw less, state and next_state (the
                 full observations the expert read)
    metadata     the env spec (task, kwargs, time limit), algorithm_name, ref_min_score and ref_max_score
                 (the run's random and expert returns), and the run's algorithm and expert (file, sha256)

Import (`schedule.initial_demos=<dataset id>`): the dataset's labelled steps are D_0, and BC on them is
iteration 0; a student that sees less gets its view of full observations, or a student export's view as it is
(`load_demonstrations`). Only local hdf5 datasets are read (never downloaded), by this module itself through h5py and JSON
(not Minari's reader, which builds the env spec when the spaces are missing): nothing in the files is executed,
the dataset's env spec is never instantiated, and every array's shape, every value's finiteness and every
label's place within the action bounds is checked before any work.
"""
from __future__ import annotations

import json
import os
import time
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np

from dagger.actions import actions_of
from dagger.config import ConfigError, describe, first_line
from dagger.schemas import Rule

from dagger.data import Dataset, Transitions
from dagger.views import StudentView

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


def episode_buffers(data: Dataset, space: gym.Space) -> list:
    """Minari episode buffers of every visited step in D (see the module docstring for the conventions); discrete
    actions are written as the task's own integer choices."""
    from minari.data_collector import EpisodeBuffer

    def native(acts: np.ndarray) -> np.ndarray:
        return actions.to_env(acts) if actions.discrete else acts

    actions = actions_of(space)
    t = {name: data.transitions[name] for name in Transitions.FIELDS}
    buffers = []
    for k, ix in enumerate(episode_indices(t)):
        truncated = t["truncated"][ix].copy()
        if not (t["terminated"][ix[-1]] or truncated[-1]):
            truncated[-1] = True  # the run stopped in the middle of this episode
        labelled = t["labelled"][ix]
        states = {"state": t["state"][ix], "next_state": t["next_state"][ix]} if student_view(t) else {}
        buffers.append(EpisodeBuffer(
            id=k, observations=np.concatenate([t["obs"][ix], t["next_obs"][ix[-1:]]]),
            actions=native(np.where(labelled[:, None], t["label"][ix], t["acts"][ix])),
            rewards=t["reward"][ix], terminations=t["terminated"][ix], truncations=truncated,
            infos={"executed_action": native(t["acts"][ix]), "labelled": labelled, "learner": t["learner"][ix],
                   "iteration": t["iteration"][ix], **states}))
    return buffers


def student_view(t: dict[str, np.ndarray]) -> bool:
    """Whether the learner saw something other than the full state (`obs=no_velocity`, `noisy`, a history...)."""
    return t["obs"].shape != t["state"].shape or not np.array_equal(t["obs"], t["state"])


def id_problem(dataset_id: str) -> str | None:
    """What is wrong with `dataset_id` as a Minari dataset id ([namespace/]name-vN), or None: a path (absolute, with
    `.` or `..` parts or backslashes) is not an id, since the dataset's folder is made from it."""
    from minari.dataset.minari_dataset import parse_dataset_id

    parts = dataset_id.split("/")
    if dataset_id.startswith(("/", "~")) or "\\" in dataset_id or any(p in ("", ".", "..") for p in parts):
        return "is a path, not a Minari dataset id ([namespace/]name-vN)"
    try:
        parse_dataset_id(dataset_id)
    except Exception:  # noqa: BLE001 - minari's own parser decides what an id is
        return "is not a Minari dataset id ([namespace/]name-vN)"
    return None


DATASET_ID = Rule("a Minari dataset id, never a path", id_problem)


def dataset_path(dataset_id: str) -> Path:
    """Where Minari keeps the local dataset `dataset_id` (MINARI_DATASETS_PATH, default ~/.minari/datasets)."""
    from minari.storage import get_dataset_path

    try:
        return Path(get_dataset_path(dataset_id))  # creates the datasets folder if it is missing
    except OSError as err:
        root = os.environ.get("MINARI_DATASETS_PATH", "~/.minari/datasets")
        raise ConfigError(f"MINARI_DATASETS_PATH={root}: cannot be the datasets folder ({describe(err, 120)})") from None


def write_minari(dataset_id: str, data: Dataset, env: gym.Env, algorithm: str, description: str,
                 ref_min_score: float, ref_max_score: float, extra_metadata: dict) -> Path:
    """Create the local Minari dataset `dataset_id` from D's transitions. It is written into a hidden staging folder
    beside the datasets and renamed into place when complete, so a failure or a kill at any instant leaves no
    partial dataset where the next export (or Minari) would find it; an id inside an existing dataset is refused."""
    import shutil

    import minari

    path, root = dataset_path(dataset_id), dataset_path("")
    if path.exists():
        raise ConfigError(f"a Minari dataset {dataset_id!r} already exists ({path}); choose another --id, or remove "
                          f"it with `minari delete {dataset_id}`")
    inside = [p for p in path.relative_to(root).parents if (root / p / "data" / "metadata.json").is_file()]
    if inside:
        raise ConfigError(f"--id={dataset_id!r} lies inside the existing Minari dataset {str(inside[0])!r} "
                          f"({root / inside[0]}); choose an id outside it")
    remove_stale_staging(root)
    staging = root / f"{STAGING}{os.getpid()}-{time.time_ns()}"
    before = os.environ.get("MINARI_DATASETS_PATH")
    try:
        os.environ["MINARI_DATASETS_PATH"] = str(staging)  # Minari writes where this says
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is set to None.*")  # author, email, code permalink
            view = (gym.spaces.Box(0, 255, data.obs.shape[1:], np.uint8) if data.obs.dtype == np.uint8  # frames
                    else gym.spaces.Box(-np.inf, np.inf, data.obs.shape[1:], np.float64))  # the student's view
            dataset = minari.create_dataset_from_buffers(
                dataset_id, episode_buffers(data, env.action_space), env=env, algorithm_name=algorithm, description=description,
                ref_min_score=ref_min_score, ref_max_score=ref_max_score, data_format="hdf5",
                observation_space=view if data.obs.shape[1:] != env.observation_space.shape else None)
        dataset.storage.update_metadata(extra_metadata)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staging / dataset_id, path)
    finally:
        if before is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = before
        shutil.rmtree(staging, ignore_errors=True)
    return path


STAGING = ".dagger-lab-export-"  # a hidden folder beside the datasets, named by the exporting process's pid


def remove_stale_staging(root: Path) -> None:
    """Staging folders left by exports that were killed (their process is gone)."""
    import shutil

    for folder in root.glob(f"{STAGING}*"):
        pid = folder.name[len(STAGING):].split("-")[0]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(folder, ignore_errors=True)


def replay(view: StudentView, states: np.ndarray, executed: np.ndarray, seed: int) -> np.ndarray:
    """The student's views along one episode of full observations s_0..s_T (T + 1 rows) and executed actions
    a_0..a_{T-1}: restarted at s_0 and advanced step by step, its noise (obs=noisy) seeded by `seed`."""
    own = view.fresh([view.seed, seed] if isinstance(view.seed, int) else [*view.seed, seed])
    own.restart(states[:1])
    views = [own.current()[0]]
    for t in range(len(executed)):
        own.advance(states[t + 1:t + 2], executed[t:t + 1])
        views.append(own.current()[0])
    return np.asarray(views)


def read_space(metadata: dict, kind: str, key: str) -> gym.spaces.Box | gym.spaces.Discrete:
    """The dataset's declared `kind` space, read from its JSON; a dataset that declares none is refused (Minari
    would build its env spec, which can import code)."""
    from minari.serialization import deserialize_space

    text = metadata.get(f"{kind}_space")
    if not isinstance(text, str):
        raise ConfigError(f"{key}: its metadata.json declares no {kind}_space; this project never builds a "
                          "dataset's env spec (it can name code), so the spaces must be stored")
    try:
        space = deserialize_space(text)
    except Exception as err:  # noqa: BLE001 - malformed JSON or an unknown space: one line
        raise ConfigError(f"{key}: its {kind}_space cannot be read ({first_line(err)[:120]})") from None
    discrete = kind == "action" and isinstance(space, gym.spaces.Discrete)
    if not discrete and (not isinstance(space, gym.spaces.Box) or len(space.shape) != 1):
        raise ConfigError(f"{key}: its {kind} space {space} is not a flat Box{' or Discrete' * (kind == 'action')}")
    return space


def read_episodes(folder: Path, key: str, widths: tuple[int, ...], act_shape: tuple[int, ...]):
    """The episodes of a Minari hdf5 dataset, read with h5py alone: dicts of numpy arrays, each checked for
    its shape (observations T + 1 rows of one of `widths`, the rest T), or one ConfigError naming the episode."""
    import h5py

    try:
        file = h5py.File(folder / "main_data.hdf5", "r")
    except Exception as err:  # noqa: BLE001 - missing, truncated or not HDF5
        raise ConfigError(f"{key}: {folder / 'main_data.hdf5'} is not a readable HDF5 file "
                          f"({first_line(err)[:120]})") from None
    with file:
        names = sorted((n for n in file if n.startswith("episode_")), key=lambda n: (len(n), n))
        for name in names:
            where = f"{key}: {name}"
            try:
                group = file[name]
                episode = {field: np.asarray(group[field][()]) for field in
                           ("observations", "actions", "rewards", "terminations", "truncations")}
                infos = group.get("infos")
                episode["infos"] = ({k: np.asarray(v[()]) for k, v in infos.items() if isinstance(v, h5py.Dataset)}
                                    if isinstance(infos, h5py.Group) else {})
            except Exception as err:  # noqa: BLE001 - a missing field, a group where an array belongs, bad data
                raise ConfigError(f"{where} cannot be read ({first_line(err)[:120]})") from None
            n = len(episode["actions"]) if episode["actions"].ndim else -1
            given = episode["observations"].shape[-1:]
            width = given[0] if given and given[0] in widths else widths[0]  # one of the widths, or the first's
            shapes = {"observations": (n + 1, width), "actions": (n, *act_shape), "rewards": (n,),
                      "terminations": (n,), "truncations": (n,)}
            for field, shape in shapes.items():
                if episode[field].shape != shape or not np.issubdtype(episode[field].dtype, np.number) and \
                        episode[field].dtype != bool:
                    raise ConfigError(f"{where}: {field} has shape {episode[field].shape} and dtype "
                                      f"{episode[field].dtype}, expected {shape} numbers")
            yield episode


def load_demonstrations(dataset_id: str, observation_space: gym.spaces.Box, action_space: gym.spaces.Box,
                        env_id: str, view: StudentView | None = None):
    """The local Minari dataset `dataset_id` as the rollout of iteration 0 (a `dagger.rollout.Rollout`).

    For a student that sees less (`view`), the dataset may hold either side: the full observations (any dataset of
    the task, an expert's), and then the view is replayed over each episode from its start as the collector
    builds it (the previous action being the executed one); or the student's own view with the full state in its
    infos (`state`, `next_state`: an export of a student run with the same view), taken as it is.

    Every problem (no such local dataset, spaces that do not match the env, non-finite values) is one
    ConfigError naming `schedule.initial_demos`."""
    from dagger.rollout import Rollout, control_counts

    key = f"schedule.initial_demos={dataset_id!r}"
    if not dataset_path(dataset_id).is_dir():
        raise ConfigError(f"{key}: no local Minari dataset of that id in {dataset_path('')} (MINARI_DATASETS_PATH); "
                          "`minari list local` shows the local ones")
    folder = dataset_path(dataset_id) / "data"
    try:
        metadata = json.loads((folder / "metadata.json").read_text())
    except Exception as err:  # noqa: BLE001 - missing, not JSON, too deep: one line
        raise ConfigError(f"{key}: {folder / 'metadata.json'} is not readable JSON ({first_line(err)[:120]})") from None
    if not isinstance(metadata, dict) or metadata.get("data_format", "hdf5") != "hdf5":
        raise ConfigError(f"{key}: only Minari datasets in the hdf5 format are read "
                          f"(data_format {metadata.get('data_format') if isinstance(metadata, dict) else '?'!r})")
    actions = actions_of(action_space)
    full_dim, act_dim = observation_space.shape[0], actions.width
    view = view if view is not None and not view.identity else None
    widths = (full_dim,) if view is None else tuple(dict.fromkeys((full_dim, view.dim)))
    theirs = read_space(metadata, "observation", key)
    if theirs.shape not in {(w,) for w in widths}:
        whose = f"{env_id}'s {observation_space}" + ("" if view is None else f" or the student's view {view.space}")
        raise ConfigError(f"{key}: its observation space {theirs} does not match {whose}")
    theirs = read_space(metadata, "action", key)
    if type(theirs) is not type(action_space) or theirs.shape != action_space.shape or not (
            theirs == action_space if actions.discrete else np.allclose(theirs.low, action_space.low)
            and np.allclose(theirs.high, action_space.high)):
        raise ConfigError(f"{key}: its action space {theirs} does not match {env_id}'s {action_space}")
    steps: dict[str, list] = {name: [] for name in Transitions.FIELDS}
    for number, episode in enumerate(read_episodes(folder, key, widths, action_space.shape)):
        obs, acts = episode["observations"], actions.stored(episode["actions"])  # a discrete choice as D stores it
        n = len(acts)
        infos = episode["infos"]

        def info(name: str, default: np.ndarray) -> np.ndarray:
            """Our own per-step info where the dataset has it (an export of this project), else `default`; one
            that is there with another shape or type is refused (a `labelled` of strings is not "all labelled")."""
            if name not in infos:
                return default
            value = np.asarray(infos[name])
            expected = "booleans" if default.dtype == bool else "numbers"
            right_type = value.dtype == bool if default.dtype == bool else np.issubdtype(value.dtype, np.number)
            if value.shape != default.shape or not right_type:
                raise ConfigError(f"{key}: an episode's infos['{name}'] has shape {value.shape} and dtype "
                                  f"{value.dtype}, expected {default.shape} {expected}")
            return value.astype(default.dtype)

        labelled, learner = info("labelled", np.ones(n, bool)), info("learner", np.zeros(n, bool))
        executed = actions.stored(info("executed_action", episode["actions"]))
        if "state" in infos:  # the student's view, the full state beside it (an export of a student run)
            if view is None or obs.shape[1] != view.dim:
                raise ConfigError(f"{key}: episode_{number} holds a student's view {obs.shape[1]} wide with the "
                                  f"full state in its infos, but this run's student sees "
                                  f"{'the full state' if view is None else f'a view {view.dim} wide'}")
            state = info("state", np.zeros((n, full_dim)))
            next_state = info("next_state", np.zeros((n, full_dim)))
        else:  # the full observations: the student's view is built over them as the collector builds it
            if obs.shape[1] != full_dim:
                raise ConfigError(f"{key}: episode_{number}'s observations are {obs.shape[1]} wide, neither "
                                  f"{env_id}'s {full_dim} nor a student's view with the full state in its infos")
            state, next_state = obs[:-1], obs[1:]
            obs = obs if view is None else replay(view, obs, executed, seed=number)
        for name, value in (("obs", obs[:-1]), ("acts", executed), ("reward", episode["rewards"]),
                            ("next_obs", obs[1:]), ("terminated", episode["terminations"]),
                            ("truncated", episode["truncations"]), ("learner", learner),
                            ("label", np.where(labelled[:, None], acts, np.nan)), ("labelled", labelled),
                            ("env", np.full(n, -1)), ("iteration", np.zeros(n)),
                            ("state", state), ("next_state", next_state)):
            steps[name].append(np.asarray(value))
    if not steps["obs"]:
        raise ConfigError(f"{key}: the dataset holds no episodes")
    columns = Transitions(full_dim if view is None else view.dim, act_dim, capacity=1, state_dim=full_dim)
    columns.add(**{name: np.concatenate(chunks) for name, chunks in steps.items()})  # cast to D's dtypes
    t = {name: columns[name] for name in Transitions.FIELDS}
    labelled = t["labelled"]
    if not labelled.any():
        raise ConfigError(f"{key}: the dataset holds no labelled steps")
    if not (all(np.isfinite(t[name]).all() for name in ("obs", "next_obs", "state", "next_state", "reward"))
            and np.isfinite(t["label"][labelled]).all()):
        raise ConfigError(f"{key}: the dataset holds non-finite observations, actions or rewards")
    outside = labelled & ~actions.valid(t["label"], slack=1e-3)  # slack: float32 round-off of a clipped action
    if actions.discrete:
        bounds = f"choices {actions.start} to {actions.start + actions.n - 1}"
    else:
        bounds = f"action bounds [{action_space.low.min():g}, {action_space.high.max():g}]"
    if outside.any():
        raise ConfigError(f"{key}: {int(outside.sum())} labelled actions lie outside {env_id}'s {bounds} "
                          f"(first at step {int(np.flatnonzero(outside)[0])})")
    ends = np.flatnonzero(t["terminated"] | t["truncated"])
    returns = [float(r.sum()) for r in np.split(t["reward"], ends + 1)[:len(ends)]]
    return Rollout(t["obs"][labelled], t["label"][labelled], env_steps=0, queries=0, episode_returns=returns,
                   counts=control_counts(len(t["obs"]), supervised=int((~t["learner"]).sum())), transitions=t)
