"""A failed command damages nothing: refusals before the folder is touched, one line for every failure during
the work, a true status.json, signals that stop a run resumably, and sweeps that survive a bad job."""
from __future__ import annotations

import errno
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dagger.app import RunStopped
from dagger.config import ConfigError
from tests.conftest import (PENDULUM_EXPERT, QUICK, ROOT, metrics_without_timings, run_cli, run_in_process,
                            snapshot)

ARGS = [*QUICK, "schedule.iterations=2", "logger=none"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 2-iteration run, made in-process (the library call the command line makes)."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    run_in_process(run_dir, *ARGS)
    return run_dir


def extend(run_dir, *extra: str) -> RunStopped:
    """Extending the run to 3 iterations must be refused; returns the refusal."""
    with pytest.raises(RunStopped) as stopped:
        run_in_process(run_dir, *QUICK, "schedule.iterations=3", "logger=none", *extra)
    assert stopped.value.status == "refused"
    return stopped.value


def spoil_dataset(path, how: str) -> None:
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:500])
    elif how == "short":
        with np.load(path) as f:
            arrays = {k: f[k][:10] for k in f.files}
        np.savez(path, **arrays)
    elif how == "other-width":
        with np.load(path) as f:
            arrays = {k: (np.concatenate([f[k], f[k]], axis=1) if f[k].ndim == 2 else f[k]) for k in f.files}
        np.savez(path, **arrays)
    elif how in ("nan-labels", "forged-pairs"):
        with np.load(path) as f:
            arrays = {k: f[k] for k in f.files}
        arrays["acts"] = np.full_like(arrays["acts"], np.nan if how == "nan-labels" else 0.5)
        if how == "nan-labels":  # in D's pairs and in the record alike
            arrays["transition_label"][arrays["transition_labelled"]] = np.nan
        np.savez(path, **arrays)
    elif how == "pickled":
        np.savez(path, obs=np.array([object()], dtype=object))


@pytest.mark.parametrize("how, says", [
    ("missing", "dataset.npz: cannot be read"), ("truncated", "dataset.npz: cannot be read"),
    ("short", "holds 10 labels"), ("other-width", "observations of width (8,)"),
    ("nan-labels", "non-finite states or labels"), ("pickled", "dataset.npz: cannot be read"),
    ("forged-pairs", "its pairs (obs, acts) are not the labelled steps of its transitions"),
])
def test_extending_a_run_with_a_spoiled_dataset_is_refused_and_changes_nothing(finished, tmp_path, how, says):
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    spoil_dataset(run_dir / "dataset.npz", how)
    before = snapshot(run_dir)
    assert says in str(extend(run_dir))
    assert snapshot(run_dir) == before  # config.yaml, .hydra/ and status.json ("finished") as they were


@pytest.mark.parametrize("spoil, says", [
    (lambda s: s["learner"]["policy"].update({k: v * np.nan for k, v in s["learner"]["policy"].items()}),
     "weights hold nan or inf"),
    (lambda s: s["learner"]["policy"].popitem(), "saved state does not fit this run"),
    (lambda s: s.update(dataset_size="many"), "dataset_size='many' is not a count"),
    (lambda s: s.update(collector={"envs": []}), "saved state does not fit this run"),
])
def test_extending_a_run_with_a_spoiled_checkpoint_is_refused_and_changes_nothing(finished, tmp_path, spoil, says):
    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    spoil(state)
    torch.save(state, run_dir / "checkpoint.pt")
    before = snapshot(run_dir)
    assert says in str(extend(run_dir))
    assert snapshot(run_dir) == before


