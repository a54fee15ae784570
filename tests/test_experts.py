from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from dagger.config import ConfigError
from dagger.expert.expert import ExpertConfig, load_expert


def expert_cfg(algo: str, path) -> ExpertConfig:
    return ExpertConfig(algo=algo, path=str(path), deterministic=True)


@pytest.mark.parametrize("algo", ["sac", "td3", "tqc", "ppo"])
def test_each_algorithm_loads_and_labels_a_batch(algo, tiny_experts):
    env = gym.make("InvertedPendulum-v5")
    expert = load_expert(expert_cfg(algo, tiny_experts[algo]), "pendulum", env)
    obs = np.stack([env.observation_space.sample() for _ in range(7)])
    acts = expert.act(obs)
    assert acts.shape == (7, 1)
    assert np.all((acts >= env.action_space.low) & (acts <= env.action_space.high))
    np.testing.assert_array_equal(acts, expert.act(obs))  # deterministic labels


def test_zoo_layout_applies_its_observation_normalisation(tiny_experts):
    env = gym.make("InvertedPendulum-v5")
    expert = load_expert(expert_cfg("ppo", tiny_experts["ppo"]), "pendulum", env)
    assert expert.obs_normalizer is not None
    obs = np.array([[0.1, -0.2, 0.5, 1.0]], dtype=np.float32)
    normalized = expert.obs_normalizer.normalize_obs(obs)
    assert not np.allclose(normalized, obs)  # the statistics moved away from the identity
    raw, _ = expert.model.predict(normalized, deterministic=True)
    np.testing.assert_array_equal(expert.act(obs), raw)
    unnormalized, _ = expert.model.predict(obs, deterministic=True)
    assert not np.allclose(raw, unnormalized)


