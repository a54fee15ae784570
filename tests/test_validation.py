"""Bad input, on every entry point, stops with one clear line before any work.

`BAD_INPUTS` is the table: each entry is a command-line input of run.py, experts/train.py or
`python -m dagger.report` that must be refused with a message naming the key (or file). Most are
checked in-process here (compose + the same checks the entry point makes before any work); a few
go through the real command line. `python -m tests.benchmarks.bad_inputs` runs every entry through
the real command line.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT, run_cli


@dataclass(frozen=True)
class Bad:
    """One bad input. `key` is what the message must start with (default: the last override's key);
    `says` an optional further part of the message. `hydra`: Hydra's own message refuses it (it names
    the key but is not an `error:` line). Report entries name a folder `setup` instead of args; with
    `broken` the report carries on and lists that job as `broken: <file>: ...`."""

    entry: str                     # run, train or report
    args: tuple[str, ...] = ()
    key: str = ""
    says: str = ""
    hydra: bool = False
    setup: str = ""
    broken: bool = False

    @property
    def names(self) -> str:
        if self.key:
            return self.key
        return self.args[-1].split("=", 1)[0].lstrip("+~")

    @property
    def id(self) -> str:
        return f"{self.entry}:{self.setup or ' '.join(self.args)}"


def run(*args: str, **kw) -> Bad:
    return Bad("run", args, **kw)


def train(*args: str, **kw) -> Bad:
    return Bad("train", args, **kw)


def report(setup: str, **kw) -> Bad:
    return Bad("report", setup=setup, **kw)


INT_ONE = "must be an integer >= 1"
BAD_INPUTS: list[Bad] = [
    # ---- run.py: the schedule ----
    run("schedule.iterations=inf", says=INT_ONE),
    run("schedule.iterations=2.5", says="schedule.iterations=2.5 must be an integer >= 1"),
    run("schedule.iterations=2.0", says=INT_ONE),
    run("schedule.iterations=0", says="schedule.iterations=0 must be an integer >= 1"),
    run("schedule.iterations=-3", says=INT_ONE),
    run("schedule.iterations=abc", says=INT_ONE),
    run("schedule.iterations=true", says=INT_ONE),
    run("schedule.iterations=null", says=INT_ONE),
    run("schedule.iterations=[1]", says=INT_ONE),
    run("schedule.iterations=${nope}", says="cannot resolve"),
    run("~schedule.iterations", says="missing"),
    run("schedule.rollout_steps=inf", says=INT_ONE),
    run("schedule.rollout_steps=0", says=INT_ONE),
    run("schedule.rollout_steps=1.5", says=INT_ONE),
    run("schedule.rollout_steps=abc", says=INT_ONE),
    run("schedule.collection=slices", says="is not one of episodes, carry_over"),
    run("schedule.collection=null", says="is not one of episodes, carry_over"),
    run("schedule.initial_expert_steps=-1", says="must be an integer >= 0"),
    run("schedule.initial_expert_steps=nan", says="must be an integer >= 0"),
    run("schedule.initial_expert_steps=0.5", says="must be an integer >= 0"),
    run("schedule.beta=cosine", says="is not one of indicator, constant, linear, exponential"),
    run("schedule.beta=1", says="is not one of indicator, constant, linear, exponential"),
    run("schedule=constant", "schedule.beta_value=1.5", says="schedule.beta_value=1.5 is outside [0, 1]"),
    run("schedule=constant", "schedule.beta_value=-0.1", says="is outside [0, 1]"),
    run("schedule.beta_value=nan", says="must be a finite number in [0, 1]"),
    run("schedule.beta_value=inf", says="must be a finite number in [0, 1]"),
    run("schedule.beta_value=abc", says="must be a finite number in [0, 1]"),
    run("schedule=linear", "schedule.beta_ramp=abc", says=INT_ONE),
    run("schedule=linear", "schedule.beta_ramp=0", says=INT_ONE),
    run("schedule=linear", "schedule.beta_ramp=2.5", says=INT_ONE),
    run("schedule.name=", says="must be a non-empty string"),
    run("+schedule.iteration=5", says="unknown key"),
    run("schedule=nope", hydra=True),
    # ---- run.py: the algorithm (its supervisor) ----
    run("algo.name=", says="must be a non-empty string"),
    run("algo._target_=", key="algo._target_", says="must be a non-empty string"),
    run("algo._target_=dagger.nope.Thing", says="is not a supervisor class"),
    run("+algo.foo=1", says="unknown key for linear (BetaMixture takes no keys)"),  # algo=dagger: named by its schedule
    run("algo=bc", "+algo.beta=1.5", says="unknown key for bc"),  # BC is schedule=bc: beta = 1 throughout
    run("algo=bc", "schedule=linear", key="schedule.beta", says="is not algo=bc's beta = 1 throughout"),
    run("algo=bc", "schedule.beta_value=0.5", key="schedule.beta_value", says="is not algo=bc's beta = 1"),
    run("algo=safe_dagger", "algo.tau=3", says="is outside [0, 2]"),
    run("algo=safe_dagger", "algo.tau=abc", says="must be a finite number in [0, 2]"),
    run("algo=safe_dagger", "+algo.tau_sup=0.1", says="unknown key for safe_dagger"),
    run("algo=lazy_dagger", "algo.tau_auto=0.5", says="must be <= algo.tau_sup=0.1"),
    run("algo=lazy_dagger", "algo.tau_sup=-1", says="is outside [0, 2]"),
    run("algo=lazy_dagger", "algo.noise_std=-0.1", says="must be a finite number >= 0"),
    run("algo=lazy_dagger", "algo.noise_std=inf", says="must be a finite number >= 0"),
    run("algo=thrifty_dagger", "algo.target_rate=0", says="must be a finite number > 0"),
    run("algo=thrifty_dagger", "algo.target_rate=1.5", says="must be in (0, 1)"),
    run("algo=thrifty_dagger", "algo.target_rate=nan", says="must be a finite number > 0"),
    run("algo=thrifty_dagger", "algo.gamma=1", says="is outside [0, 0.999]"),
    run("algo=thrifty_dagger", "algo.gate_minibatches=0", says="algo.gate_minibatches=0 must be an integer >= 1"),
    run("algo=safe_dagger", "algo.gate_minibatches=2.5", says="algo.gate_minibatches=2.5 must be an integer >= 1"),
    run("algo=dart", "algo.noise_scale=-1", says="algo.noise_scale=-1 must be a finite number >= 0"),
    run("algo=hg_dagger", "algo.takeover=0.1", "algo.handback=0.2", says="must be <= algo.takeover=0.1"),
    run("algo=ensemble_dagger", "policy=mlp", key="algo", says="=ensemble_dagger needs a learner with an uncertainty"),
    run("policy._target_=dagger.policy.fitting.mlp", says="is not a learner class"),
    run("algo=nope", hydra=True),
    # ---- run.py: the learner ----
    run("policy=ensemble", "policy.members=0", says="policy.members=0 must be an integer in [1, 256]"),
    run("policy=ensemble", "policy.members=2.5", says="must be an integer in [1, 256]"),
    run("policy=ensemble", "policy.bootstrap=maybe", says="must be true or false"),
    run("policy.lr=nan", says="policy.lr=nan must be a finite number > 0"),
    run("policy.lr=inf", says="must be a finite number > 0"),
    run("policy.lr=0", says="must be a finite number > 0"),
    run("policy.lr=-0.001", says="must be a finite number > 0"),
    run("policy.lr=abc", says="must be a finite number > 0"),
    run("~policy.lr", says="missing"),
    run("policy.weight_decay=-1", says="must be a finite number >= 0"),
    run("policy.weight_decay=nan", says="must be a finite number >= 0"),
    run("policy.weight_decay=inf", says="must be a finite number >= 0"),
    run("policy.epochs=-1", says="must be a finite number >= 0"),
    run("policy.epochs=nan", says="must be a finite number >= 0"),
    run("policy.epochs=abc", says="must be a finite number >= 0"),
    run("policy.lr_schedule=step", says="is not one of constant, cosine"),
    run("policy.hidden=[-3]", says="must be a list of integers >= 1"),
    run("policy.hidden=abc", says="must be a list of integers >= 1"),
    run("policy.hidden=[64,0]", says="must be a list of integers >= 1"),
    run("policy.hidden=[64.5]", says="must be a list of integers >= 1"),
    run("policy.hidden=[true]", says="must be a list of integers >= 1"),
    run("policy.hidden=5", says="must be a list of integers >= 1"),
    run("policy.hidden=[a,b]", says="must be a list of integers >= 1"),
    run("policy.hidden=[1,", says="cannot parse the override 'policy.hidden=[1,': no viable"),
    run("policy.batch_size=0", says=INT_ONE),
    run("policy.batch_size=1.5", says=INT_ONE),
    run("policy.batch_size=abc", says=INT_ONE),
    run("policy.gradient_steps=0", says=INT_ONE),
    run("policy.gradient_steps=-5", says=INT_ONE),
    run("policy.gradient_steps=inf", says=INT_ONE),
    run("policy.loss=l1", says="is not one of mse, gaussian"),
    run("policy.activation=sigmoid", says="is not one of relu, tanh, elu"),
    run("policy.warm_start=maybe", says="must be true or false"),
    run("policy.warm_start=1", says="must be true or false"),
    run("policy.ema=1", says="policy.ema=1 is outside [0, 0.9999]"),
    run("policy.ema=-0.5", says="is outside [0, 0.9999]"),
    run("policy.lr_decay=0", says="policy.lr_decay=0 must be a finite number in (0, 1]"),
    run("policy.lr_decay=1.5", says="must be a finite number in (0, 1]"),
    run("policy.lr_decay=abc", says="must be a finite number in (0, 1]"),
    run("policy.batch_size=1000000000", says="one minibatch would need about"),
    run("+policy.dropout=0.1", says="unknown key"),
    run("policy=nope", hydra=True),
    # ---- run.py: top-level keys ----
    run("seed=abc", says="must be an integer in [0, 4294967295]"),
    run("seed=-1", says="must be an integer in [0, 4294967295]"),
    run("seed=1.5", says="must be an integer in [0, 4294967295]"),
    run("seed=2.0", says="must be an integer in [0, 4294967295] (write 2, without a"),
    run("seed=4294967296", says="must be an integer in [0, 4294967295]"),
    run("seed=true", says="must be an integer in [0, 4294967295]"),
    run("seed=null", says="must be an integer in [0, 4294967295]"),
    run("seed=[0", says="cannot parse the override 'seed=[0': no viable alternative"),
    run("device=tpu", says="device='tpu' is not one of cpu, cuda, auto"),
    run("device=1", says="is not one of cpu, cuda, auto"),
    run("threads=0", says=INT_ONE),
    run("threads=1.5", says=INT_ONE),
    run("threads=abc", says=INT_ONE),
    run("eval.episodes=1.5", says="must be an integer in [1, 1024]"),
    run("eval.episodes=0", says="must be an integer in [1, 1024]"),
    run("eval.episodes=abc", says="must be an integer in [1, 1024]"),
    run("eval.every=0", says=INT_ONE),
    run("eval.every=1.5", says=INT_ONE),
    run("+eval.foo=1", says="unknown key"),
    run("eval.video=maybe", says="must be null or true or false"),
    run("eval.video_every=0", says=INT_ONE),
    run("eval.video_fps=0", says=INT_ONE),
    run("eval.video_size=[320]", says="eval.video_size=[320] must be a list of 2 integers in [16, 4096]"),
    run("eval.video_size=[8,8]", says="a list of 2 integers in [16, 4096]"),
    run("eval.video_size=320", says="a list of 2 integers in [16, 4096]"),
    run("schedule.initial_demos=5", says="must be null or a non-empty string"),
    run("schedule.initial_demos=nope/walker/none-v0", says="no local Minari dataset of that id"),
    run("schedule.initial_demos=../../etc/walker-v0", says="is a path, not a Minari dataset id"),
    run("schedule.initial_demos=/tmp/walker-v0", says="is a path, not a Minari dataset id"),
    run("schedule.initial_demos=dagger-lab/../walker-v0", says="is a path, not a Minari dataset id"),
    run("schedule.initial_expert_steps=300", "schedule.initial_demos=nope/walker/none-v0", key="schedule.initial_demos",
        says="both make iteration 0's demonstrations"),
    run("resume=maybe", says="must be true or false"),
    run("resume=0", says="must be true or false"),
    run("+foo=1", says="foo: unknown key (not in conf/; check the spelling)"),
    run("foo=1", hydra=True),
    run("+sweeps=base", key="sweep_name", says="no value given"),
    # ---- run.py: the environment ----
    run("env.max_episode_steps=-1", says="must be null"),
    run("env.max_episode_steps=0", says="must be null or an integer >= 1"),
    run("env.max_episode_steps=abc", says="must be null or an integer >= 1"),
    run("env.max_episode_steps=1.5", says="must be null or an integer >= 1"),
    run("env.num_envs=0", says="must be an integer in [1, 1024]"),
    run("env.num_envs=2.5", says="must be an integer in [1, 1024]"),
    run("env.num_envs=abc", says="must be an integer in [1, 1024]"),
    run("env.id=Nope-v0", says="not a registered gymnasium environment"),
    run("env=pendulum", "env.id=", key="env.id", says="must be a non-empty string (a gymnasium environment id)"),
    run("env=pendulum", "env.id=CarRacing-v3", says="needs flat vector (1-D Box) observations"),
    run("env=cartpole", "expert=ppo", "schedule.collection=carry_over", key="schedule.collection",
        says="CartPole-v1 is not a MuJoCo task"),
    run("env=cartpole", "expert=ppo", "policy=gaussian", key="policy.loss", says="fits continuous actions"),
    run("env=pendulum", "policy=classifier", key="policy.loss", says="fits discrete choices"),
    run("env=cartpole", "expert=python", key="expert.target", says="no value given"),
    run("env=cartpole", "expert=python", "expert.target=examples.nope:balance", says="cannot import examples.nope"),
    run("env=cartpole", "expert=python", "expert.target=examples.cartpole_controller:nope", says="has no nope"),
    run("env=cartpole", "expert=python", "expert.target=examples.cartpole_controller", says="package.module:name"),
    run("env=cartpole", "expert=python", "expert.target=numpy:pi", says="pi is not callable"),
    run("env=cartpole", "expert=python", "expert.target=examples.cartpole_controller:Proportional",
        "+expert.kwargs.bogus=1", key="expert.kwargs", says="Proportional(bogus) fails"),
    run("env=pendulum", "expert=python", "expert.target=examples.cartpole_controller:balance", key="expert.target",
        says="returned shape (32,); expected (32, 1)"),
    run("env=pendulum", "+expert.target=examples.cartpole_controller:balance", key="expert.target",
        says="is for expert=python"),
    run("env=pendulum", "env.id=FrozenLake-v1", says="observation space"),
    run("env=pendulum", "env.kwargs=abc", says="must be a mapping"),
    run("env=walker", "+env.kwargs.bogus_kw=1", key="env.kwargs",
        says="env.kwargs: Walker2d-v5 does not accept bogus_kw"),
    run("env=pendulum", "+env.kwargs.reset_noise_scale=abc", key="env.kwargs",
        says="InvertedPendulum-v5 fails with these keyword arguments:"),
    run("env=pendulum", "env.name=", says="must be a non-empty string"),
    run("env=nope", hydra=True),
    run("env=pendulum", "+env.kwargs.render_mode=human", key="env.kwargs.render_mode", says="offscreen"),
    run("env=pendulum", "+env.kwargs.render_mode=rgb_array", key="env.kwargs.render_mode",
        says="is refused: runs render their videos offscreen themselves"),
    # ---- run.py: the student's view ----
    run("obs=no_velocity", "obs.history=0", says="obs.history=0 must be an integer >= 1"),
    run("obs.history=2.5", says=INT_ONE),
    run("obs.history=abc", says=INT_ONE),
    run("obs.actions=maybe", says="must be true or false"),
    run("obs=noisy", "obs.noise_std=-0.1", says="must be a finite number >= 0"),
    run("obs=noisy", "obs.noise_std=inf", says="must be a finite number >= 0"),
    run("+obs.noise_std=0.1", says="unknown key"),
    run("obs._target_=os.system", says="is not a view class"),
    run("obs=nope", hydra=True),
    run("policy=gru", "obs.history=2", "policy.steps=1", says="policy.steps=1 must be >= 2"),
    run("policy=gru", "obs.history=4", "policy.gru_size=0", says="policy.gru_size=0 must be an integer >= 1"),
    run("policy=gru", "obs.history=4", "policy.steps=3", says="does not divide the view's width"),
    run("obs=pixels", "obs.size=[8,64]", key="obs.size", says="must be a list of 2 integers in [16, 512]"),
    run("obs=pixels", "obs.size=[64]", key="obs.size", says="must be a list of 2 integers in [16, 512]"),
    run("obs=pixels", "obs.proprio=maybe", says="must be true or false"),
    run("policy=cnn", "obs=pixels", "policy.augment=17", says="policy.augment=17 must be an integer in [0, 16]"),
    run("policy=cnn", "obs=pixels", "policy.gru_size=-1", says="policy.gru_size=-1 must be an integer in [0, 4096]"),
    run("policy=cnn", "obs=pixels", "policy.features=0", says="policy.features=0 must be an integer >= 1"),
    run("obs=no_velocity", "schedule.initial_demos=nope/walker/none-v0", key="schedule.initial_demos",
        says="no local Minari dataset of that id"),
    run("optimized_metric=loss", says="is not one of final_normalized_return"),
    # ---- run.py: the expert ----
    run("expert.algo=ddpg", says="is not one of sac, td3, tqc, ppo, a2c, dqn, python"),
    run("expert.path=", says="must be null or a non-empty string"),
    run("expert.path=/nonexistent/expert.zip", says="no sac checkpoint"),
    run("env=pendulum", "env.id=Swimmer-v5", key="expert.path", says="env=pendulum expert=sac env.id=Swimmer-v5"),
    run("expert.deterministic=abc", says="must be true or false"),
    run("++expert.trust=abc", says="must be true or false"),
    run("expert.train.timesteps=abc", says=INT_ONE),
    run("expert.train.hyperparams=abc", says="must be a mapping"),
    run("expert=nope", hydra=True),
    # ---- run.py: the logger ----
    run("logger.mode=loud", says="is not one of offline, online, disabled"),
    run("logger.project=a/b", says="must not contain /"),
    run("logger.project=a:b", says="must not contain : (forbidden: / \\ # ? % :)"),
    run("logger.project=what?", says="must not contain ? (forbidden: / \\ # ? % :)"),
    run("logger.project=", says="must be a non-empty string"),
    run("logger.tags=abc", says="must be a list of non-empty strings of at most 64 characters"),
    run("logger.tags=['']", says="must be a list of non-empty strings of at most 64 characters"),
    run("logger.entity=[1]", says="must be null or a non-empty string"),
    run("logger=nope", hydra=True),

    # ---- experts/train.py ----
    train("eval_every=0", says="eval_every=0 must be an integer >= 1"),
    train("eval_every=abc", says=INT_ONE),
    train("eval_every=1.5", says=INT_ONE),
    train("eval_every=[1,", says="cannot parse the override 'eval_every=[1,': no viable"),
    train("checkpoint_every=0", says=INT_ONE),
    train("checkpoint_every=-1", says=INT_ONE),
    train("torch_threads=0", says=INT_ONE),
    train("torch_threads=abc", says=INT_ONE),
    train("eval_episodes=0", says=INT_ONE),
    train("eval_episodes=2.5", says=INT_ONE),
    train("publish_episodes=0", says=INT_ONE),
    train("publish_episodes=abc", says=INT_ONE),
    train("publish_only=true", "publish_episodes=0", says=INT_ONE),
    train("keep_candidates=0", says="keep_candidates=0 must be an integer >= 1"),
    train("keep_candidates=1.5", says=INT_ONE),
    train("expert.train.timesteps=abc", says=INT_ONE),
    train("expert.train.timesteps=0", says=INT_ONE),
    train("expert.train.timesteps=1e6", says="(write 1000000, without a decimal point or exponent)"),
    train("expert.train.normalize=maybe", says="must be true or false"),
    train("expert.train.hyperparams=abc", says="must be a mapping"),
    train("+expert.train.hyperparams.bogus=1", key="expert.train.hyperparams",
          says="expert.train.hyperparams: SAC does not accept bogus"),
    train("expert.algo=ddpg", says="is not one of sac, td3, tqc, ppo, a2c, dqn, python"),
    train("seed=-1", says="must be an integer in [0, 4294967295]"),
    train("seed=abc", says="must be an integer in [0, 4294967295]"),
    train("publish_only=maybe", says="must be true or false"),
    train("floors=abc", says="must be a mapping of names to finite numbers"),
    train("+floors.Foo-v0=abc", says="floors.Foo-v0='abc' must be a finite number"),
    train("work_dir=", says="must be a non-empty string"),
    train("ship_dir=", says="must be a non-empty string"),
    train("+foo=1", says="unknown key"),
    train("foo=1", hydra=True),
    train("env=walker", "+env.kwargs.bogus_kw=1", key="env.kwargs", says="Walker2d-v5 does not accept bogus_kw"),
    train("env.max_episode_steps=-1", says="must be null or an integer >= 1"),
    train("env=cartpole", "expert=sac", key="expert", says="SAC cannot act in CartPole-v1's Discrete(2) actions"),
    train("env=pendulum", "env.id=CarRacing-v3", says="needs flat vector (1-D Box) observations"),
    train("env=cartpole", "expert=python", "expert.target=examples.cartpole_controller:balance",
          key="expert.algo", says="is your own callable; experts/train.py trains SB3 experts"),
    train("publish_only=true", key="work_dir", says="no trained candidates"),
    Bad("train", setup="manifest-not-yaml", key="ship_dir", says="manifest.yaml is unreadable"),
    Bad("train", setup="manifest-not-mapping", key="ship_dir", says="manifest.yaml is not a mapping"),
    Bad("train", setup="readme-without-markers", key="ship_dir", says="README.md lacks"),

    # ---- python -m dagger.report ----
    report("no-argument", key="error: the following arguments are required: multirun_dir"),
    report("missing-dir", key="is not a directory"),
    report("a-file", key="is not a directory"),
    report("empty-dir", key="no runs under"),
    report("bad-wandb-mode", key="argument --wandb-mode: invalid choice: 'sometimes'"),
    report("bad-reps", key="argument --reps: must be an integer >= 1, not '0'"),
    report("keep-in-a-file", key="--keep-in", says="is not a directory"),
    report("metrics-garbage", key="metrics.csv", broken=True),
    report("metrics-empty", key="metrics.csv", broken=True),
    report("metrics-missing-columns", key="metrics.csv", broken=True, says="missing columns normalized_return"),
    report("metrics-not-numeric", key="metrics.csv", broken=True, says="is not numeric"),
    report("metrics-no-iteration", key="metrics.csv", broken=True, says="missing columns iteration"),
    report("metrics-iteration-text", key="metrics.csv", broken=True, says="column iteration is not numeric"),
    report("metrics-iteration-repeated", key="metrics.csv", broken=True, says="not increasing whole numbers"),
    report("metrics-no-final-return", key="metrics.csv", broken=True, says="without a return at its last iteration"),
    report("status-unknown", key="status.json", broken=True, says="an unknown status"),
    report("status-not-json", key="status.json", broken=True),
    report("status-not-object", key="status.json", broken=True),
    report("status-binary", key="status.json", broken=True),
    report("overrides-not-yaml", key="overrides.yaml", broken=True),
    report("overrides-not-list", key="overrides.yaml", broken=True),
    report("config-not-yaml", key="config.yaml", broken=True),
    report("config-without-env-id", key="config.yaml", broken=True, says="no env.id"),
]


# ---- how each entry point is called: shared with tests/benchmarks/bad_inputs.py -----------------

def touches(case: Bad, group: str) -> bool:
    return any(a.lstrip("+~").split("=", 1)[0].split(".", 1)[0] == group for a in case.args)


def overrides(case: Bad, tmp: Path) -> list[str]:
    """Cheap settings first (the case's own overrides win), so that a wrongly accepted input finishes fast."""
    base = [] if touches(case, "env") else ["env=pendulum"]
    if case.entry == "run":
        base += [] if touches(case, "logger") else ["logger=none"]
        base += ["schedule.iterations=1", "schedule.rollout_steps=100", "policy.gradient_steps=50",
                 "eval.episodes=2", "policy.hidden=[32]"]
    else:
        sb3 = "expert=python" not in case.args  # a Python expert has no expert.train to shorten
        base += [f"work_dir={tmp / 'work'}", f"ship_dir={tmp / 'ship'}", *(["expert.train.timesteps=200"] * sb3),
                 "eval_every=100", "checkpoint_every=100", "eval_episodes=1", "publish_episodes=1"]
    return [*base, *case.args]


FINISHED_METRICS = ("iteration,return_mean,return_std,normalized_return,expert_labels,expert_return_mean,"
                    "expert_return_std,random_return_mean\n"
                    "1,900.0,10.0,0.9,100,1000.0,0.0,0.0\n"
                    "2,1000.0,0.0,1.0,200,1000.0,0.0,0.0\n")


def write_job(job: Path, overrides_yaml: str = "- seed=0\n", status: str | bytes = '{"status": "finished"}',
              metrics: str | bytes = FINISHED_METRICS, config_yaml: str | bytes = "env:\n  id: Hopper-v5\n") -> Path:
    """A sweep job's files as run.py leaves them (or as given, corrupt)."""
    for name, content in ((".hydra/overrides.yaml", overrides_yaml), ("status.json", status),
                          ("metrics.csv", metrics), (".hydra/config.yaml", config_yaml)):
        path = job / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return job


GARBAGE = bytes(range(256)) * 4
CORRUPTIONS = {  # setup -> what one job of a sweep gets wrong
    "metrics-garbage": {"metrics": GARBAGE},
    "metrics-empty": {"metrics": ""},
    "metrics-missing-columns": {"metrics": "iteration,return_mean\n1,5.0\n"},
    "metrics-not-numeric": {"metrics": FINISHED_METRICS.replace("0.9,100", "abc,100")},
    "metrics-no-iteration": {"metrics": FINISHED_METRICS.replace("iteration,", "").replace("\n1,", "\n").replace(
        "\n2,", "\n")},
    "metrics-iteration-text": {"metrics": FINISHED_METRICS.replace("\n2,", "\ntwo,")},
    "metrics-iteration-repeated": {"metrics": FINISHED_METRICS.replace("\n2,", "\n1,")},
    "metrics-no-final-return": {"metrics": FINISHED_METRICS.replace("1.0,200", ",200")},
    "status-unknown": {"status": '{"status": "done; rm -rf ~ (trust me)"}'},
    "status-not-json": {"status": '{"status": "fini'},
    "status-not-object": {"status": '["finished"]'},
    "status-binary": {"status": GARBAGE},
    "overrides-not-yaml": {"overrides_yaml": "- seed=1\n  - : [\n"},
    "overrides-not-list": {"overrides_yaml": "seed: 1\n"},
    "config-not-yaml": {"config_yaml": "env: {id: [\n"},
    "config-without-env-id": {"config_yaml": "seed: 0\n"},
}


def report_args(case: Bad, tmp: Path) -> list[str]:
    """Builds the folder the report entry is about; returns the report's arguments."""
    if case.setup == "no-argument":
        return []
    if case.setup == "missing-dir":
        return [str(tmp / "nowhere")]
    if case.setup == "a-file":
        (tmp / "file.txt").write_text("not a sweep\n")
        return [str(tmp / "file.txt")]
    if case.setup == "empty-dir":
        (tmp / "empty").mkdir(exist_ok=True)
        return [str(tmp / "empty")]
    if case.setup == "bad-wandb-mode":
        (tmp / "empty").mkdir(exist_ok=True)
        return [str(tmp / "empty"), "--wandb-mode", "sometimes"]
    if case.setup == "bad-reps":
        (tmp / "empty").mkdir(exist_ok=True)
        return [str(tmp / "empty"), "--reps", "0"]
    if case.setup == "keep-in-a-file":
        write_job(tmp / "sweep" / "good", "- seed=0\n")
        (tmp / "kept").write_text("a file, not a folder\n")
        return [str(tmp / "sweep"), "--reps", "100", "--keep-in", str(tmp / "kept")]
    root = tmp / "sweep"
    write_job(root / "good", "- seed=0\n- schedule.iterations=2\n")
    write_job(root / "broken", **{"overrides_yaml": "- seed=0\n- schedule.iterations=3\n", **CORRUPTIONS[case.setup]})
    return [str(root)]


SHIP_DIR_FILES = {  # train setup -> a file of ship_dir that shipping would rewrite, made unusable
    "manifest-not-yaml": ("manifest.yaml", "sac/Hopper-v5: {file: [\n"),
    "manifest-not-mapping": ("manifest.yaml", "- sac/Hopper-v5\n"),
    "readme-without-markers": ("README.md", "# Experts\n\nNo table here.\n"),
}


def prepare(case: Bad, tmp: Path) -> None:
    """Files a train entry is about (in its ship_dir)."""
    if case.entry == "train" and case.setup:
        name, text = SHIP_DIR_FILES[case.setup]
        (tmp / "ship").mkdir(exist_ok=True)
        (tmp / "ship" / name).write_text(text)


def command(case: Bad, tmp: Path) -> list[str]:
    """The real command line of the case (the files it is about are made on the way)."""
    prepare(case, tmp)
    if case.entry == "report":
        return [sys.executable, "-m", "dagger.report", *report_args(case, tmp)]
    script = "run.py" if case.entry == "run" else "experts/train.py"
    extra = [f"hydra.run.dir={tmp / 'run'}"] if case.entry == "run" else []
    return [sys.executable, str(ROOT / script), *overrides(case, tmp), *extra]


CLI_ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}


