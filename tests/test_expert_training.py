"""experts/train.py: trains, checkpoints, resumes and ships, for off-policy and normalised on-policy experts."""
import contextlib
import io
import pickle
from types import SimpleNamespace

import pytest
import yaml

from dagger.config import ConfigError
from dagger.schemas import parse
from dagger.expert.publishing import publish
from dagger.expert.training import TrainConfig
from dagger.expert.training import train as train_expert
from dagger.files import sha256
from tests.conftest import Payload
from tests.test_validation import compose_config


def train(tmp_path, *overrides, check: bool = True) -> SimpleNamespace:
    """`python experts/train.py ...` in-process (its config composed as Hydra composes it, the overrides recorded):
    its return code, stdout and stderr (the `error:` line)."""
    args = ["env=pendulum", f"work_dir={tmp_path / 'work'}", f"ship_dir={tmp_path / 'ship'}", "publish_episodes=2",
            "eval_episodes=1", *overrides]
    out, code, err = io.StringIO(), 0, ""
    with contextlib.redirect_stdout(out):
        try:
            settings = parse(TrainConfig, compose_config("train", args))
            publish(settings) if settings.publish_only else train_expert(settings)
        except ConfigError as refused:
            code, err = 1, f"error: {refused}\n"
    assert code == 0 or not check, err
    return SimpleNamespace(returncode=code, stdout=out.getvalue(), stderr=err)


def test_ppo_with_normalisation_ships_zoo_layout_and_manifest(tmp_path):
    args = ["expert=ppo", "+expert.train.hyperparams.n_steps=64", "+expert.train.hyperparams.batch_size=32",
            "eval_every=64",
            "checkpoint_every=64"]
    train(tmp_path, *args, "expert.train.timesteps=128")
    ship = tmp_path / "ship"
    model = ship / "ppo" / "InvertedPendulum-v5.zip"
    assert (ship / "ppo" / "InvertedPendulum-v5" / "vecnormalize.pkl").is_file()
    entry = yaml.safe_load((ship / "manifest.yaml").read_text())["ppo/InvertedPendulum-v5"]
    assert entry["sha256"] == sha256(model) and entry["file"] == "ppo/InvertedPendulum-v5.zip"
    assert entry["eval_episodes"] == 2 and entry["trained_timesteps"] == 128
    assert {"random_return_mean", "train_wall_time_s", "seed", "versions", "floor", "meets_floor"} <= set(entry)
    assert "expert.train.timesteps=128" in entry["command"] and "ship_dir" not in entry["command"]
    assert "ppo/InvertedPendulum-v5" in (ship / "README.md").read_text()

    result = train(tmp_path, *args, "expert.train.timesteps=192", "expert.trust=true")
    assert "resuming" in result.stdout and "at 128 steps" in result.stdout
    entry = yaml.safe_load((ship / "manifest.yaml").read_text())["ppo/InvertedPendulum-v5"]
    assert entry["trained_timesteps"] == 192

    train(tmp_path, "expert=ppo", "publish_only=true")  # without the training overrides
    entry = yaml.safe_load((ship / "manifest.yaml").read_text())["ppo/InvertedPendulum-v5"]
    assert entry["hyperparams"]["n_steps"] == 64 and "+expert.train.hyperparams.n_steps=64" in entry["command"]


def test_sac_resumes_with_its_replay_buffer(tmp_path):
    args = ["expert=sac", "expert.train.hyperparams.learning_starts=50", "eval_every=100", "checkpoint_every=100"]
    train(tmp_path, *args, "expert.train.timesteps=100")
    assert (tmp_path / "work" / "replay_buffer.pkl").is_file()
    result = train(tmp_path, *args, "expert.train.timesteps=200", "expert.trust=true")  # this test wrote them
    assert "at 100 steps" in result.stdout

    from stable_baselines3 import SAC

    model = SAC.load(tmp_path / "work" / "checkpoint.zip")
    model.load_replay_buffer(tmp_path / "work" / "replay_buffer.pkl")
    assert model.num_timesteps == 200 and model.replay_buffer.size() == 200


def test_keeps_the_best_evaluations_and_ships_one_of_them(tmp_path):
    train(tmp_path, "expert=sac", "expert.train.hyperparams.learning_starts=50", "eval_every=50",
          "checkpoint_every=100", "keep_candidates=2", "expert.train.timesteps=250")
    work = tmp_path / "work"
    evaluations = [line.split(",") for line in (work / "evaluations.csv").read_text().split()]
    assert len(evaluations) == 5
    best_two = sorted(evaluations, key=lambda e: -float(e[1]))[:2]
    kept = sorted(int(d.name) for d in (work / "candidates").iterdir())
    assert kept == sorted(int(e[0]) for e in best_two)
    entry = yaml.safe_load((tmp_path / "ship" / "manifest.yaml").read_text())["sac/InvertedPendulum-v5"]
    assert entry["timesteps"] in kept and entry["candidates"] == 2
    shipped = tmp_path / "ship" / "sac" / "InvertedPendulum-v5.zip"
    assert sha256(shipped) == sha256(work / "candidates" / str(entry["timesteps"]) / "InvertedPendulum-v5.zip")


def test_publishing_before_training_names_the_work_dir(tmp_path):
    result = train(tmp_path, "expert=sac", "publish_only=true", check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: work_dir={tmp_path / 'work'}: no trained")
    assert "python experts/train.py env=pendulum expert=sac" in result.stderr
    assert not (tmp_path / "ship").exists()


def test_keeping_no_candidates_is_refused_before_training(tmp_path):
    result = train(tmp_path, "expert=sac", "keep_candidates=0", check=False)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "error: keep_candidates=0 must be an integer >= 1"
    assert not (tmp_path / "work" / "checkpoint.zip").exists()


@pytest.mark.parametrize("name", ["checkpoint.zip", "replay_buffer.pkl", "vecnormalize.pkl"])
def test_a_work_folder_file_is_never_unpickled_without_trust(tmp_path, name):
    marker = tmp_path / "ran"
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / name).write_bytes(pickle.dumps(Payload(marker)))
    result = train(tmp_path, "expert.train.timesteps=100", check=False)
    last = result.stderr.strip().splitlines()[-1]
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert last.startswith(f"error: work_dir={tmp_path / 'work'} holds {name}") and "expert.trust=true" in last
    assert not marker.exists()
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == [name]  # nothing else was written