def test_the_expert_is_checked_from_the_checkpoint_when_provenance_is_lost(tmp_path, tiny_experts):
    expert, run_dir = tmp_path / "expert.zip", tmp_path / "run"
    shutil.copyfile(PENDULUM_EXPERT, expert)
    args = [*QUICK, "logger=none", f"expert.path={expert}"]
    run_in_process(run_dir, *args, "schedule.iterations=1")
    (run_dir / "provenance.json").unlink()
    shutil.copyfile(tiny_experts["sac"], expert)  # another expert for the same task, at the same path
    before = snapshot(run_dir)
    with pytest.raises(RunStopped, match="expert model file changed"):
        run_in_process(run_dir, *args, "schedule.iterations=2")
    assert snapshot(run_dir) == before
    shutil.copyfile(PENDULUM_EXPERT, expert)
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    del state["expert"]  # a checkpoint that does not say either
    torch.save(state, run_dir / "checkpoint.pt")
    with pytest.raises(RunStopped, match="records which expert"):
        run_in_process(run_dir, *args, "schedule.iterations=2")


def test_a_full_disk_during_the_work_fails_in_one_line_and_the_run_resumes(finished, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    writes = {"n": 0}
    real_save = torch.save

    def save_until_the_disk_fills(obj, f, *args, **kwargs):  # the second checkpoint meets a full disk
        writes["n"] += 1
        if writes["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save_until_the_disk_fills)
    with pytest.raises(RunStopped) as stopped:
        run_in_process(run_dir, *ARGS)
    monkeypatch.undo()
    assert stopped.value.status == "failed" and "No space left on device" in str(stopped.value)
    assert "holds 1 finished iteration" in str(stopped.value)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "failed" and status["iterations_done"] == 1 and "OSError" in status["traceback"]
    assert not list(run_dir.glob(".*.tmp*"))  # no half-written file left behind
    run_in_process(run_dir, *ARGS)
    pd.testing.assert_frame_equal(metrics_without_timings(run_dir), metrics_without_timings(finished))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_run_in_one_line_and_a_rerun_resumes_it_exactly(finished, tmp_path, sig):
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *ARGS, f"hydra.run.dir={run_dir}"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "metrics.csv").is_file():
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "Traceback" not in stderr, stderr
    assert stderr.strip().splitlines()[-1].startswith(f"error: interrupted by {sig.name}"), stderr
    assert json.loads((run_dir / "status.json").read_text())["status"] == "interrupted"
    run_in_process(run_dir, *ARGS)
    pd.testing.assert_frame_equal(metrics_without_timings(run_dir), metrics_without_timings(finished))


def test_a_sweep_runs_its_other_jobs_past_a_refused_one_and_exits_non_zero(tmp_path, capsys):
    from dagger.report import report


    sweep = tmp_path / "sweep"
    result = run_cli("-m", *QUICK, "schedule.iterations=1", "logger=none", "schedule.rollout_steps=-5,100",
                     f"hydra.sweep.dir={sweep}", check=False)
    assert result.returncode != 0, result.stderr
    assert "1 job(s) of the sweep did not finish: 0 (refused)" in result.stderr.strip().splitlines()[-1]
    assert "error: schedule.rollout_steps=-5 must be an integer >= 1" in result.stderr
    assert json.loads((sweep / "0" / "status.json").read_text())["status"] == "refused"
    assert (sweep / "0" / ".hydra" / "overrides.yaml").is_file() and not (sweep / "0" / "checkpoint.pt").exists()
    assert json.loads((sweep / "1" / "status.json").read_text())["status"] == "finished"
    stopped = [json.loads(line) for line in (sweep / "stopped_jobs.jsonl").read_text().splitlines()]
    assert stopped == [{"job": str(sweep / "0"), "status": "refused",
                        "error": "schedule.rollout_steps=-5 must be an integer >= 1"}]  # the refused job alone
    report(sweep, reps=2_000)
    out = capsys.readouterr().out
    assert f"refused: {sweep / '0'}" in out and "1 finished, 1 failed or incomplete" in out


@pytest.mark.parametrize("where", ["file", "under-a-file"])
def test_a_run_dir_that_cannot_be_a_folder_is_one_line(tmp_path, where):
    (tmp_path / "taken").write_text("a file")
    run_dir = tmp_path / "taken" if where == "file" else tmp_path / "taken" / "run"
    result = run_cli(*ARGS, run_dir=run_dir, check=False)
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (f"error: hydra.run.dir={run_dir}: {tmp_path / 'taken'} is a "
                                                      "file, not a folder; choose another hydra.run.dir")
    assert (tmp_path / "taken").read_text() == "a file"


@pytest.mark.parametrize("overrides, says", [
    (["env.id=Pendulum-v1", "schedule.collection=carry_over"],
     "schedule.collection=carry_over: Pendulum-v1 is not a MuJoCo task"),
    (["env.id=CarRacing-v3"], "env.id='CarRacing-v3' has the observation space Box(0, 255, (96, 96, 3), uint8)"),
    (["+env.kwargs.max_episode_steps=-1"], "env.max_episode_steps: InvertedPendulum-v5 has no time limit"),
    (["env.max_episode_steps=1000000"], "a time limit of 1000000 steps"),
    (["+env.kwargs.frame_skip=-3"], "env.kwargs.frame_skip=-3 must be an integer >= 1"),
    (["schedule.rollout_steps=100000000000000"], "D would need"),
    (["schedule.iterations=100000000000"], "D would need"),
    (["env.num_envs=100000"], "env.num_envs=100000 must be an integer in [1, 1024]"),
    (["eval.episodes=100000"], "eval.episodes=100000 must be an integer in [1, 1024]"),
    (["policy=ensemble", "policy.members=100000000"], "policy.members=100000000 must be an integer in [1, 256]"),
    (["policy.hidden=[4000000000]"], "policy.hidden=[4000000000]: the network's weights and optimiser state would"),
])
def test_tasks_and_sizes_this_machine_cannot_run_are_refused_before_any_work(tmp_path, overrides, says):
    with pytest.raises(RunStopped) as stopped:
        run_in_process(tmp_path / "run", *ARGS, *overrides)
    assert stopped.value.status == "refused" and says in str(stopped.value)
    assert not (tmp_path / "run").exists()


def test_the_time_limit_check_names_its_key():
    from dagger.envs import make_env
    from tests.conftest import compose

    with pytest.raises(ConfigError, match="^env.max_episode_steps"):
        make_env(compose("env=pendulum", "env.max_episode_steps=100001").env)
    make_env(compose("env=pendulum", "env.max_episode_steps=100000").env).close()


def test_a_dataset_declaring_more_than_memory_is_refused_before_reading_it(finished, tmp_path):
    import zipfile

    run_dir = tmp_path / "run"
    shutil.copytree(finished, run_dir)
    with zipfile.ZipFile(run_dir / "dataset.npz", "a") as archive, archive.open("huge.npy", "w") as member:
        np.lib.format.write_array_header_1_0(member, {"descr": "<f4", "fortran_order": False, "shape": (2**34, 4)})
    before = snapshot(run_dir)
    assert "arrays declare 256 GiB" in str(extend(run_dir))
    assert snapshot(run_dir) == before


@pytest.mark.parametrize("make, says", [
    (lambda t: (t / "loop").symlink_to(t / "loop") or t / "loop", "is a broken or looping link"),
    (lambda t: (t / "gone").symlink_to(t / "nowhere") or t / "gone", "is a broken or looping link"),
    (lambda t: t / ("x" * 300), "is longer than 255 bytes"),
])
def test_a_run_dir_that_links_nowhere_or_is_too_long_is_one_line(tmp_path, make, says):
    from dagger.cli import check_output_dir

    with pytest.raises(ConfigError, match=says):
        check_output_dir([f"hydra.run.dir={make(tmp_path)}"])


def python_tag(marker) -> str:
    """YAML that a full (unsafe) loader would turn into a call of os.system."""
    return f"!!python/object/apply:os.system ['touch {marker}']\n"


@pytest.mark.parametrize("where", ["config.yaml", ".hydra/overrides.yaml", ".hydra/config.yaml"])
def test_yaml_in_a_run_folder_never_runs_code_on_resume_or_in_the_report(finished, tmp_path, where, capsys):
    from dagger.report import report

    marker = tmp_path / "ran"
    job = tmp_path / "sweep" / "0"
    for k in (0, 1):  # two jobs of a sweep, as the command line leaves them
        shutil.copytree(finished, tmp_path / "sweep" / str(k))
        (tmp_path / "sweep" / str(k) / ".hydra" / "overrides.yaml").write_text(f"- seed={k}\n")
    (job / where).write_text(python_tag(marker))
    report(tmp_path / "sweep", reps=2_000)
    if where == "config.yaml":
        assert "config.yaml: cannot be read" in str(extend(job))
    assert not marker.exists()


def test_a_ship_dir_manifest_never_runs_code(tmp_path):
    from dagger.expert.publishing import check_ship_dir

    (tmp_path / "manifest.yaml").write_text(python_tag(tmp_path / "ran"))
    with pytest.raises(ConfigError, match="manifest.yaml is unreadable"):
        check_ship_dir(tmp_path)
    assert not (tmp_path / "ran").exists()


def test_a_checkpoint_write_that_stops_short_is_named_as_the_system_error_not_torchs():
    # A real short write (a file-size limit; SIGXFSZ ignored as the run does): torch itself says only "unexpected pos".
    script = ("import resource, signal, torch\n"
              "from pathlib import Path\n"
              "from dagger.files import atomic_write\n"
              "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
              "resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))\n"
              "try:\n"
              "    atomic_write(Path(__import__('sys').argv[1]), lambda tmp: torch.save(torch.zeros(10**6), tmp))\n"
              "except OSError as err:\n"
              "    print(type(err).__name__, err.errno, err.strerror)\n")
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run([sys.executable, "-c", script, f"{folder}/checkpoint.pt"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120)
        assert result.stdout.strip() == f"OSError {errno.EFBIG} File too large (a file-size limit stopped the write)", \
            result.stdout + result.stderr
        assert not list(Path(folder).iterdir())  # no half-written file left


def test_a_short_write_on_a_full_disk_is_named_a_full_disk(monkeypatch, tmp_path):
    import os

    from dagger import files

    class Full:
        f_bavail, f_frsize = 3, 4096

    monkeypatch.setattr(os, "statvfs", lambda _: Full())
    err = files.short_write(tmp_path / "checkpoint.pt")
    assert err.errno == errno.ENOSPC and "No space left on device" in str(err)


CRASHES = """import ctypes, faulthandler, pathlib, sys
faulthandler.enable()
count = pathlib.Path(sys.argv[1])
count.write_text(count.read_text() + "x" if count.exists() else "x")
if len(count.read_text()) <= int(sys.argv[2]):
    ctypes.string_at(0)  # SIGSEGV
print("ran")
"""


def test_a_command_that_crashes_once_runs_again_with_a_warning_and_one_that_crashes_twice_fails(tmp_path):
    # tests.conftest.run_cli's answer to a rare native crash: the command's faulthandler stack becomes a warning
    script = tmp_path / "crashes.py"
    script.write_text(CRASHES)
    with pytest.warns(UserWarning, match=r"crashed \(SIGSEGV\); run again:\n(.|\n)*Fatal Python error"):
        result = run_cli(str(tmp_path / "once"), "1", script=str(script))
    assert result.stdout.strip() == "ran" and (tmp_path / "once").read_text() == "xx"
    with pytest.warns(UserWarning), pytest.raises(AssertionError, match=f"failed \\({-signal.SIGSEGV}\\)"):
        run_cli(str(tmp_path / "twice"), "2", script=str(script))
