"""Every option of every config group composes, resolves and passes validation."""
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from dagger import config
from dagger.config import ROOT_CONF, RUN_SPEC, TRAIN_SPEC, validate, validate_train
from tests.conftest import ROOT, run_cli

GROUPS = {group: sorted(p.stem for p in (ROOT_CONF / group).glob("*.yaml"))
          for group in ("env", "expert", "policy", "schedule", "algo", "logger")}
OPTIONS = [(group, option) for group, options in GROUPS.items() for option in options]


def test_groups_hold_the_documented_options():
    assert {"walker", "hopper", "halfcheetah", "ant", "humanoid", "pendulum"} <= set(GROUPS["env"])
    assert {"sac", "td3", "tqc", "ppo"} <= set(GROUPS["expert"])
    assert {"mlp", "gaussian"} <= set(GROUPS["policy"])
    assert {"dagger", "linear", "exponential", "constant", "bc"} <= set(GROUPS["schedule"])
    assert {"wandb", "none"} <= set(GROUPS["logger"])
    assert {"dagger", "bc", "dart", "hg_dagger", "ensemble_dagger"} <= set(GROUPS["algo"])
    assert {"mlp", "gaussian", "ensemble"} <= set(GROUPS["policy"])


@pytest.mark.parametrize("group, option", OPTIONS)
def test_option_composes_and_validates(group, option):
    with initialize_config_dir(config_dir=str(ROOT_CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"{group}={option}"])
        OmegaConf.to_container(cfg, resolve=True)
        validate(cfg)
        assert cfg[group] is not None
    if group in ("env", "expert"):
        with initialize_config_dir(config_dir=str(ROOT_CONF), version_base="1.3"):
            train = compose("train", overrides=[f"{group}={option}"])
            assert Path(OmegaConf.to_container(train, resolve=True)["expert"]["path"]).suffix == ".zip"
            validate_train(train)


@pytest.mark.parametrize("sweep", sorted(p.stem for p in (ROOT / "sweeps").glob("*.yaml") if p.stem != "base"))
def test_every_sweep_composes_and_validates(sweep):
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(config_dir=str(ROOT_CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"+sweeps={sweep}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # logger.name interpolates ${hydra:job.override_dirname}
    validate(cfg)
    assert cfg.sweep_name == sweep


def test_the_spec_knows_every_key_of_every_option():
    """validate() refuses unknown keys, so each composed option above is fully described; and the
    choices it accepts are the ones the code implements."""
    from dagger.experts import ALGORITHMS
    from dagger.policy import ACTIVATIONS, LOSSES
    from dagger.schedules import KINDS
    from dagger.tracking import LOGGER_MODES

    assert set(RUN_SPEC["expert"]) == set(TRAIN_SPEC["expert"])
    assert config.ALGORITHMS == ALGORITHMS and config.LOSSES == LOSSES and config.BETA_KINDS == KINDS
    assert config.ACTIVATIONS == tuple(ACTIVATIONS) and config.LOGGER_MODES == tuple(LOGGER_MODES)


def test_schedules_mean_what_their_names_say():
    with initialize_config_dir(config_dir=str(ROOT_CONF), version_base="1.3"):
        bc = compose("config", overrides=["schedule=bc"]).schedule
        linear = compose("config", overrides=["schedule=linear", "schedule.iterations=7"]).schedule
    assert (bc.beta, bc.beta_value) == ("constant", 1.0)
    assert linear.beta_ramp == 7


def test_help_lists_groups_and_cfg_prints_the_config():
    out = run_cli("--help").stdout
    for group, options in GROUPS.items():
        assert f"{group}: {', '.join(options)}" in out
    job = run_cli("env=hopper", "--cfg", "job").stdout
    assert "id: Hopper-v5" in job and "rollout_steps: 1000" in job
