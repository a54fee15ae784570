"""Every option of every config group composes, resolves and passes validation."""
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from dagger.app import RunConfig, parse_run
from dagger.config import ROOT_CONF
from dagger.schemas import parse
from dagger.expert.training import TrainConfig
from tests.conftest import ROOT, run_cli

GROUPS = {group: sorted(p.stem for p in (ROOT_CONF / group).glob("*.yaml"))
          for group in ("env", "expert", "obs", "policy", "schedule", "algo", "logger")}
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
    extra = ["expert.target=examples.cartpole_controller:balance"] if option == "python" else []  # conf has ???
    with initialize_config_dir(config_dir=str(ROOT_CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"{group}={option}", *extra])
        OmegaConf.to_container(cfg, resolve=True)
        run = parse_run(cfg)
        assert isinstance(run, RunConfig)
    # the option chosen is the one parsed: its name (an expert's algorithm, a logger's W&B mode; algo=dagger is
    # named by its schedule, the default `linear`)
    name_of = {"expert": lambda expert: expert.algo,
               "logger": lambda logger: {"disabled": "none", "offline": "wandb"}[logger.mode]}
    expected = run.schedule.name if (group, option) == ("algo", "dagger") else option
    assert name_of.get(group, lambda chosen: chosen.name)(getattr(run, group)) == expected
    if group in ("env", "expert") and option != "python":  # experts/train.py trains SB3 experts
        with initialize_config_dir(config_dir=str(ROOT_CONF), version_base="1.3"):
            train = compose("train", overrides=[f"{group}={option}"])
            assert Path(OmegaConf.to_container(train, resolve=True)["expert"]["path"]).suffix == ".zip"
            parse(TrainConfig, train)


