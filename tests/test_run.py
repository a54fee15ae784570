"""run.py end to end on the cheap env with its shipped expert."""
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from dagger.app import RunStopped
from tests.conftest import (PENDULUM_EXPERT, QUICK, assert_learns, assert_same_outputs, counting_forks,
                            interrupt_after_first_iteration_and_resume,
                            learning_runs, metrics_without_timings, run_cli, run_in_process)

REQUIRED = ["iteration", "return_mean", "return_std", "dataset_size", "expert_labels", "env_steps", "beta",
            "expert_return_mean", "expert_return_std", "train_loss", "wall_time_s"]


def wandb_records(run_dir) -> list[dict]:
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    out = subprocess.run([sys.executable, "-m", "wandb", "leet", "inspect", "--json", str(offline)],
                         capture_output=True, text=True, check=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def wandb_history(records: list[dict]) -> list[dict]:
    return [r["history"]["item"] for r in records if r.get("type") == "history" and "iteration" in r["history"]["item"]]


def test_two_iterations_write_every_output(tmp_path):
    run_dir = tmp_path / "run"
    result = run_cli(*QUICK, "schedule.iterations=2", "eval.video=true", "eval.video_fps=5", run_dir=run_dir)
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert set(REQUIRED) <= set(metrics.columns)
    assert metrics.iteration.tolist() == [1, 2]
    assert metrics.expert_labels.tolist() == [200, 400] == metrics.dataset_size.tolist()
    assert metrics.beta.tolist() == [1.0, 0.95]  # the default schedule: beta falls linearly over 20 iterations
    assert (run_dir / "curve.png").read_bytes()[:4] == b"\x89PNG"
    assert (run_dir / "learner.pt").is_file() and (run_dir / "config.yaml").is_file()
    import numpy as np

    with np.load(run_dir / "dataset.npz") as data:
        assert data["obs"].shape == (400, 4) and data["acts"].shape == (400, 1)
    assert "return" in result.stdout and str(run_dir) in result.stdout  # final table and where outputs are

    assert sorted(p.name for p in (run_dir / "videos").glob("*.mp4")) == ["expert.mp4", "learner-iter002.mp4"]

    records = wandb_records(run_dir)
    history = wandb_history(records)
    assert [h["iteration"] for h in history] == [1, 2]
    for h, (_, row) in zip(history, metrics.iterrows()):
        for column in ("return_mean", "return_std", "expert_labels", "train_loss", "beta"):
            assert h[column] == pytest.approx(row[column]), column
    axes = [r["metric"] for r in records if r["type"] == "metric"]
    assert {"name": "expert_labels", "options": {"defined": True}} in axes  # an x-axis of its own
    assert {"glob_name": "*", "step_metric": "expert_labels",  # every metric plots against the labels
            "options": {"defined": True, "step_sync": True}} in axes
    assert {"name": "iteration", "options": {"defined": True}} in axes
    final = history[-1]
    assert final["metrics_table._type"] == "table-file" and final["metrics_table.nrows"] == 2
    assert final["curve._type"] == "image-file" and final["video/learner._type"] == "video-file"
    (expert_video,) = [r["history"]["item"] for r in records
                       if r["type"] == "history" and "video/expert._type" in r["history"]["item"]]
    assert expert_video["_step"] == 0 and expert_video["video/expert._type"] == "video-file"
    summary = {k: v for r in records if r["type"] == "summary" for k, v in r["summary"]["update"].items()}
    assert summary["final_return"] == pytest.approx(metrics.return_mean.iloc[-1])
    assert summary["expert_labels"] == 400 and summary["final_normalized_return"] == pytest.approx(
        metrics.normalized_return.iloc[-1])


@pytest.mark.learning
def test_dagger_learns_the_cheap_task(tmp_path):
    runs = learning_runs(tmp_path, *QUICK, "schedule.iterations=4", "logger=none")
    assert_learns(runs)
    assert all(m.expert_labels.iloc[-1] == 800 for m in runs.values())


@pytest.mark.learning
def test_the_default_learner_learns_the_cheap_task(tmp_path):
    # QUICK runs the single MLP; the default (policy=steady) is the mean of three of them.
    runs = learning_runs(tmp_path, *QUICK, "policy=steady", "schedule.iterations=4", "logger=none")
    assert_learns(runs)
    assert all(m.expert_labels.iloc[-1] == 800 for m in runs.values())


@pytest.mark.learning
def test_a_learner_that_does_not_learn_fails_the_learning_check(tmp_path):
    # The negative control of assert_learns: the same run with a learner that barely moves from its initial weights.
    runs = learning_runs(tmp_path, *QUICK, "schedule.iterations=4", "logger=none", "policy.lr=1e-7",
                         "policy.gradient_steps=1", "policy.epochs=0")
    with pytest.raises(AssertionError):
        assert_learns(runs)


def test_one_seed_that_does_not_learn_fails_the_learning_check_whatever_the_others_do():
    def run(score: float) -> pd.DataFrame:
        return pd.DataFrame({"normalized_return": [0.2, score, score], "expert_return_mean": 1000.0})

    assert_learns({0: run(1.0), 1: run(1.0), 2: run(0.9)})
    with pytest.raises(AssertionError):  # a mean of 0.67 passes LEARNED; the seed at 0 does not pass the floor
        assert_learns({0: run(1.0), 1: run(1.0), 2: run(0.0)})


def test_initial_demonstrations_make_iteration_zero(tmp_path):
    run_dir = tmp_path / "run"
    run_in_process(run_dir, *QUICK, "schedule=constant", "schedule.iterations=1", "schedule.initial_expert_steps=300",
                   "logger=none")
    metrics = pd.read_csv(run_dir / "metrics.csv")
    assert metrics.iteration.tolist() == [0, 1]
    assert metrics.expert_labels.tolist() == [300, 500]
    # beta = 0.5, drawn per env and step: a binomial share of the 200 steps, within 3 standard errors
    assert abs(metrics.supervisor_control_fraction.iloc[1] - 0.5) < 3 * np.sqrt(0.25 / 200)


def test_evaluations_run_beside_the_loop_and_record_the_rows_of_evaluating_in_it(tmp_path, monkeypatch):
    """Every evaluation but the last runs in a forked copy of the process while the next iteration collects and
    fits, as do the references while the first one does, and the rows are those of measuring in the loop itself
    (forking off)."""
    from dagger.beside import Beside
    from dagger.rollout import Evaluator

    args = [*QUICK, "schedule.iterations=3", "logger=none"]
    with counting_forks() as forks:
        run_in_process(tmp_path / "beside", *args)
    assert len(forks) == 3, "the references and iterations 1 and 2 are measured beside the loop, the last one in it"
    monkeypatch.setattr(Evaluator, "begin", lambda self, measure, what, beside=True: Beside(measure, False, what))
    run_in_process(tmp_path / "in-loop", *args)
    pd.testing.assert_frame_equal(metrics_without_timings(tmp_path / "beside"),
                                  metrics_without_timings(tmp_path / "in-loop"))


# Plain DAgger's resume is checked by test_integrity's kills (a kill at three different writes, resumed).
@pytest.mark.parametrize("algo", [
    ["algo=dart"],
    # A wide hysteresis band: the supervisor still holds envs when the run is killed, so the control
    # state in the checkpoint decides who drives after the resume.
    ["algo=hg_dagger", "algo.takeover=0.2", "algo.handback=0.02"],
], ids=["dart", "hg_dagger"])
def test_an_interrupted_run_resumes_to_the_same_numbers_and_files(tmp_path, algo):
    args = [*QUICK, *algo, "schedule.iterations=3", "logger=none", "policy.gradient_steps=600"]
    run_in_process(tmp_path / "straight", *args)
    again = interrupt_after_first_iteration_and_resume(tmp_path / "resumed", *args)
    pd.testing.assert_frame_equal(again, metrics_without_timings(tmp_path / "straight"))
    assert_same_outputs(tmp_path / "resumed", tmp_path / "straight")


def test_a_finished_run_extended_with_the_resumable_keys_changed_matches_a_straight_run(tmp_path):
    """Two iterations, then `schedule.iterations=3` with other threads, videos, logger and resume flag: the same
    metrics, D and learner as three iterations straight (the keys that may change on resume change no number)."""
    run_in_process(tmp_path / "straight", *QUICK, "schedule.iterations=3", "logger=none")
    run_in_process(tmp_path / "extended", *QUICK, "schedule.iterations=2", "logger=none")
    run_in_process(tmp_path / "extended", *QUICK, "schedule.iterations=3", "logger=wandb", "logger.mode=disabled",
                   "threads=2", "eval.video=true", "eval.video_every=10", "resume=true")
    assert_same_outputs(tmp_path / "extended", tmp_path / "straight")


def test_a_run_written_before_a_learner_key_existed_is_extended_as_it_ran(tmp_path):
    """A run whose config.yaml predates policy.ema and policy.lr_decay ran as ema=0 and lr_decay=1: it is extended
    with today's defaults to the same numbers as a straight run, and refused with another value of either."""
    run_in_process(tmp_path / "straight", *QUICK, "schedule.iterations=3", "logger=none")
    run_in_process(tmp_path / "old", *QUICK, "schedule.iterations=2", "logger=none")
    saved = OmegaConf.load(tmp_path / "old" / "config.yaml")
    del saved.policy["ema"], saved.policy["lr_decay"]
    OmegaConf.save(saved, tmp_path / "old" / "config.yaml")
    with pytest.raises(RunStopped, match="policy.lr_decay=0.5 differs from 1.0"):
        run_in_process(tmp_path / "old", *QUICK, "schedule.iterations=3", "logger=none", "policy.lr_decay=0.5")
    run_in_process(tmp_path / "old", *QUICK, "schedule.iterations=3", "logger=none")
    assert_same_outputs(tmp_path / "old", tmp_path / "straight")


def test_resuming_with_a_different_experiment_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    run_in_process(run_dir, *QUICK, "schedule.iterations=1", "logger=none")
    before = (run_dir / "metrics.csv").read_text()
    with pytest.raises(RunStopped, match="schedule.rollout_steps=300 differs from 200") as stopped:
        run_in_process(run_dir, *QUICK, "schedule.iterations=2", "schedule.rollout_steps=300", "logger=none")
    assert stopped.value.status == "refused"
    assert (run_dir / "metrics.csv").read_text() == before


@pytest.mark.parametrize("overrides, message", [
    (["expert.path=/nonexistent/expert.zip"],
     "expert.path: no sac checkpoint at /nonexistent/expert.zip; train one with "
     "`python experts/train.py env=pendulum expert=sac`"),
    (["env=hopper", f"expert.path={PENDULUM_EXPERT}"],
     "observation space (4,) does not match env Hopper-v5 observation space (11,)"),
    (["schedule.iterations=0"], "schedule.iterations=0 must be an integer >= 1"),
    (["schedule.rollout_steps=0"], "schedule.rollout_steps=0 must be an integer >= 1"),
    (["schedule=constant", "schedule.beta_value=1.5"], "schedule.beta_value=1.5 is outside [0, 1]"),
    (["device=tpu"], "device='tpu' is not one of cpu, cuda, auto"),
])
def test_bad_input_stops_with_one_clear_line(tmp_path, overrides, message):
    run_dir = tmp_path / "run"
    with pytest.raises(RunStopped) as stopped:
        run_in_process(run_dir, *QUICK, *overrides)
    assert stopped.value.status == "refused" and message in str(stopped.value) and "\n" not in str(stopped.value)
    assert not run_dir.exists()


def test_eval_every_evaluates_multiples_and_the_last_iteration_only(tmp_path, monkeypatch):
    from dagger.rollout import Evaluator

    start, started = Evaluator.start, []
    monkeypatch.setattr(Evaluator, "start", lambda self, act, beside=True: started.append(act) or start(self, act, beside))
    run_in_process(tmp_path, *QUICK, "schedule.iterations=5", "eval.every=2", "logger=none")
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    evaluated = metrics.iteration[metrics.return_mean.notna()].tolist()
    assert evaluated == [2, 4, 5]
    assert metrics.normalized_return.isna().tolist() == [True, False, True, False, False]
    assert len(started) == 3  # no episodes were run at iterations 1 and 3
    assert metrics.expert_labels.tolist() == [200, 400, 600, 800, 1000]  # collection and fit happen every iteration
    assert (tmp_path / "curve.png").is_file()


def test_a_shipped_expert_normalises_by_its_fixed_references_and_another_by_the_runs_measure(tmp_path, tiny_experts):
    import yaml

    (entry,) = [e for e in yaml.safe_load((PENDULUM_EXPERT.parents[1] / "manifest.yaml").read_text()).values()
                if e["env_id"] == "InvertedPendulum-v5"]
    ref = entry["reference"]
    assert ref["episodes"] >= 100
    run_in_process(tmp_path / "shipped", *QUICK, "schedule.iterations=1", "logger=none")
    shipped = pd.read_csv(tmp_path / "shipped" / "metrics.csv").iloc[-1]
    assert shipped.normalized_by == "manifest"
    assert (shipped.reference_expert_return, shipped.reference_random_return) == (
        ref["expert_return_mean"], ref["random_return_mean"])
    assert shipped.normalized_return == pytest.approx(
        (shipped.return_mean - ref["random_return_mean"]) / (ref["expert_return_mean"] - ref["random_return_mean"]))
    assert shipped.run_normalized_return == pytest.approx(  # the run's own 10-episode measure, beside it
        (shipped.return_mean - shipped.random_return_mean) / (shipped.expert_return_mean - shipped.random_return_mean))

    run_in_process(tmp_path / "own", *QUICK, "schedule.iterations=1", "logger=none",
                   f"expert.path={tiny_experts['sac']}")
    own = pd.read_csv(tmp_path / "own" / "metrics.csv").iloc[-1]
    assert own.normalized_by == "run" and own.normalized_return == own.run_normalized_return
    assert own.reference_expert_return == own.expert_return_mean
