"""Minari: a run's D exported as a local Minari dataset, read back by Minari, and used as iteration 0."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dagger.minari_datasets import episode_indices
from dagger.app import RunStopped
from dagger.export import main as export_main
from tests.conftest import QUICK, ROOT, run_cli, run_in_process

DATASET = "dagger-lab/pendulum/roundtrip-v0"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("minari") / "run"
    run_cli(*QUICK, "schedule.iterations=2", "logger=none", run_dir=run_dir)
    result = run_cli(str(run_dir), "--id", DATASET, script="-m dagger.export")
    return run_dir, result


def test_the_export_is_a_minari_dataset_of_the_runs_episodes_with_the_expert_labels(exported):
    import minari

    run_dir, result = exported
    assert DATASET in result.stdout
    listed = subprocess.run([str(Path(sys.executable).with_name("minari")), "list", "local"], capture_output=True,
                            text=True, check=True, env={**os.environ, "COLUMNS": "200"})
    assert DATASET in listed.stdout, listed.stdout
    dataset = minari.load_dataset(DATASET)
    with np.load(run_dir / "dataset.npz") as d:
        labels, visited = d["acts"], d["transition_obs"]
    assert dataset.total_steps == len(visited) == 400  # DAgger labels every visited state
    assert dataset.env_spec.id == "InvertedPendulum-v5"
    meta = dataset.storage.metadata
    # algo=dagger is named by its schedule (the default: linear)
    assert meta["algorithm_name"] == "dagger-lab/linear" and meta["dagger_lab"]["expert"]["algo"] == "SAC"
    last = pd.read_csv(run_dir / "metrics.csv").iloc[-1]
    assert meta["ref_max_score"] == pytest.approx(last.expert_return_mean)
    where = {row.tobytes(): k for k, row in enumerate(visited)}  # D's k-th visited state is labelled labels[k]
    seen = []
    for episode in dataset.iterate_episodes():
        obs, acts = episode.observations, episode.actions
        assert len(obs) == len(acts) + 1 and (episode.terminations[-1] or episode.truncations[-1])
        assert episode.infos["labelled"].all() and len(episode.infos["iteration"]) == len(acts)
        index = [where[row.astype(np.float32).tobytes()] for row in obs[:-1]]
        np.testing.assert_array_equal(acts, labels[index])  # the expert's labels as the actions
        assert all(b > a for a, b in zip(index, index[1:]))  # in the order they were collected
        seen += index
    assert sorted(seen) == list(range(400))  # every visited step, once


def test_a_run_starts_from_the_exported_dataset_as_iteration_zero(exported, tmp_path):
    import minari

    run_dir = tmp_path / "seeded"
    run_in_process(run_dir, *QUICK, "schedule.iterations=1", "logger=none", f"schedule.initial_demos={DATASET}")
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics.iteration.tolist() == [0, 1]
    assert metrics.expert_labels.tolist() == [400, 600] and metrics.env_steps.tolist() == [0, 200]
    assert metrics.expert_queries.tolist() == [0, 200]  # the demonstrations cost this run no queries
    dataset = minari.load_dataset(DATASET)
    with np.load(run_dir / "dataset.npz") as d:
        demo_obs = np.concatenate([e.observations[:-1] for e in dataset.iterate_episodes()])
        demo_acts = np.concatenate([e.actions for e in dataset.iterate_episodes()])
        np.testing.assert_array_equal(d["obs"][:400], demo_obs)
        np.testing.assert_array_equal(d["acts"][:400], demo_acts)
        assert (d["transition_env"][:400] == -1).all() and (d["transition_iteration"][:400] == 0).all()


def test_a_dataset_of_another_task_is_refused_in_one_line(exported, tmp_path):
    with pytest.raises(RunStopped) as stopped:
        run_in_process(tmp_path / "run", "env=hopper", "logger=none", f"schedule.initial_demos={DATASET}")
    assert str(stopped.value).startswith(f"schedule.initial_demos='{DATASET}': its observation space"), stopped.value
    assert stopped.value.status == "refused" and not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, says", [
    (["{run}", "--id", DATASET], "already exists"),
    (["{run}", "--id", "no spaces allowed"], "is not a Minari dataset id"),
    (["{run}", "--id", "../outside/walker-v0"], "is a path, not a Minari dataset id"),
    (["{run}", "--id", DATASET + "/inner-v0"], "lies inside the existing Minari dataset"),
    (["{tmp}"], "config.yaml: not a run's config"),
    (["{tmp}/nowhere"], "is not a directory"),
])
def test_export_refuses_bad_input_in_one_line_and_leaves_the_dataset_alone(exported, tmp_path, args, says):
    import minari

    run_dir, _ = exported
    args = [a.format(run=run_dir, tmp=tmp_path) for a in args]
    with pytest.raises(SystemExit) as stopped:  # python -m dagger.export, in-process
        export_main(args)
    assert isinstance(stopped.value.code, str) and "\n" not in stopped.value.code, stopped.value.code
    assert stopped.value.code.startswith("error: ") and says in stopped.value.code, stopped.value.code
    assert minari.load_dataset(DATASET).total_steps == 400


def test_an_export_killed_mid_write_leaves_nothing_that_blocks_the_next(exported, tmp_path, monkeypatch):
    import signal

    import minari

    from dagger import minari_datasets

    run_dir, _ = exported
    root = minari_datasets.dataset_path("")
    stale = root / f"{minari_datasets.STAGING}999999999-1" / "dagger-lab" / "half-v0"  # a killed export's leftovers
    stale.mkdir(parents=True)
    # an export killed while Minari writes: the staging folder is all it leaves, and the target is never made
    script = (f"import os, signal, minari; from dagger.export import main\n"
              f"real = minari.create_dataset_from_buffers\n"
              f"def killed(*a, **k):\n    real(*a, **k); os.kill(os.getpid(), signal.SIGKILL)\n"
              f"minari.create_dataset_from_buffers = killed\n"
              f"main([{str(run_dir)!r}, '--id', 'dagger-lab/killed-v0'])\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert not minari_datasets.dataset_path("dagger-lab/killed-v0").exists()
    export_main([str(run_dir), "--id", "dagger-lab/killed-v0"])  # the same id again: written in full
    assert minari.load_dataset("dagger-lab/killed-v0").total_steps == 400
    assert not list(root.glob(f"{minari_datasets.STAGING}*")), "stale staging folders are removed"


def step(env, obs, next_obs, ended=False):
    return env, obs, next_obs, ended


def test_episodes_split_at_resets_and_at_steps_taken_unrecorded():
    # env 0: s0 -> s1 -> s2 (terminates), then s9 -> s10; env 1: s5 -> s6, then a gap (s7 was never recorded) s8 -> s9
    rows = [step(0, 0, 1), step(1, 5, 6), step(0, 1, 2, True), step(1, 8, 9), step(0, 9, 10)]
    env, obs, nxt, ended = (np.array(col) for col in zip(*rows))
    t = {"env": env, "obs": obs[:, None].astype(np.float32), "next_obs": nxt[:, None].astype(np.float32),
         "terminated": ended.astype(bool), "truncated": np.zeros(len(rows), bool)}
    assert [ix.tolist() for ix in episode_indices(t)] == [[0, 2], [1], [3], [4]]


def test_a_dataset_whose_env_spec_names_code_never_runs_it(exported, tmp_path, monkeypatch):
    """Minari keeps the env spec as JSON with an entry point; loading demonstrations never imports it."""
    import json
    import shutil

    import gymnasium as gym

    from dagger.minari_datasets import dataset_path, load_demonstrations

    (tmp_path / "planted.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('imported')\nclass Env: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    copy = tmp_path / "datasets"
    shutil.copytree(dataset_path(DATASET), copy / DATASET)
    meta_file = copy / DATASET / "data" / "metadata.json"
    meta = json.loads(meta_file.read_text())
    spec = json.loads(meta["env_spec"])
    spec["entry_point"] = "planted:Env"
    spec["additional_wrappers"] = [{"name": "Planted", "entry_point": "planted:Env", "kwargs": {}}]
    meta["env_spec"], meta["requirements"] = json.dumps(spec), ["planted"]
    meta_file.write_text(json.dumps(meta))
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(copy))
    env = gym.make("InvertedPendulum-v5")
    demos = load_demonstrations(DATASET, env.observation_space, env.action_space, "InvertedPendulum-v5")
    assert len(demos.obs) == 400
    assert not (tmp_path / "ran").exists()


def copy_dataset(tmp_path, monkeypatch) -> Path:
    """A private copy of the exported dataset (MINARI_DATASETS_PATH points at it); returns its data folder."""
    import shutil

    from dagger.minari_datasets import dataset_path

    copy = tmp_path / "datasets"
    shutil.copytree(dataset_path(DATASET), copy / DATASET)
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(copy))
    return copy / DATASET / "data"


def plant(tmp_path, monkeypatch) -> tuple[str, Path]:
    """A module `planted` on sys.path whose import leaves a marker file; returns its entry point and the marker."""
    (tmp_path / "planted.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w').write('imported')\nclass Env: ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "planted:Env", tmp_path / "ran"


def load():
    import gymnasium as gym

    from dagger.minari_datasets import load_demonstrations

    env = gym.make("InvertedPendulum-v5")
    return load_demonstrations(DATASET, env.observation_space, env.action_space, "InvertedPendulum-v5")


@pytest.mark.parametrize("space", ["observation_space", "action_space"])
def test_a_dataset_without_its_spaces_is_refused_without_building_its_env_spec(exported, tmp_path, monkeypatch,
                                                                               space):
    """Minari's reader builds the env spec when a space is missing from the metadata, which imports its entry point."""
    import json

    from dagger.config import ConfigError

    data = copy_dataset(tmp_path, monkeypatch)
    entry_point, marker = plant(tmp_path, monkeypatch)
    meta = json.loads((data / "metadata.json").read_text())
    spec = json.loads(meta["env_spec"])
    spec["entry_point"] = entry_point
    meta["env_spec"] = json.dumps(spec)
    del meta[space]
    (data / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=f"declares no {space}"):
        load()
    assert not marker.exists()