@pytest.mark.parametrize("sweep", sorted(p.stem for p in (ROOT / "sweeps").glob("*.yaml") if p.stem != "base"))
def test_every_sweep_composes_and_validates(sweep):
    from hydra.core.hydra_config import HydraConfig

    with initialize_config_dir(config_dir=str(ROOT_CONF), version_base="1.3"):
        cfg = compose("config", overrides=[f"+sweeps={sweep}"], return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # logger.name interpolates ${hydra:job.override_dirname}
    assert parse_run(cfg).sweep_name == sweep


def test_each_learner_option_is_checked_by_its_own_class():
    """`policy._target_` picks the schema: an ensemble's keys are refused on a single MLP, and the typed groups hold
    their declared types (a float key given as 1 is 1.0)."""
    from dagger.config import ConfigError
    from dagger.policy.ensemble import EnsembleConfig
    from dagger.policy.mlp import MLPConfig

    with initialize_config_dir(config_dir=str(ROOT_CONF), version_base="1.3"):
        ensemble = parse_run(compose("config", overrides=["policy=ensemble", "policy.lr=1"]))
        single = compose("config", overrides=["policy=mlp", "+policy.members=3"])
    assert type(ensemble.policy) is EnsembleConfig and ensemble.policy.lr == 1.0 and type(ensemble.policy.lr) is float
    with pytest.raises(ConfigError, match="^policy.members: unknown key"):
        parse_run(single)
    assert issubclass(EnsembleConfig, MLPConfig)


def test_schedules_mean_what_their_names_say():
    with initialize_config_dir(config_dir=str(ROOT_CONF), version_base="1.3"):
        bc = compose("config", overrides=["schedule=bc"]).schedule
        linear = compose("config", overrides=["schedule.iterations=7"]).schedule
    assert (bc.beta, bc.beta_value) == ("constant", 1.0)
    # the default: beta falls over a fixed 20 iterations, whatever N (so a run of N iterations can be extended)
    assert (linear.name, linear.beta, linear.beta_ramp) == ("linear", "linear", 20)


def test_help_lists_groups_and_cfg_prints_the_config():
    out = run_cli("--help").stdout
    for group, options in GROUPS.items():
        assert f"{group}: {', '.join(options)}" in out
    job = run_cli("env=hopper", "--cfg", "job").stdout
    assert "id: Hopper-v5" in job and "rollout_steps: 1000" in job


@pytest.mark.parametrize("group, option", [(g, o) for g, o in OPTIONS if g in ("policy", "algo", "obs", "schedule")])
def test_help_shows_every_key_of_the_option_with_its_value_rule_and_help(group, option):
    """`python run.py --help` (dagger.keys): each key of every group, read from the schemas that check it."""
    from dagger.keys import keys_help
    from tests.conftest import compose

    lines = keys_help(compose(f"{group}={option}")).splitlines()
    keys = [k for k, line in enumerate(lines) if line.startswith("  ") and not line.startswith("      ")]
    helpless = [lines[k] for k in keys if not (lines[k + 1].startswith("      ") and lines[k + 1].strip())]
    assert keys and not helpless  # every key has its help
    if (group, option) == ("algo", "hg_dagger"):
        assert "  algo.takeover=0.3  [a finite number in [0, 2]]" in lines
        assert "the expert takes over above this action gap" in lines[lines.index(
            "  algo.takeover=0.3  [a finite number in [0, 2]]") + 1]


def test_run_py_help_lists_the_chosen_options_keys():
    result = run_cli("algo=dart", "--help")
    assert "algo (dart):" in result.stdout and "  algo.noise_scale=1.0  [a finite number >= 0]" in result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("option", GROUPS["algo"])
def test_each_algo_yaml_holds_its_supervisors_keys_with_the_classs_defaults(option):
    """A supervisor's keys are its keyword arguments (type, range, default and help in one place); its yaml repeats
    the defaults so that `algo.<key>=...` overrides them, and this test keeps the two the same."""
    from dagger.schemas import target_class
    from dagger.supervisors import Supervisor, keyword_schema
    from tests.conftest import compose

    algo = OmegaConf.to_container(compose(f"algo={option}").algo, resolve=True)
    cls = target_class("algo._target_", algo.pop("_target_"), lambda c: issubclass(c, Supervisor), "a supervisor")
    algo.pop("name")
    fields = keyword_schema(cls).model_fields
    assert algo == {name: info.default for name, info in fields.items()}, cls.__name__


def test_the_keys_a_resume_may_change_are_the_fields_marked_resumable():
    """More iterations, logging, videos and hardware change no number; every other key is the experiment's."""
    from dagger.runs import resumable_keys

    assert set(resumable_keys()) == {
        "schedule.iterations", "resume", "threads", "device", "optimized_metric",
        "eval.video", "eval.video_every", "eval.video_fps", "eval.video_size",
        "logger.mode", "logger.project", "logger.entity", "logger.group", "logger.job_type", "logger.name",
        "logger.tags"}


def readme_table(header: str) -> dict[str, list[str]]:
    """The README table whose header row starts with `header`: {first cell's option name: its cells}."""
    lines = (ROOT / "README.md").read_text().split(header, 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines]
    return {row[0].strip("`"): row for row in rows}


@pytest.mark.parametrize("group", ["env", "expert", "obs", "policy", "schedule", "algo", "logger"])
def test_the_readmes_key_tables_name_every_option_and_every_key_of_the_schemas(group):
    """The Configuration table lists each group's options and keys; an algorithm's keys are in the Algorithms
    table. A key added to a schema (or an option to conf/) fails here until the README names it."""
    from dagger.keys import schemas
    from tests.conftest import compose

    table = readme_table("| group | options | keys |")
    assert all(f"`{option}`" in table[group][1] for option in GROUPS[group]), table[group][1]
    for option in GROUPS[group]:
        cfg = compose(f"{group}={option}")
        skip = {"target"} | ({"name"} if group != "logger" else set()) | ({"algo"} if group == "expert" else set())
        keys = set(schemas(cfg)[group].model_fields) - skip
        if group == "algo":
            named = readme_table("| algo | who acts |")[option][3]
        else:
            named = table[group][2]
        missing = [key for key in keys if f"`{key}`" not in named and f"`{key}.*`" not in named]
        assert not missing, (group, option, missing)
