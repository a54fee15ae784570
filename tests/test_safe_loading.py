"""Loading an expert never runs code carried by its files, unless `expert.trust=true`; and the safe
loader acts exactly like SB3's own."""
from __future__ import annotations

import base64
import json
import os
import pickle
import re
import shutil
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import cloudpickle
import gymnasium as gym
import numpy as np
import pytest
import yaml
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

import dagger.expert.statistics
from dagger.actions import actions_of
from dagger.config import PROJECT_ROOT, ConfigError
from dagger.schemas import parse
from dagger.expert.expert import ExpertConfig, load_expert
from dagger.expert.layout import algorithm_class
from dagger.files import sha256
from tests.conftest import Payload

ENV_ID = "InvertedPendulum-v5"
EXPERTS = PROJECT_ROOT / "experts"
MANIFEST = yaml.safe_load((EXPERTS / "manifest.yaml").read_text())
SYSTEM = f"{os.system.__module__}.system"  # how a pickle names os.system ("posix.system" here)


def cfg(algo: str, path: Path, trust=None) -> ExpertConfig:
    """The `expert` group, checked as run.py checks it."""
    spec = {"algo": algo, "path": str(path), "deterministic": True}
    if trust is not None:
        spec["trust"] = trust
    return parse(ExpertConfig, spec, "expert.")


def pickled(obj: object, type_name: str | None = None, **readable) -> dict:
    """A field as SB3's `data_to_json` writes it, with an honest `:type:` unless told otherwise."""
    return {":type:": type_name or str(type(obj)), ":serialized:": base64.b64encode(pickle.dumps(obj)).decode(),
            **readable}


def rewrite_data(source: Path, target: Path, change: Callable[[dict], None]) -> Path:
    """Copy an SB3 zip, editing the JSON of its `data` entry."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == "data":
                data = json.loads(content)
                change(data)
                content = json.dumps(data).encode()
            dst.writestr(item, content)
    return target


def ppo_run(tiny_experts) -> Path:
    return tiny_experts["ppo"] / f"{ENV_ID}_1"


def states(env_id: str, n: int = 1000, seed: int = 0) -> np.ndarray:
    """Observations visited by random actions, resetting when an episode ends."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    visited = []
    for _ in range(n):
        visited.append(obs)
        obs, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            obs, _ = env.reset()
    return np.stack(visited)


def refused(load: Callable[[], object], marker: Path, *names: str) -> str:
    """Loading raises one ConfigError line naming `names`, and the payload never ran."""
    with pytest.raises(ConfigError) as err:
        load()
    message = str(err.value)
    assert not marker.exists(), "the payload ran"
    assert "\n" not in message
    for name in names:
        assert name in message
    return message


# ------------------------------------------------------------------------------- crafted model files

CRAFTED_FIELDS = {
    "new key": lambda data, m: data.update(foo=pickled(Payload(m))),
    "policy_kwargs": lambda data, m: data.update(policy_kwargs=pickled(Payload(m))),
    "ep_info_buffer": lambda data, m: data.update(ep_info_buffer=pickled(Payload(m))),
    "observation_space": lambda data, m: data.update(observation_space=pickled(Payload(m))),
    # a pickled policy_kwargs whose readable part holds something other than layers and activations
    "policy_kwargs entry": lambda data, m: data.update(policy_kwargs=pickled(
        Payload(m), "<class 'dict'>", net_arch=[32, 32], features_extractor_class="<class 'evil.Extractor'>")),
}
FIELD_NAMED = {"new key": "'foo'", "policy_kwargs": "'policy_kwargs'", "ep_info_buffer": "'ep_info_buffer'",
               "observation_space": "'observation_space'", "policy_kwargs entry": "features_extractor_class"}


@pytest.mark.parametrize("case", sorted(CRAFTED_FIELDS))
def test_crafted_model_field_is_refused_without_running(case, tiny_experts, tmp_path):
    marker = tmp_path / "ran"
    crafted = rewrite_data(tiny_experts["sac"], tmp_path / f"{ENV_ID}.zip", lambda d: CRAFTED_FIELDS[case](d, marker))
    message = refused(lambda: load_expert(cfg("sac", crafted), "pendulum", gym.make(ENV_ID)), marker,
                      str(crafted), FIELD_NAMED[case])
    assert "expert.trust=true" in message