def rewrite_episode(data: Path, field: str, change) -> None:
    import h5py

    with h5py.File(data / "main_data.hdf5", "a") as f:
        value = f["episode_0"][field][()]
        del f["episode_0"][field]
        f["episode_0"][field] = change(value)


HOSTILE_DATASETS = {
    "wider observations": (lambda d: rewrite_episode(d, "observations", lambda v: np.concatenate([v, v], 1)),
                           "episode_0: observations has shape"),
    "a short action array": (lambda d: rewrite_episode(d, "actions", lambda v: v[:-3]), "episode_0: observations"),
    "actions far outside the bounds": (lambda d: rewrite_episode(d, "actions", lambda v: v * 100 + 50),
                                       "labelled actions lie outside"),
    "nan rewards": (lambda d: rewrite_episode(d, "rewards", lambda v: v * np.nan), "non-finite"),
    "inf observations": (lambda d: rewrite_episode(d, "observations", lambda v: np.full_like(v, np.inf)), "non-finite"),
    "strings for rewards": (lambda d: rewrite_episode(d, "rewards", lambda v: np.array([b"x"] * len(v))),
                            "rewards has shape"),
    "no rewards": (lambda d: rewrite_episode(d, "rewards", lambda v: np.zeros(0)), "rewards has shape"),
    "strings for labelled": (lambda d: rewrite_episode(d, "infos/labelled", lambda v: np.array([b"no"] * len(v))),
                             "infos['labelled'] has shape"),
    "numbers for labelled": (lambda d: rewrite_episode(d, "infos/labelled", lambda v: v.astype(np.float64)),
                             "expected (200,) booleans"),
    "garbage hdf5": (lambda d: (d / "main_data.hdf5").write_bytes(b"\x89HDF\r\n" + b"\0" * 100),
                     "is not a readable HDF5 file"),
    "a half-written export": (lambda d: (d / "main_data.hdf5").write_bytes((d / "main_data.hdf5").read_bytes()[:2000]),
                              "is not a readable HDF5 file"),
    "no data file": (lambda d: (d / "main_data.hdf5").unlink(), "is not a readable HDF5 file"),
    "metadata not json": (lambda d: (d / "metadata.json").write_text("{"), "metadata.json is not readable JSON"),
    "deeply nested metadata": (lambda d: (d / "metadata.json").write_text("[" * 100_000 + "]" * 100_000),
                               "metadata.json is not readable JSON"),
    "arrow format": (lambda d: (d / "metadata.json").write_text('{"data_format": "arrow"}'), "only Minari datasets"),
    "a space that is not JSON": (lambda d: (d / "metadata.json").write_text(
        (d / "metadata.json").read_text().replace('"action_space": "{', '"action_space": "[{')),
        "its action_space cannot be read"),
    "a discrete action space": (lambda d: (d / "metadata.json").write_text(__import__("json").dumps(
        {**__import__("json").loads((d / "metadata.json").read_text()),
         "action_space": '{"type": "Discrete", "dtype": "int64", "start": 0, "n": 3}'})),
        "its action space Discrete(3) does not match InvertedPendulum-v5's Box(-3.0, 3.0, (1,), float32)"),
    "a multi-discrete action space": (lambda d: (d / "metadata.json").write_text(__import__("json").dumps(
        {**__import__("json").loads((d / "metadata.json").read_text()),
         "action_space": '{"type": "MultiDiscrete", "dtype": "int64", "nvec": [2, 2], "start": [0, 0]}'})),
        "is not a flat Box or Discrete"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_DATASETS))
