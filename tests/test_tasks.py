"""Tasks beyond MuJoCo: a discrete classic-control task with its shipped PPO expert learns, and resumes exactly
(a task without MuJoCo's state snapshot starts every iteration from a reset)."""
from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import (LEARNING_SEEDS, assert_same_outputs, interrupt_after_first_iteration_and_resume,
                            metrics_without_timings, run_in_process)

CARTPOLE = ["env=cartpole", "expert=ppo", "policy=classifier", "policy.hidden=[64,64]", "schedule.rollout_steps=500",
            "eval.episodes=4", "eval.every=1", "eval.video=false", "logger=none"]


@pytest.mark.learning
def test_dagger_with_a_classifier_learns_cartpole_from_its_ppo_expert(tmp_path):
    """Every seed ends at 90% of the expert's return or more after 2,000 labels; the control, a learner whose rate
    is too small to move its weights, stays near the random policy's 5%."""
    finals = {}
    for seed in LEARNING_SEEDS:
        run_in_process(tmp_path / f"seed{seed}", *CARTPOLE, "schedule.iterations=4", f"seed={seed}")
        finals[seed] = pd.read_csv(tmp_path / f"seed{seed}" / "metrics.csv").normalized_return.iloc[-1]
    assert min(finals.values()) >= 0.9, finals
    run_in_process(tmp_path / "control", *CARTPOLE, "schedule.iterations=4", "policy.lr=1e-9")
    assert pd.read_csv(tmp_path / "control" / "metrics.csv").normalized_return.iloc[-1] < 0.5


SWINGUP = ["env=pendulum_swingup", "expert=sac", "policy=mlp", "policy.hidden=[64,64]", "schedule.rollout_steps=400",
           "eval.episodes=4", "eval.every=1", "eval.video=false", "logger=none"]


@pytest.mark.parametrize("task", [CARTPOLE, SWINGUP, [*CARTPOLE, "obs=noisy", "obs.history=2", "obs.actions=true"]],
                         ids=["cartpole", "pendulum_swingup", "cartpole-noisy-student"])
def test_an_interrupted_run_on_a_task_without_mujoco_resumes_to_the_same_numbers_and_files(tmp_path, task):
    """Discrete (CartPole) and continuous (Pendulum) classic-control tasks, with their shipped experts, and a
    student that sees a noisy CartPole with its previous choice."""
    args = [*task, "schedule.iterations=3"]
    run_in_process(tmp_path / "straight", *args)
    again = interrupt_after_first_iteration_and_resume(tmp_path / "resumed", *args)
    pd.testing.assert_frame_equal(again, metrics_without_timings(tmp_path / "straight"))
    assert_same_outputs(tmp_path / "resumed", tmp_path / "straight")


def test_a_python_expert_labels_a_run_and_its_module_is_recorded(tmp_path):
    """`expert=python`: the example's scripted controller is the expert; the learner reaches it, the provenance
    names the module's file and sha256, and a killed run resumes to the same numbers."""
    import hashlib
    import json

    from tests.conftest import ROOT

    args = [*CARTPOLE, "expert=python", "expert.target=examples.cartpole_controller:Proportional",
            "+expert.kwargs.gain=0.5", "schedule.iterations=3"]
    run_in_process(tmp_path / "straight", *args)
    metrics = pd.read_csv(tmp_path / "straight" / "metrics.csv")
    assert metrics.expert_return_mean.iloc[-1] == 500 and metrics.normalized_return.iloc[-1] >= 0.9
    files = json.loads((tmp_path / "straight" / "provenance.json").read_text())["expert"]
    source = ROOT / "examples" / "cartpole_controller.py"
    assert str(source) in files["model"] and files["model_sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    again = interrupt_after_first_iteration_and_resume(tmp_path / "resumed", *args)
    pd.testing.assert_frame_equal(again, metrics_without_timings(tmp_path / "straight"))
