"""A run folder is never silently mixed or lost: one writer, refused resumes change nothing, the run's own
checkpoint runs no code, a kill at any write still resumes, and a W&B failure costs nothing local."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from dagger.app import RunStopped
from tests.conftest import (PENDULUM_EXPERT, QUICK, ROOT, TIMINGS, Payload, assert_same_outputs, run_cli, run_in_process,
                            snapshot)

ARGS = [*QUICK, "schedule.iterations=3", "logger=none"]


def metrics(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "metrics.csv").drop(columns=TIMINGS)


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    """An uninterrupted 3-iteration run that interrupted ones must reproduce."""
    run_dir = tmp_path_factory.mktemp("straight") / "run"
    run_cli(*ARGS, run_dir=run_dir)
    return run_dir


def assert_refused(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and all(f in last for f in fragments), result.stderr
    assert "Traceback" not in result.stderr


def assert_refused_in_process(run_dir: Path, overrides: list[str], *fragments: str) -> None:
    """run.py's library call refuses `overrides` in `run_dir` with one line holding every fragment."""
    with pytest.raises(RunStopped) as stopped:
        run_in_process(run_dir, *overrides)
    line = str(stopped.value)
    assert stopped.value.status == "refused" and "\n" not in line and all(f in line for f in fragments), line


def test_crafted_run_checkpoint_never_executes(tmp_path, straight):
    run_dir = tmp_path / "run"
    shutil.copytree(straight, run_dir)
    marker = tmp_path / "pwned"
    torch.save({"progress": Payload(marker)}, run_dir / "checkpoint.pt")
    before = snapshot(run_dir)
    assert_refused_in_process(run_dir, [*ARGS[:-2], "schedule.iterations=4", "logger=none"], "checkpoint.pt",
                              "nothing in it was executed")
    assert not marker.exists()
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("change, message", [
    ("seed=1", "seed=1 differs from 0"),
    ("schedule.iterations=2", "schedule.iterations=2 is fewer than the 3 iterations"),
    ("resume=false", "resume=false but"),
])
def test_a_refused_resume_changes_nothing_in_the_folder(tmp_path, straight, change, message):
    run_dir = tmp_path / "run"
    shutil.copytree(straight, run_dir)
    before = snapshot(run_dir)
    assert ".hydra/overrides.yaml" in before
    assert_refused_in_process(run_dir, [*ARGS, change], message)
    assert snapshot(run_dir) == before


def test_a_refused_new_run_leaves_no_folder(tmp_path):
    run_dir = tmp_path / "run"
    assert_refused_in_process(run_dir, [*ARGS, "expert.path=/missing/expert.zip"], "expert.path")
    assert not run_dir.exists()


@pytest.mark.parametrize("script, folder_key, bad", [
    ("run.py", "hydra.run.dir", "schedule.iterations=0"),
    ("experts/train.py", "work_dir", "expert.train.timesteps=0"),
])
def test_a_refused_command_leaves_an_empty_folder_that_was_there_as_it_was(tmp_path, script, folder_key, bad):
    """Hydra makes the output folder before any check runs; the refusal removes it only where the command made it."""
    there, new = tmp_path / "there", tmp_path / "new"
    there.mkdir()
    for folder in (there, new):
        result = run_cli("env=pendulum", "logger=none" if script == "run.py" else "env=pendulum", bad,
                         f"{folder_key}={folder}", script=script, check=False)
        assert result.returncode != 0 and result.stderr.strip().startswith("error: "), result.stderr
    assert there.is_dir() and not any(there.iterdir()) and not new.exists()


def test_resuming_with_a_changed_expert_file_is_refused(tmp_path, tiny_experts):
    expert = tmp_path / "expert.zip"
    shutil.copyfile(PENDULUM_EXPERT, expert)
    run_dir = tmp_path / "run"
    run_in_process(run_dir, *QUICK, "schedule.iterations=1", "logger=none", f"expert.path={expert}")
    recorded = json.loads((run_dir / "provenance.json").read_text())["expert"]
    assert recorded["model"] == str(expert) and len(recorded["model_sha256"]) == 64
    shutil.copyfile(tiny_experts["sac"], expert)  # another expert for the same task, at the same path
    before = snapshot(run_dir)
    assert_refused_in_process(run_dir, [*QUICK, "schedule.iterations=2", "logger=none", f"expert.path={expert}"],
                              "expert model file changed", recorded["model_sha256"][:12], str(expert))
    assert snapshot(run_dir) == before