def test_missing_checkpoint_names_the_path_and_the_training_command(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_expert(expert_cfg("sac", tmp_path / "nope.zip"), "hopper", gym.make("Hopper-v5"))
    message = str(err.value)
    assert str(tmp_path / "nope.zip") in message
    assert "python experts/train.py env=hopper expert=sac" in message


def test_expert_for_another_env_names_both_spaces(tiny_experts):
    with pytest.raises(ConfigError) as err:
        load_expert(expert_cfg("sac", tiny_experts["sac"]), "hopper", gym.make("Hopper-v5"))
    assert "(4,)" in str(err.value) and "(11,)" in str(err.value) and "Hopper-v5" in str(err.value)


def test_wrong_algorithm_for_the_file_is_one_clear_error(tiny_experts):
    with pytest.raises(ConfigError, match="holds a SAC model, not PPO; use expert=sac"):
        load_expert(expert_cfg("ppo", tiny_experts["sac"]), "pendulum", gym.make("InvertedPendulum-v5"))


def test_missing_checkpoint_for_a_task_its_env_group_does_not_name_gives_that_tasks_command(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_expert(expert_cfg("sac", tmp_path / "nope.zip"), "walker", gym.make("Swimmer-v5"))
    assert str(err.value).endswith("`python experts/train.py env=walker expert=sac env.id=Swimmer-v5`")


def test_an_expert_whose_weights_hold_nan_is_refused_before_it_labels_anything(tmp_path, tiny_experts):
    import torch
    from stable_baselines3 import SAC

    model = SAC.load(tiny_experts["sac"], device="cpu")
    with torch.no_grad():
        next(model.policy.actor.parameters())[0, 0] = float("nan")
    model.save(tmp_path / "spoiled.zip")
    with pytest.raises(ConfigError, match=r"spoiled.zip: its weights hold nan or inf \(actor\."):
        load_expert(expert_cfg("sac", tmp_path / "spoiled.zip"), "pendulum", gym.make("InvertedPendulum-v5"))


def test_a_hugging_face_folder_loads_with_its_statistics_and_its_env_kwargs_checked(tiny_experts, tmp_path):
    """A folder as huggingface_sb3 downloads it: `<algo>-<EnvId>.zip`, `vec_normalize.pkl`, `config.yml`,
    `env_kwargs.yml`. It labels exactly as the same checkpoint in the zoo's layout (its statistics applied); without
    the statistics its config.yml's normalize refuses it, and env kwargs it was not trained with are one line."""
    import shutil

    run = next(tiny_experts["ppo"].glob("InvertedPendulum-v5_*"))
    hub = tmp_path / "hub"
    hub.mkdir()
    shutil.copy(run / "InvertedPendulum-v5.zip", hub / "ppo-InvertedPendulum-v5.zip")
    shutil.copy(run / "InvertedPendulum-v5" / "vecnormalize.pkl", hub / "vec_normalize.pkl")
    (hub / "config.yml").write_text("normalize: true\nn_timesteps: 128\n")
    (hub / "env_kwargs.yml").write_text("reset_noise_scale: 0.01\n")  # the task's own default
    env = gym.make("InvertedPendulum-v5")
    zoo = load_expert(ExpertConfig(algo="ppo", path=str(tiny_experts["ppo"]), deterministic=True), "pendulum", env)
    hubbed = load_expert(ExpertConfig(algo="ppo", path=str(hub), deterministic=True), "pendulum", env)
    states = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    np.testing.assert_array_equal(hubbed.act(states), zoo.act(states))
    assert hubbed.files["stats"] == str(hub / "vec_normalize.pkl") and hubbed.obs_normalizer is not None
    (hub / "env_kwargs.yml").write_text("reset_noise_scale: 0.5\n")
    with pytest.raises(ConfigError, match=r"trained with reset_noise_scale=0.5, and this run's InvertedPendulum-v5 "
                                          r"has reset_noise_scale=0.01"):
        load_expert(ExpertConfig(algo="ppo", path=str(hub), deterministic=True), "pendulum", env)
    (hub / "env_kwargs.yml").unlink()
    (hub / "vec_normalize.pkl").unlink()
    with pytest.raises(ConfigError, match="says normalize=True but there is no .*vec_normalize.pkl; copy the stat"):
        load_expert(ExpertConfig(algo="ppo", path=str(hub), deterministic=True), "pendulum", env)


@pytest.fixture(scope="module")
def discrete_experts(tmp_path_factory) -> dict[str, Path]:
    """A barely trained A2C and DQN on CartPole-v1 (A2C saves RMSprop in its policy_kwargs, DQN an exploration
    schedule: both pickled fields the safe loader must rebuild without unpickling)."""
    from dagger.expert.layout import algorithm_class
    from dagger.expert.training import console_logger

    folder, paths = tmp_path_factory.mktemp("discrete"), {}
    for algo, extra in (("a2c", {}), ("dqn", {"learning_starts": 10})):
        model = algorithm_class(algo)("MlpPolicy", gym.make("CartPole-v1"), seed=0, device="cpu",
                                      policy_kwargs={"net_arch": [32, 32]}, **extra)
        model.set_logger(console_logger(model))  # no /tmp/SB3-<date> folder
        model.learn(100)
        paths[algo] = folder / f"{algo}.zip"
        model.save(paths[algo])
    return paths


@pytest.mark.parametrize("algo", ["a2c", "dqn"])
def test_a2c_and_dqn_experts_load_safely_and_label_as_sb3_does(algo, discrete_experts):
    from dagger.actions import actions_of
    from dagger.expert.layout import algorithm_class

    env = gym.make("CartPole-v1")
    expert = load_expert(ExpertConfig(algo=algo, path=str(discrete_experts[algo]), deterministic=True), "cartpole", env)
    states = np.random.default_rng(0).normal(size=(256, 4)).astype(np.float32)
    reference = algorithm_class(algo).load(discrete_experts[algo], device="cpu").predict(states, deterministic=True)[0]
    np.testing.assert_array_equal(expert.act(states), actions_of(env.action_space).stored(reference))
    other = "dqn" if algo == "a2c" else "a2c"
    with pytest.raises(ConfigError, match=f"holds a {algo.upper()} model, not {other.upper()}; use expert={algo}"):
        load_expert(ExpertConfig(algo=other, path=str(discrete_experts[algo]), deterministic=True), "cartpole", env)


def test_a_dqn_expert_is_refused_on_continuous_actions_in_one_line(discrete_experts):
    env = gym.make("InvertedPendulum-v5")
    with pytest.raises(ConfigError, match=r"^expert=dqn: DQN chooses among discrete actions, and InvertedPendulum-v5"):
        load_expert(ExpertConfig(algo="dqn", path=str(discrete_experts["dqn"]), deterministic=True), "pendulum", env)