def test_a_malformed_dataset_is_one_line_naming_it(exported, tmp_path, monkeypatch, case):
    from dagger.config import ConfigError

    spoil, says = HOSTILE_DATASETS[case]
    spoil(copy_dataset(tmp_path, monkeypatch))
    with pytest.raises(ConfigError) as refused:
        load()
    message = str(refused.value)
    assert message.startswith(f"schedule.initial_demos='{DATASET}'") and says in message and "\n" not in message


def test_the_export_never_imports_a_module_its_config_names(exported, tmp_path, monkeypatch):
    import shutil

    from dagger.config import ConfigError
    from dagger.export import export

    run_dir, _ = exported
    entry_point, marker = plant(tmp_path, monkeypatch)
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "config.yaml").write_text((copy / "config.yaml").read_text().replace("id: InvertedPendulum-v5",
                                                                                  f"id: {entry_point}"))
    with pytest.raises(ConfigError, match="is not a registered gymnasium task"):
        export(copy, "dagger-lab/pendulum/planted-v0")
    assert not marker.exists()


def test_a_discrete_task_exports_its_choices_and_a_run_starts_from_them(tmp_path):
    """CartPole: the export holds the task's own integer choices (Minari checks them against Discrete(2)), and a
    run seeded with it has them as D's first labels, stored as D stores a choice."""
    import minari

    from tests.test_tasks import CARTPOLE

    run_in_process(tmp_path / "run", *CARTPOLE, "schedule.iterations=1")
    export_main([str(tmp_path / "run"), "--id", "dagger-lab/cartpole/roundtrip-v0"])
    dataset = minari.load_dataset("dagger-lab/cartpole/roundtrip-v0")
    acts = np.concatenate([e.actions for e in dataset.iterate_episodes()])
    assert acts.dtype.kind == "i" and acts.ndim == 1 and set(np.unique(acts)) == {0, 1}
    with np.load(tmp_path / "run" / "dataset.npz") as d:
        np.testing.assert_array_equal(acts, d["acts"][:, 0])  # DAgger labels every step: the same choices
    run_in_process(tmp_path / "seeded", *CARTPOLE, "schedule.iterations=1",
                   "schedule.initial_demos=dagger-lab/cartpole/roundtrip-v0")
    with np.load(tmp_path / "seeded" / "dataset.npz") as d:
        np.testing.assert_array_equal(d["acts"][:len(acts)], acts[:, None].astype(np.float32))
    assert pd.read_csv(tmp_path / "seeded" / "metrics.csv").expert_labels.tolist() == [len(acts), len(acts) + 500]