def run_command(cmd: list[str], timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=ROOT, env=CLI_ENV, capture_output=True, text=True, timeout=timeout)


def verdict(case: Bad, result: subprocess.CompletedProcess) -> tuple[bool, str]:
    """(handled as the rule says, the line that shows it)."""
    err = result.stderr.strip().splitlines()
    last = err[-1] if err else ""
    if "Traceback" in result.stderr:
        return False, "TRACEBACK " + last
    if case.broken:
        lines = [l for l in result.stdout.splitlines() if l.startswith("broken: ")]
        ok = result.returncode == 0 and any(case.names in l and case.says in l for l in lines)
        return ok, (lines[0] if lines else f"ACCEPTED (no broken job listed, exit {result.returncode})")
    if result.returncode == 0:
        return False, "ACCEPTED"
    if case.hydra:
        return case.names in result.stderr, "hydra: " + " | ".join(err[:2])
    return last.startswith("error: ") and case.names in last and case.says in last, last


# ---- in-process checks: the same checks each entry point makes before any work ----------------------

class Accepted(Exception):
    """Raised where the real entry point would start working."""


def compose_config(name: str, args: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig

    from dagger.config import ROOT_CONF, check_overrides

    check_overrides(args)
    with initialize_config_dir(config_dir=str(ROOT_CONF), version_base="1.3"):
        cfg = compose(name, overrides=args, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # ${hydra:...} interpolations resolve as in the real app
    return cfg


def check_run(args: list[str], tmp: Path) -> None:
    """run.py in-process (dagger.app.run): a refusal is its one line, before the run folder is touched."""
    from dagger.app import RunStopped, run
    from dagger.config import ConfigError

    try:
        run(compose_config("config", args), tmp / "run", videos=False)
    except RunStopped as stop:
        assert stop.status == "refused" and not (tmp / "run").exists(), (stop.status, str(stop))
        raise ConfigError(str(stop)) from None
    raise Accepted


def check_train(args: list[str], monkeypatch) -> None:
    """experts/train.py up to its first training step."""
    from dagger.schemas import parse
    from dagger.expert import publishing, training

    def started(*_, **__):
        raise Accepted

    monkeypatch.setattr(training, "CheckpointAndEvaluate", started)
    cfg = parse(training.TrainConfig, compose_config("train", args))
    if cfg.publish_only:
        publishing.publish(cfg)
    else:
        training.train(cfg)
    raise Accepted


def in_process_message(case: Bad, tmp: Path, monkeypatch, capsys) -> str:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from dagger.config import ConfigError

    try:
        if case.entry == "run":
            check_run(overrides(case, tmp), tmp)
        elif case.entry == "train":
            prepare(case, tmp)
            check_train(overrides(case, tmp), monkeypatch)
        else:
            from dagger.report import main

            main(report_args(case, tmp))
            return capsys.readouterr().out
    except ConfigError as err:
        assert "\n" not in str(err), "one line"
        return str(err)
    except (HydraException, OmegaConfBaseException) as err:
        assert case.hydra, f"Hydra refused it with {err!r}, not our one line"
        return str(err)
    except SystemExit as err:  # the report's own one-line errors
        return err.code if isinstance(err.code, str) else capsys.readouterr().err.strip()
    except Accepted:
        pytest.fail(f"{case.id} was accepted")
    pytest.fail(f"{case.id} was accepted")


def test_every_entry_states_the_reason_its_line_must_give():
    """A refusal that names the key for another reason (a wrong check firing) must fail its entry: every run.py and
    experts/train.py entry says why (a report entry's `key` is its reason; Hydra's own messages are Hydra's)."""
    vague = [c.id for c in BAD_INPUTS if not (c.says or c.hydra or c.entry == "report")]
    assert not vague, vague
    assert len({c.id for c in BAD_INPUTS}) == len(BAD_INPUTS), "duplicate entries"


@pytest.mark.parametrize("case", BAD_INPUTS, ids=lambda c: c.id)
def test_bad_input_is_refused_naming_the_key(case, tmp_path, monkeypatch, capsys):
    message = in_process_message(case, tmp_path, monkeypatch, capsys)
    if case.broken:
        lines = [line for line in message.splitlines() if line.startswith("broken: ")]
        assert len(lines) == 1 and case.names in lines[0] and case.says in lines[0], message
        assert "1 finished" in message and (tmp_path / "sweep" / "summary.csv").is_file()
    elif case.hydra:
        assert case.names in message
    elif case.entry == "report":
        assert message.startswith("error: ") and case.names in message and "\n" not in message, message
    else:
        assert message.startswith((f"{case.names}=", f"{case.names}:")), message
        assert case.says in message, message
    if case.entry == "train":
        assert not (tmp_path / "work").exists(), "refused before work_dir was made"


# ---- a few through the real command line -----------------------------------------------------------

def assert_one_error_line(result: subprocess.CompletedProcess, names: str) -> str:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and names in last, result.stderr
    return last


@pytest.mark.parametrize("args, names", [
    (["schedule.iterations=2.5"], "schedule.iterations=2.5 must be an integer >= 1"),
    (["env=walker", "+env.kwargs.bogus_kw=1"], "env.kwargs: Walker2d-v5 does not accept bogus_kw"),
    (["seed=abc"], "seed='abc' must be an integer in [0, 4294967295]"),
    (["schedule.iterations=${nope}"], "schedule.iterations: cannot resolve its value"),  # .hydra/ files first
])
def test_run_refuses_with_one_line_and_writes_nothing(tmp_path, args, names):
    run_dir = tmp_path / "run"
    case = Bad("run", tuple(args))
    result = run_cli(*overrides(case, tmp_path), run_dir=run_dir, check=False)
    assert_one_error_line(result, names)
    assert not run_dir.exists() or not any(run_dir.iterdir())


@pytest.mark.parametrize("args, names", [
    (["eval_every=0"], "eval_every=0 must be an integer >= 1"),
    (["+expert.train.hyperparams.bogus=1"], "expert.train.hyperparams: SAC does not accept bogus"),
])
def test_train_refuses_before_making_work_dir(tmp_path, args, names):
    case = Bad("train", tuple(args))
    result = run_cli(*overrides(case, tmp_path), script="experts/train.py", check=False)
    assert_one_error_line(result, names)
    assert not (tmp_path / "work").exists() and not (tmp_path / "ship").exists()


def test_report_lists_every_broken_job_and_summarises_the_good_one(tmp_path):
    root = tmp_path / "sweep"
    write_job(root / "good", "- seed=0\n- schedule.iterations=2\n")
    for i, (name, corruption) in enumerate(CORRUPTIONS.items()):
        job = root / name
        write_job(job, **{"overrides_yaml": f"- seed=0\n- schedule.iterations={i + 3}\n", **corruption})
    result = subprocess.run([sys.executable, "-m", "dagger.report", str(root)], cwd=ROOT, env=CLI_ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    broken = [line for line in result.stdout.splitlines() if line.startswith("broken: ")]
    assert len(broken) == len(CORRUPTIONS), result.stdout
    for name, corruption in CORRUPTIONS.items():
        file = {"metrics": "metrics.csv", "status": "status.json", "overrides_yaml": ".hydra/overrides.yaml",
                "config_yaml": ".hydra/config.yaml"}[
            next(iter(corruption))]
        assert any(line.startswith(f"broken: {root / name / file}: ") for line in broken), (name, broken)
    assert f"1 finished, 0 failed or incomplete, {len(CORRUPTIONS)} broken" in result.stdout
    summary = (root / "summary.csv").read_text().splitlines()
    assert len(summary) == 2 and summary[1].startswith("Hopper-v5,schedule.iterations=2,1,"), summary
    assert (root / "curves.png").is_file()
    assert not [p for p in root.iterdir() if p.name.startswith(".")], "no temporary files left"


def test_a_huge_metrics_file_is_broken_without_being_read(tmp_path, capsys):
    from dagger.report import main
    from dagger.report.jobs import MAX_METRICS_BYTES

    root = tmp_path / "sweep"
    write_job(root / "good", "- seed=0\n- schedule.iterations=2\n")
    huge = write_job(root / "huge", "- seed=0\n- schedule.iterations=3\n") / "metrics.csv"
    with open(huge, "r+b") as f:  # padded far past any run's size (sparse: nothing is written)
        f.truncate(MAX_METRICS_BYTES + 1)
    main([str(root), "--reps", "100"])
    out = capsys.readouterr().out
    assert f"broken: {huge}: larger than 64 MiB" in out and "1 finished, 0 failed or incomplete, 1 broken" in out


def test_report_without_a_folder_says_so_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "dagger.report", str(tmp_path / "nowhere")], cwd=ROOT,
                            env=CLI_ENV, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path / 'nowhere'} is not a directory"]