@pytest.mark.parametrize("entry", ["policy.pth", "pytorch_variables.pth"])
def test_a_payload_planted_in_the_zips_weights_is_refused_without_running(entry, tiny_experts, tmp_path):
    """The weights are tensors read weights-only: a pickled object in their place (beside real weights) never runs."""
    import io

    import torch

    marker = tmp_path / "ran"
    crafted = tmp_path / f"{ENV_ID}.zip"
    with zipfile.ZipFile(tiny_experts["sac"]) as src, zipfile.ZipFile(crafted, "w") as dst:
        for item in src.infolist():
            content = src.read(item.filename)
            if item.filename == entry:
                weights = torch.load(io.BytesIO(content), weights_only=True)
                planted = io.BytesIO()
                torch.save({**weights, "payload": Payload(marker)}, planted)
                content = planted.getvalue()
            dst.writestr(item, content)
    assert entry in zipfile.ZipFile(crafted).namelist()
    message = refused(lambda: load_expert(cfg("sac", crafted), "pendulum", gym.make(ENV_ID)), marker, str(crafted),
                      "hold something other than tensors")
    assert "weights_only" not in message  # never the advice to load it unsafely


def test_payloads_disguised_as_known_fields_are_never_unpickled(tiny_experts, tmp_path):
    """Fields whose readable type looks right are rebuilt from readable parts; the blob is ignored."""
    marker = tmp_path / "ran"

    def disguise(data: dict) -> None:
        data["ep_info_buffer"] = pickled(Payload(marker), "<class 'collections.deque'>")
        data["policy_kwargs"] = pickled(Payload(marker), "<class 'dict'>", net_arch=[32, 32], use_sde=False,
                                        activation_fn="<class 'torch.nn.modules.activation.ReLU'>")
        blob = pickled(Payload(marker))[":serialized:"]
        data["observation_space"] = {**data["observation_space"], ":serialized:": blob}  # readable parts intact

    crafted = rewrite_data(tiny_experts["sac"], tmp_path / f"{ENV_ID}.zip", disguise)
    env = gym.make(ENV_ID)
    expert = load_expert(cfg("sac", crafted), "pendulum", env)
    benign = load_expert(cfg("sac", tiny_experts["sac"]), "pendulum", env)
    assert not marker.exists()
    obs = states(ENV_ID, 200)
    assert np.array_equal(expert.act(obs), benign.act(obs))


def test_trust_really_uses_sb3s_unpickling(tiny_experts, tmp_path):
    """The crafted payloads are live: with expert.trust=true SB3's own loader runs them."""
    marker = tmp_path / "ran"
    crafted = rewrite_data(tiny_experts["sac"], tmp_path / f"{ENV_ID}.zip",
                           lambda d: d.update(foo=pickled(Payload(marker))))
    load_expert(cfg("sac", crafted, trust=True), "pendulum", gym.make(ENV_ID))
    assert marker.exists()


def test_unknown_policy_class_is_refused(tiny_experts, tmp_path):
    def cnn(data: dict) -> None:
        data["policy_class"]["__init__"] = "<function CnnPolicy.__init__ at 0x7f0000000000>"

    crafted = rewrite_data(tiny_experts["sac"], tmp_path / f"{ENV_ID}.zip", cnn)
    refused(lambda: load_expert(cfg("sac", crafted), "pendulum", gym.make(ENV_ID)), tmp_path / "ran",
            str(crafted), "CnnPolicy")


def test_saved_action_bounds_must_match_the_env(tiny_experts, tmp_path):
    def narrower(data: dict) -> None:
        data["action_space"]["high"] = "[1.]"

    crafted = rewrite_data(tiny_experts["sac"], tmp_path / f"{ENV_ID}.zip", narrower)
    refused(lambda: load_expert(cfg("sac", crafted), "pendulum", gym.make(ENV_ID)), tmp_path / "ran",
            str(crafted), "action space", "high [1.]")