def test_a_second_process_on_the_same_folder_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    slow = [*QUICK, "schedule.iterations=3", "logger=none", "policy.gradient_steps=20000"]
    first = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *slow, f"hydra.run.dir={run_dir}"],
                             cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (run_dir / "status.json").is_file() and time.time() < deadline:
            time.sleep(0.2)
        assert first.poll() is None, "the first run ended before the second could start"
        result = run_cli(*slow, "seed=1", run_dir=run_dir, check=False)
        assert_refused(result, "is in use by another run", f"pid {first.pid}")
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    config = (run_dir / "config.yaml").read_text()
    assert "seed: 0" in config and "seed: 1" not in config


def test_a_refused_second_process_never_removes_the_folder_the_first_holds(tmp_path):
    from dagger.config import ConfigError
    from dagger.runs import RunFolder

    first, second = RunFolder(tmp_path / "run"), RunFolder(tmp_path / "run")
    first.lock()  # still empty: the first run is loading its expert
    with pytest.raises(ConfigError, match="is in use by another run"):
        second.lock()
    second.close_refused()
    assert (tmp_path / "run").is_dir()
    first.close_refused()  # the holder itself, refused while the folder is empty, leaves nothing
    assert not (tmp_path / "run").exists()


def test_a_wandb_failure_costs_nothing_local(tmp_path):
    run_dir = tmp_path / "run"
    env = {"WANDB_MODE": "not-a-mode"}
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), *QUICK, "schedule.iterations=1",
                             "logger.mode=offline", f"hydra.run.dir={run_dir}"], cwd=ROOT, capture_output=True,
                            text=True, env={**os.environ, **env}, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "W&B failed" in result.stdout
    assert len(pd.read_csv(run_dir / "metrics.csv")) == 1 and (run_dir / "curve.png").is_file()
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "finished" and "wandb_error" in status


def test_run_log_holds_what_the_console_shows(tmp_path, straight):
    log = (straight / "run.log").read_text()
    for line in ("expert: SAC", "expert return", "iter   1", "iter   3", "outputs:"):
        assert line in log


# A run's files, one per writer (text through atomic_write_text, as config.yaml and status.json are; numpy;
# torch), each killed (SIGKILL, injected by strace at the write system call) while its temporary sibling is
# being written; `when` picks which write, so the kill lands mid-run. Every single write, for every file, is
# covered by `python -m tests.benchmarks.kill_at_every_write` (minutes).
KILLS = [("metrics.csv", 2), ("dataset.npz", 8), ("checkpoint.pt", 2)]


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt-get install strace)")
@pytest.mark.parametrize("target, when", KILLS)
def test_a_kill_while_writing_any_file_still_resumes_to_the_same_numbers(tmp_path, straight, target, when):
    from dagger.files import temporary_sibling

    run_dir = tmp_path / "run"
    tmp = temporary_sibling(run_dir / target)
    killed = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "-P", str(tmp), "-e", "trace=write",
                             "-e", f"inject=write:signal=KILL:when={when}",
                             sys.executable, str(ROOT / "run.py"), *ARGS, f"hydra.run.dir={run_dir}"],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert killed.returncode != 0 and tmp.exists(), f"the kill at {target} never happened: {killed.stderr}"
    run_in_process(run_dir, *ARGS)
    pd.testing.assert_frame_equal(metrics(run_dir), metrics(straight))
    assert json.loads((run_dir / "status.json").read_text())["status"] == "finished"


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace (apt-get install strace)")
@pytest.mark.parametrize("variant", [
    ["algo=hg_dagger", "algo.takeover=0.2", "algo.handback=0.02"],  # a gated algorithm, its control in the checkpoint
    ["policy=steady"],                                               # the default learner: three MLPs
], ids=["hg_dagger", "steady"])
def test_a_real_kill_mid_run_resumes_to_the_same_numbers_and_files(tmp_path, variant):
    from dagger.files import temporary_sibling

    args = [*ARGS, *variant]
    run_in_process(tmp_path / "straight", *args)
    run_dir = tmp_path / "run"
    tmp = temporary_sibling(run_dir / "metrics.csv")  # its 2nd write is iteration 2's row: iteration 1 is checkpointed
    killed = subprocess.run(["strace", "-f", "-qq", "-o", "/dev/null", "-P", str(tmp), "-e", "trace=write",
                             "-e", "inject=write:signal=KILL:when=2", sys.executable, str(ROOT / "run.py"), *args,
                             f"hydra.run.dir={run_dir}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert killed.returncode != 0 and tmp.exists(), f"the kill never happened: {killed.stderr}"
    assert json.loads((run_dir / "status.json").read_text())["status"] == "running"  # killed: no word said
    assert len(pd.read_csv(run_dir / "metrics.csv")) == 1  # iteration 1 finished, iteration 2 not
    run_in_process(run_dir, *args)
    assert_same_outputs(run_dir, tmp_path / "straight")