def test_the_safe_path_unpickles_nothing(tiny_experts, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("unpickled")

    monkeypatch.setattr(cloudpickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    monkeypatch.setattr(pickle, "loads", forbidden)
    expert = load_expert(cfg("ppo", tiny_experts["ppo"]), "pendulum", gym.make(ENV_ID))
    assert expert.obs_normalizer is not None


# ------------------------------------------------------------------------------- crafted statistics

def test_crafted_statistics_in_the_zoo_layout_are_refused(tiny_experts, tmp_path):
    marker = tmp_path / "ran"
    run = shutil.copytree(ppo_run(tiny_experts), tmp_path / "ppo" / f"{ENV_ID}_1")
    stats = run / ENV_ID / "vecnormalize.pkl"
    stats.write_bytes(pickle.dumps(Payload(marker)))
    refused(lambda: load_expert(cfg("ppo", tmp_path / "ppo"), "pendulum", gym.make(ENV_ID)), marker,
            str(stats), SYSTEM)


def test_crafted_statistics_beside_a_plain_zip_are_refused(tiny_experts, tmp_path):
    marker = tmp_path / "ran"
    model = shutil.copyfile(ppo_run(tiny_experts) / f"{ENV_ID}.zip", tmp_path / f"{ENV_ID}.zip")
    (tmp_path / "vecnormalize.pkl").write_bytes(pickle.dumps(Payload(marker)))
    refused(lambda: load_expert(cfg("ppo", model), "pendulum", gym.make(ENV_ID)), marker,
            str(tmp_path / "vecnormalize.pkl"), SYSTEM)


def test_statistics_smuggling_a_payload_inside_a_real_vecnormalize_are_refused(tiny_experts, tmp_path):
    marker = tmp_path / "ran"
    run = shutil.copytree(ppo_run(tiny_experts), tmp_path / "ppo" / f"{ENV_ID}_1")
    stats = run / ENV_ID / "vecnormalize.pkl"
    venv = VecNormalize.load(str(stats), DummyVecEnv([lambda: gym.make(ENV_ID)]))
    venv.extra = Payload(marker)
    venv.save(stats)
    refused(lambda: load_expert(cfg("ppo", tmp_path / "ppo"), "pendulum", gym.make(ENV_ID)), marker,
            str(stats), SYSTEM)


@pytest.mark.parametrize("spoil, named", [
    (lambda v: v.obs_rms.mean.__setitem__(0, np.nan), "obs_rms.mean holds inf or nan"),
    (lambda v: v.obs_rms.var.__setitem__(0, -1.0), "obs_rms.var has negative entries"),
    (lambda v: setattr(v, "epsilon", 0.0), "epsilon=0.0 must be a finite number > 0"),
    (lambda v: setattr(v, "clip_obs", float("inf")), "clip_obs=inf must be a finite number > 0"),
])
def test_statistics_that_would_feed_the_expert_nonsense_are_refused(tiny_experts, tmp_path, spoil, named):
    run = shutil.copytree(ppo_run(tiny_experts), tmp_path / "ppo" / f"{ENV_ID}_1")
    stats = run / ENV_ID / "vecnormalize.pkl"
    venv = VecNormalize.load(str(stats), DummyVecEnv([lambda: gym.make(ENV_ID)]))
    spoil(venv)
    venv.save(stats)
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_expert(cfg("ppo", tmp_path / "ppo"), "pendulum", gym.make(ENV_ID))


# ------------------------------------------------------------------------------- identical actions

@pytest.mark.parametrize("key", sorted(MANIFEST))
def test_shipped_expert_acts_exactly_like_sb3s_loader(key):
    entry = MANIFEST[key]
    path = EXPERTS / entry["file"]
    env = gym.make(entry["env_id"])
    safe = load_expert(cfg(entry["algo"], path), entry["env_id"], env)
    reference = algorithm_class(entry["algo"]).load(path, device="cpu")
    obs = states(entry["env_id"])
    ours = safe.act(obs)
    theirs = actions_of(env.action_space).stored(reference.predict(obs, deterministic=True)[0])  # as D stores them
    equal = int(np.sum(np.all(ours == theirs, axis=1)))
    print(f"{key}: {equal}/{len(obs)} equal actions")
    assert np.array_equal(ours, theirs)
    assert safe.files == {"algo": entry["algo"].upper(), "model": str(path), "model_sha256": entry["sha256"],
                          "stats": None, "stats_sha256": None}


def test_normalized_zoo_expert_acts_exactly_like_sb3s_loader(tiny_experts):
    run = ppo_run(tiny_experts)
    env = gym.make(ENV_ID)
    safe = load_expert(cfg("ppo", tiny_experts["ppo"]), "pendulum", env)
    trusted = load_expert(cfg("ppo", tiny_experts["ppo"], trust=True), "pendulum", env)
    reference = algorithm_class("ppo").load(run / f"{ENV_ID}.zip", device="cpu")
    venv = VecNormalize.load(str(run / ENV_ID / "vecnormalize.pkl"), DummyVecEnv([lambda: gym.make(ENV_ID)]))
    venv.training = False
    obs = states(ENV_ID)
    assert np.array_equal(safe.obs_normalizer.normalize_obs(obs), venv.normalize_obs(obs))
    ours, theirs = safe.act(obs), reference.predict(venv.normalize_obs(obs), deterministic=True)[0]
    equal = int(np.sum(np.all(ours == theirs, axis=1)))
    print(f"ppo/{ENV_ID} (VecNormalize): {equal}/{len(obs)} equal actions")
    assert np.array_equal(ours, theirs)
    assert np.array_equal(trusted.act(obs), ours)
    assert safe.files["stats"] == str(run / ENV_ID / "vecnormalize.pkl")
    assert safe.files["stats_sha256"] == sha256(run / ENV_ID / "vecnormalize.pkl")
    assert safe.files["model_sha256"] == sha256(run / f"{ENV_ID}.zip")


@pytest.mark.parametrize("algo", ["sac", "td3", "tqc"])
def test_trust_and_safe_paths_act_alike(algo, tiny_experts):
    env = gym.make(ENV_ID)
    obs = states(ENV_ID, 200)
    safe = load_expert(cfg(algo, tiny_experts[algo]), "pendulum", env)
    trusted = load_expert(cfg(algo, tiny_experts[algo], trust=True), "pendulum", env)
    assert np.array_equal(safe.act(obs), trusted.act(obs))
    assert safe.files == trusted.files


# ------------------------------------------------------------------------------- layouts and checks

def test_wrong_algorithm_names_the_one_in_the_file(tiny_experts):
    with pytest.raises(ConfigError) as err:
        load_expert(cfg("sac", tiny_experts["ppo"]), "pendulum", gym.make(ENV_ID))
    model = ppo_run(tiny_experts) / f"{ENV_ID}.zip"
    assert str(err.value) == f"expert.path={model} holds a PPO model, not SAC; use expert=ppo"


def test_zoo_log_root_resolves_with_the_configured_algorithm(tiny_experts, tmp_path):
    root = tiny_experts["ppo"].parent
    env = gym.make(ENV_ID)
    assert load_expert(cfg("ppo", root), "pendulum", env).files["model"] == str(ppo_run(tiny_experts) / f"{ENV_ID}.zip")
    assert load_expert(cfg("sac", root), "pendulum", env).files["model"] == str(tiny_experts["sac"])
    for n in (2, 10):  # the highest run, by number
        shutil.copytree(ppo_run(tiny_experts), tmp_path / "ppo" / f"{ENV_ID}_{n}")
    expected = tmp_path / "ppo" / f"{ENV_ID}_10" / f"{ENV_ID}.zip"
    assert load_expert(cfg("ppo", tmp_path), "pendulum", env).files["model"] == str(expected)


def zoo_run_without_stats(tiny_experts, tmp_path: Path, config: str) -> Path:
    run = tmp_path / "ppo" / f"{ENV_ID}_1"
    (run / ENV_ID).mkdir(parents=True)
    shutil.copyfile(ppo_run(tiny_experts) / f"{ENV_ID}.zip", run / f"{ENV_ID}.zip")
    (run / ENV_ID / "config.yml").write_text(config)
    return tmp_path / "ppo"


def test_zoo_config_asking_for_normalisation_needs_the_statistics(tiny_experts, tmp_path):
    config = yaml.dump(OrderedDict([("n_envs", 1), ("normalize", True), ("policy", "MlpPolicy")]))
    assert config.startswith("!!python/object/apply:collections.OrderedDict")  # what the zoo writes
    folder = zoo_run_without_stats(tiny_experts, tmp_path, config)
    refused(lambda: load_expert(cfg("ppo", folder), "pendulum", gym.make(ENV_ID)), tmp_path / "ran",
            str(folder / f"{ENV_ID}_1" / ENV_ID / "config.yml"), "normalize")


def test_zoo_config_without_normalisation_loads(tiny_experts, tmp_path):
    config = yaml.dump(OrderedDict([("normalize", False), ("policy_kwargs", "dict(net_arch=[32, 32])")]))
    folder = zoo_run_without_stats(tiny_experts, tmp_path, config)
    assert load_expert(cfg("ppo", folder), "pendulum", gym.make(ENV_ID)).obs_normalizer is None


def test_zoo_config_with_other_python_tags_is_refused(tiny_experts, tmp_path):
    marker = tmp_path / "ran"
    config = f"normalize: !!python/object/apply:os.system ['touch {marker}']\n"
    folder = zoo_run_without_stats(tiny_experts, tmp_path, config)
    refused(lambda: load_expert(cfg("ppo", folder), "pendulum", gym.make(ENV_ID)), marker, "config.yml")


def test_shipped_zip_copied_without_its_statistics_is_an_error(tiny_experts, tmp_path, monkeypatch):
    model = shutil.copyfile(ppo_run(tiny_experts) / f"{ENV_ID}.zip", tmp_path / f"{ENV_ID}.zip")
    manifest = tmp_path / "manifest.yaml"
    monkeypatch.setattr(dagger.expert.statistics, "SHIPPED_MANIFEST", manifest)
    manifest.write_text(yaml.safe_dump({f"ppo/{ENV_ID}": {"sha256": sha256(model), "normalize": True}}))
    refused(lambda: load_expert(cfg("ppo", model), "pendulum", gym.make(ENV_ID)), tmp_path / "ran",
            str(model), f"ppo/{ENV_ID}", "vecnormalize.pkl")
    manifest.write_text(yaml.safe_dump({f"ppo/{ENV_ID}": {"sha256": sha256(model), "normalize": False}}))
    assert load_expert(cfg("ppo", model), "pendulum", gym.make(ENV_ID)).obs_normalizer is None


def test_trust_must_be_a_bool(tiny_experts):
    with pytest.raises(ConfigError, match="^expert.trust='yes' must be true or false"):
        cfg("sac", tiny_experts["sac"], trust="yes")


def test_pickled_policy_kwargs_schedules_and_noise_are_rebuilt(tmp_path):
    """What zoo hyperparameters pickle (activation, per-network layers, schedule functions, action
    noise) is rebuilt from readable parts, acting exactly like SB3's own loader; other activations are refused."""
    import torch
    from stable_baselines3 import PPO, TD3
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make(ENV_ID)
    obs = states(ENV_ID, 200)
    ppo = PPO("MlpPolicy", env, n_steps=64, learning_rate=lambda p: 3e-4 * p, clip_range=lambda p: 0.2 * p,
              clip_range_vf=0.3, seed=0, device="cpu",
              policy_kwargs={"activation_fn": torch.nn.ReLU, "net_arch": {"pi": [16], "vf": [8]}, "ortho_init": False})
    td3 = TD3("MlpPolicy", env, action_noise=NormalActionNoise(np.zeros(1), np.ones(1)), seed=0, device="cpu",
              policy_kwargs={"net_arch": [16]})
    experts = {}
    for algo, model in (("ppo", ppo), ("td3", td3)):
        (tmp_path / algo).mkdir()
        model.save(tmp_path / algo / f"{ENV_ID}.zip")
        experts[algo] = load_expert(cfg(algo, tmp_path / algo), "pendulum", env)
        reference = type(model).load(tmp_path / algo / f"{ENV_ID}.zip", device="cpu")
        assert np.array_equal(experts[algo].act(obs), reference.predict(obs, deterministic=True)[0])
    assert isinstance(experts["ppo"].model.policy.mlp_extractor.policy_net[1], torch.nn.ReLU)  # PPO's default: Tanh

    ppo.policy_kwargs["activation_fn"] = torch.nn.Softplus
    (tmp_path / "softplus").mkdir()
    ppo.save(tmp_path / "softplus" / f"{ENV_ID}.zip")
    refused(lambda: load_expert(cfg("ppo", tmp_path / "softplus"), "pendulum", env), tmp_path / "ran",
            "'policy_kwargs'", "activation_fn")
