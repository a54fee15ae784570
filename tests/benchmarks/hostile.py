"""Hostile files, folders, signals and limits through the real command lines:
python -m tests.benchmarks.hostile [--jobs N] [substring ...]

Each case prepares something a careless or hostile user could hand the project (a spoiled run folder, a crafted
dataset, a file where a folder belongs, a signal, a resource limit), runs one real command, and checks the rule:
a non-zero exit with one `error:` line naming the file or key and no traceback, no code run from a file (a marker
file stays absent), and every folder that existed before unchanged (a refused new run leaves none). Cases marked
`resumes` must instead finish, with the numbers of an uninterrupted run. One line per case, then totals.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
PY = sys.executable
QUICK = ["env=pendulum", "logger=none", "policy=mlp", "eval.episodes=2", "eval.every=1", "policy.gradient_steps=50",
         "schedule.rollout_steps=100", "policy.hidden=[32]", "eval.video=false"]
ENV = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "PYTHONUNBUFFERED": "1"}


class Payload:
    """Unpickling this runs `touch <marker>`."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@dataclass
class Case:
    name: str
    setup: Callable[[Path], list[str]]  # tmp -> the command's arguments (after the interpreter)
    says: str = ""                      # part of the error line
    resumes: bool = False               # must finish instead of being refused
    limits: str = ""                    # a shell prefix (ulimit ...) for resource cases
    signal_after: tuple[str, int] | None = None  # (file whose appearance triggers it, signal)
    tags: list[str] = field(default_factory=list)


def run_py(tmp: Path, *args: str, run: str = "run") -> list[str]:
    return [str(ROOT / "run.py"), *QUICK, *args, f"hydra.run.dir={tmp / run}"]


FINISHED: dict[str, Path] = {}


def finished_run(kind: str = "base") -> Path:
    """A finished 2-iteration run made once per process (copied into each case's folder)."""
    if kind not in FINISHED:
        folder = Path(tempfile.mkdtemp(prefix="hostile-finished-"))
        subprocess.run([PY, *run_py(folder, "schedule.iterations=2")], cwd=ROOT, env=ENV, check=True,
                       capture_output=True)
        FINISHED[kind] = folder / "run"
    return FINISHED[kind]


def extend(spoil: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    """A copy of the finished run, spoiled, then extended to 3 iterations."""
    def setup(tmp: Path) -> list[str]:
        shutil.copytree(finished_run(), tmp / "run")
        spoil(tmp / "run")
        return run_py(tmp, "schedule.iterations=3")
    return setup


def rewrite_npz(change: Callable[[dict], dict]) -> Callable[[Path], None]:
    def spoil(run: Path) -> None:
        with np.load(run / "dataset.npz") as f:
            arrays = {k: f[k] for k in f.files}
        np.savez(run / "dataset.npz", **change(arrays))
    return spoil


def rewrite_checkpoint(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def spoil(run: Path) -> None:
        import torch

        state = torch.load(run / "checkpoint.pt", weights_only=True)
        change(state)
        torch.save(state, run / "checkpoint.pt")
    return spoil


def write(name: str, content: bytes | str) -> Callable[[Path], None]:
    def spoil(run: Path) -> None:
        path = run / name
        if path.is_dir():
            shutil.rmtree(path)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return spoil


def zip_bomb(run: Path) -> None:
    """dataset.npz whose obs member declares 256 GiB (and inflates 64 MiB of zeros; a few hundred KB on disk)."""
    with np.load(run / "dataset.npz") as f:
        arrays = {k: f[k] for k in f.files if k != "obs"}
    np.savez(run / "dataset.npz", **arrays)
    with zipfile.ZipFile(run / "dataset.npz", "a", compression=zipfile.ZIP_DEFLATED) as z:
        with z.open("obs.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (2**34, 4)})
            for _ in range(64):
                f.write(bytes(1 << 20))


def marker(tmp: Path) -> Path:
    return tmp / "ran"


def pickled(tmp: Path) -> bytes:
    return pickle.dumps(Payload(marker(tmp)))


def remove(name: str) -> Callable[[Path], None]:
    def spoil(run: Path) -> None:
        path = run / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    return spoil


def nested(depth: int, kind: str) -> str:
    return "[" * depth + "]" * depth if kind == "json" else "a: " + "[" * depth + "]" * depth


def sweep_job(tmp: Path, files: dict[str, str]) -> list[str]:
    """A sweep folder with one finished job (copied) and one whose files are `files`; the report's arguments."""
    shutil.copytree(finished_run(), tmp / "sweep" / "0")
    bad = tmp / "sweep" / "1"
    shutil.copytree(finished_run(), bad)
    for name, text in files.items():
        (bad / name).write_text(text)
    return ["-m", "dagger.report", str(tmp / "sweep")]


def train_py(tmp: Path, *args: str) -> list[str]:
    return [str(ROOT / "experts" / "train.py"), "env=pendulum", f"work_dir={tmp / 'work'}",
            f"ship_dir={tmp / 'ship'}", "expert.train.timesteps=100", "eval_every=100", "checkpoint_every=100",
            "eval_episodes=1", "publish_episodes=1", "expert.train.hyperparams.learning_starts=50", *args]


def in_work(name: str, content: bytes | str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        (tmp / "work").mkdir()
        (tmp / "work" / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        return train_py(tmp)
    return setup


def export_inside_a_dataset(tmp: Path) -> list[str]:
    """An export whose id lies inside a dataset exported before it (into this case's own datasets folder)."""
    args = export(tmp, lambda run: None, "--id", "h/walker/outer-v0")
    subprocess.run([PY, *args], cwd=ROOT, env={**ENV, "MINARI_DATASETS_PATH": str(tmp / "datasets")}, check=True,
                   capture_output=True)
    return [*args[:-1], "h/walker/outer-v0/inner-v0"]


def nan_expert(tmp: Path) -> list[str]:
    """The shipped pendulum expert with one weight set to nan (saved through SB3 itself)."""
    import torch
    from stable_baselines3 import SAC

    model = SAC.load(ROOT / "experts" / "sac" / "InvertedPendulum-v5.zip", device="cpu")
    with torch.no_grad():
        next(model.policy.actor.parameters())[0, 0] = float("nan")
    model.save(tmp / "nan.zip")
    return run_py(tmp, f"expert.path={tmp / 'nan.zip'}")


def export(tmp: Path, spoil: Callable[[Path], None] = lambda run: None, *args: str) -> list[str]:
    shutil.copytree(finished_run(), tmp / "run")
    spoil(tmp / "run")
    return ["-m", "dagger.export", str(tmp / "run"), *args]


CASES = [
    # ---- extending a finished run whose saved state is spoiled ---------------------------------------------
    Case("dataset.npz missing", extend(remove("dataset.npz")), "dataset.npz"),
    Case("dataset.npz truncated", extend(lambda r: (r / "dataset.npz").write_bytes((r / "dataset.npz").read_bytes()[:999])), "dataset.npz"),
    Case("dataset.npz empty", extend(write("dataset.npz", b"")), "dataset.npz"),
    Case("dataset.npz a folder", extend(lambda r: ((r / "dataset.npz").unlink(), (r / "dataset.npz").mkdir())), "dataset.npz"),
    Case("dataset.npz object arrays", extend(rewrite_npz(lambda a: {**a, "obs": np.array([None] * 3, dtype=object)})), "dataset.npz"),
    Case("dataset.npz a zip bomb declaring 256 GiB", extend(zip_bomb), "dataset.npz"),
    Case("dataset.npz other widths", extend(rewrite_npz(lambda a: {k: np.tile(v, (1, 2)) if v.ndim == 2 else v for k, v in a.items()})), "dataset.npz"),
    Case("dataset.npz nan labels", extend(rewrite_npz(lambda a: {**a, "acts": a["acts"] * np.nan})), "dataset.npz"),
    Case("dataset.npz inf states", extend(rewrite_npz(lambda a: {**a, "obs": a["obs"] + np.inf})), "dataset.npz"),
    Case("dataset.npz fewer rows", extend(rewrite_npz(lambda a: {k: v[:7] for k, v in a.items()})), "dataset.npz"),
    Case("dataset.npz missing transitions", extend(rewrite_npz(lambda a: {k: a[k] for k in ("obs", "acts")})), "dataset.npz"),
    Case("dataset.npz obs and acts of other lengths", extend(rewrite_npz(lambda a: {**a, "acts": a["acts"][:5]})), "dataset.npz"),
    Case("checkpoint.pt truncated", extend(lambda r: (r / "checkpoint.pt").write_bytes((r / "checkpoint.pt").read_bytes()[:999])), "checkpoint.pt"),
    Case("checkpoint.pt empty", extend(write("checkpoint.pt", b"")), "checkpoint.pt"),
    Case("checkpoint.pt random bytes", extend(write("checkpoint.pt", os.urandom(5000))), "checkpoint.pt"),
    Case("checkpoint.pt a pickle that runs code", lambda t: extend(write("checkpoint.pt", pickled(t)))(t), "checkpoint.pt"),
    Case("checkpoint.pt a folder", extend(lambda r: ((r / "checkpoint.pt").unlink(), (r / "checkpoint.pt").mkdir())), "checkpoint.pt"),
    Case("checkpoint.pt nan weights", extend(rewrite_checkpoint(lambda s: [v.fill_(float("nan")) for v in s["learner"]["policy"].values() if v.is_floating_point()])), "nan or inf"),
    Case("checkpoint.pt weights of another shape", extend(rewrite_checkpoint(lambda s: s["learner"]["policy"].update({k: v[:1] for k, v in s["learner"]["policy"].items()}))), "checkpoint.pt"),
    Case("checkpoint.pt collector of twice the envs", extend(rewrite_checkpoint(lambda s: s["collector"].update(envs=s["collector"]["envs"] * 2))), "checkpoint.pt"),
    Case("checkpoint.pt rows not a list", extend(rewrite_checkpoint(lambda s: s.update(rows=7))), "checkpoint.pt"),
    Case("checkpoint.pt iteration a string", extend(rewrite_checkpoint(lambda s: s["progress"].update(iteration="two"))), "checkpoint.pt"),
    Case("checkpoint.pt iteration negative", extend(rewrite_checkpoint(lambda s: s["progress"].update(iteration=-4))), "checkpoint.pt"),
    Case("checkpoint.pt iteration beyond the rows", extend(rewrite_checkpoint(lambda s: s["progress"].update(iteration=9))), ""),
    Case("checkpoint.pt dataset_size negative", extend(rewrite_checkpoint(lambda s: s.update(dataset_size=-5))), "dataset"),
    Case("checkpoint.pt dataset_size a float", extend(rewrite_checkpoint(lambda s: s.update(dataset_size=1.5))), "dataset"),
    Case("checkpoint.pt refs missing", extend(rewrite_checkpoint(lambda s: s["progress"].pop("refs"))), "checkpoint.pt"),
    Case("checkpoint.pt supervisor state foreign (resumes: the beta mixture keeps no state)", extend(rewrite_checkpoint(lambda s: s.update(supervisor={"x": 1}))), resumes=True),
    Case("checkpoint.pt expert record not a mapping", extend(rewrite_checkpoint(lambda s: s.update(expert="sha"))), ""),
    Case("config.yaml missing", extend(remove("config.yaml")), "config.yaml"),
    Case("config.yaml not YAML", extend(write("config.yaml", "env: {id: [\n")), "config.yaml"),
    Case("config.yaml deeply nested", extend(write("config.yaml", nested(100_000, "yaml"))), "config.yaml"),
    Case("config.yaml binary", extend(write("config.yaml", os.urandom(3000))), "config.yaml"),
    Case("config.yaml a list", extend(write("config.yaml", "- 1\n- 2\n")), "config.yaml"),
    Case("provenance.json not JSON", extend(write("provenance.json", "{")), "provenance.json"),
    Case("provenance.json deeply nested", extend(write("provenance.json", nested(100_000, "json"))), "provenance.json"),
    Case("provenance.json binary", extend(write("provenance.json", os.urandom(3000))), "provenance.json"),
    Case("provenance.json a list (resumes: the checkpoint records the expert)", extend(write("provenance.json", "[1]")), resumes=True),
    Case("status.json not JSON (resumes)", extend(write("status.json", "{")), resumes=True),
    Case("metrics.csv missing (resumes: rows come from the checkpoint)", extend(remove("metrics.csv")), resumes=True),
    Case(".hydra missing (resumes)", extend(remove(".hydra")), resumes=True),
    Case("learner.pt missing (resumes)", extend(remove("learner.pt")), resumes=True),
    Case("stale temporary files (resumes)", extend(write(".checkpoint.tmp.pt", b"half")), resumes=True),
    # ---- the run folder itself -------------------------------------------------------------------------------
    Case("hydra.run.dir is a file", lambda t: ((t / "f").write_text("x"), [str(ROOT / "run.py"), *QUICK, f"hydra.run.dir={t / 'f'}"])[1], "is a file"),
    Case("hydra.run.dir under a file", lambda t: ((t / "f").write_text("x"), [str(ROOT / "run.py"), *QUICK, f"hydra.run.dir={t / 'f' / 'run'}"])[1], "is a file"),
    Case("hydra.run.dir a symlink loop", lambda t: ((t / "loop").symlink_to(t / "loop"), [str(ROOT / "run.py"), *QUICK, f"hydra.run.dir={t / 'loop'}"])[1], "hydra.run.dir"),
    Case("hydra.run.dir a dangling symlink", lambda t: ((t / "gone").symlink_to(t / "nowhere" / "x"), [str(ROOT / "run.py"), *QUICK, f"hydra.run.dir={t / 'gone'}"])[1], "hydra.run.dir"),
    Case("hydra.run.dir name too long", lambda t: [str(ROOT / "run.py"), *QUICK, f"hydra.run.dir={t / ('x' * 300)}"], "hydra.run.dir"),
    Case("hydra.sweep.dir is a file", lambda t: ((t / "f").write_text("x"), [str(ROOT / "run.py"), "-m", *QUICK, f"hydra.sweep.dir={t / 'f'}"])[1], "is a file"),
    # ---- tasks and sizes ----------------------------------------------------------------------------------------
    Case("env.id=Pendulum-v1 (not MuJoCo)", lambda t: run_py(t, "env.id=Pendulum-v1"), "not a MuJoCo task"),
    Case("env.id=MountainCarContinuous-v0", lambda t: run_py(t, "env.id=MountainCarContinuous-v0"), "not a MuJoCo task"),
    Case("env.id=module:Class from the command line that does not import", lambda t: run_py(t, "env.id=nowhere_module:Env"), "env.id"),
    Case("no time limit", lambda t: run_py(t, "+env.kwargs.max_episode_steps=-1"), "env.max_episode_steps"),
    Case("a time limit of 10^9 steps", lambda t: run_py(t, "env.max_episode_steps=1000000000"), "env.max_episode_steps"),
    Case("frame_skip=-3", lambda t: run_py(t, "+env.kwargs.frame_skip=-3"), "frame_skip"),
    Case("frame_skip=0", lambda t: run_py(t, "+env.kwargs.frame_skip=0"), "env.kwargs"),
    Case("xml_file missing", lambda t: run_py(t, "+env.kwargs.xml_file=/nonexistent.xml"), "env.kwargs"),
    Case("xml_file not XML", lambda t: run_py(t, "+env.kwargs.xml_file=/etc/hostname"), "env.kwargs"),
    Case("a learner too large for memory", lambda t: run_py(t, "policy.hidden=[4000000000]"), ""),
    Case("a rollout too large for memory", lambda t: run_py(t, "schedule.rollout_steps=100000000000000"), "schedule.rollout_steps"),
    Case("too many envs", lambda t: run_py(t, "env.num_envs=10000000"), "env.num_envs"),
    Case("too many evaluation episodes", lambda t: run_py(t, "eval.episodes=10000000"), "eval.episodes"),
    Case("too many iterations", lambda t: run_py(t, "schedule.iterations=100000000000"), "schedule.iterations"),
    Case("an ensemble too large", lambda t: run_py(t, "policy=ensemble", "policy.members=100000000"), "policy.members"),
    # ---- Minari demonstrations by id ----------------------------------------------------------------------------
    Case("initial_demos climbing out of the datasets folder", lambda t: run_py(t, "schedule.initial_demos=../../../etc"), "schedule.initial_demos"),
    Case("initial_demos an absolute path", lambda t: run_py(t, "schedule.initial_demos=/etc"), "schedule.initial_demos"),
    Case("MINARI_DATASETS_PATH a file", lambda t: run_py(t, "schedule.initial_demos=a/b/c-v0"), "MINARI_DATASETS_PATH", tags=["minari-file"]),
    # ---- the export ------------------------------------------------------------------------------------------------
    Case("export: dataset.npz truncated", lambda t: export(t, lambda r: (r / "dataset.npz").write_bytes(b"PK\x03\x04")), "dataset.npz"),
    Case("export: dataset.npz a zip bomb", lambda t: export(t, zip_bomb), "dataset.npz"),
    Case("export: arrays wider than the task's spaces", lambda t: export(t, rewrite_npz(lambda a: {k: np.tile(v, (1, 2)) if v.ndim == 2 else v for k, v in a.items()})), "dataset.npz"),
    Case("export: nan observations", lambda t: export(t, rewrite_npz(lambda a: {**a, "transition_obs": a["transition_obs"] * np.nan})), "dataset.npz"),
    Case("export: config.yaml deeply nested", lambda t: export(t, write("config.yaml", nested(100_000, "yaml"))), "config.yaml"),
    Case("export: env.id names a module", lambda t: export(t, lambda r: (r / "config.yaml").write_text((r / "config.yaml").read_text().replace("id: InvertedPendulum-v5", "id: os:system"))), "not a registered gymnasium task"),
    Case("export: env.kwargs the task refuses", lambda t: export(t, lambda r: (r / "config.yaml").write_text((r / "config.yaml").read_text().replace("kwargs: {}", "kwargs: {bogus: 1}"))), "env.kwargs"),
    Case("export: metrics.csv not numeric", lambda t: export(t, write("metrics.csv", "random_return_mean,expert_return_mean\nx,y\n")), "metrics.csv"),
    Case("export: an id of 300 characters", lambda t: export(t, lambda r: None, "--id", "a/" + "b" * 300 + "-v0"), "--id"),
    Case("export: an id climbing out of the datasets folder", lambda t: export(t, lambda r: None, "--id", "../../escape-v0"), "--id"),
    Case("export: MINARI_DATASETS_PATH a file", lambda t: export(t), "MINARI_DATASETS_PATH", tags=["minari-file"]),
    Case("export: a folder that is not a run", lambda t: ["-m", "dagger.export", str(t)], "config.yaml"),
    Case("export: an id inside an existing dataset", export_inside_a_dataset, "lies inside the existing Minari dataset"),
    # ---- inputs refused before any work ------------------------------------------------------------------------
    Case("a window: env.kwargs.render_mode=human", lambda t: run_py(t, "+env.kwargs.render_mode=human"), "env.kwargs.render_mode"),
    Case("a refused command in an empty folder that was there", lambda t: ((t / "run").mkdir(), run_py(t, "schedule.iterations=0"))[1], "schedule.iterations"),
    Case("expert weights that hold nan", nan_expert, "weights hold nan or inf"),
    Case("a batch size beyond memory", lambda t: run_py(t, "policy.batch_size=1000000000"), "policy.batch_size"),
    Case("a Minari id that is a path", lambda t: run_py(t, "schedule.initial_demos=../../etc/x-v0"), "schedule.initial_demos"),
    # ---- the report -------------------------------------------------------------------------------------------------
    Case("report: inf in metrics.csv (listed as broken)", lambda t: sweep_job(t, {"metrics.csv": (finished_run() / "metrics.csv").read_text().replace("1000.0", "inf")}), "metrics.csv", resumes=True),
    Case("report: overrides.yaml deeply nested (listed as broken)", lambda t: sweep_job(t, {".hydra/overrides.yaml": nested(100_000, "yaml")}), "overrides.yaml", resumes=True),
    Case("report: status.json deeply nested (listed as broken)", lambda t: sweep_job(t, {"status.json": nested(100_000, "json")}), "status.json", resumes=True),
    Case("report: config.yaml deeply nested (listed as broken)", lambda t: sweep_job(t, {".hydra/config.yaml": nested(100_000, "yaml")}), "config.yaml", resumes=True),
    Case("report: summary.csv is a folder", lambda t: (sweep_job(t, {}), (t / "sweep" / "summary.csv").mkdir())[0], "summary.csv"),
    # ---- expert training's work and ship folders -----------------------------------------------------------------
    Case("train: checkpoint.zip pickled code", lambda t: in_work("checkpoint.zip", pickled(t))(t), "expert.trust=true"),
    Case("train: replay_buffer.pkl pickled code", lambda t: in_work("replay_buffer.pkl", pickled(t))(t), "expert.trust=true"),
    Case("train: vecnormalize.pkl pickled code", lambda t: in_work("vecnormalize.pkl", pickled(t))(t), "expert.trust=true"),
    Case("train: progress.json not JSON", in_work("progress.json", "{"), "progress.json"),
    Case("train: progress.json deeply nested", in_work("progress.json", nested(100_000, "json")), "progress.json"),
    Case("train: evaluations.csv garbage (publish)", lambda t: (in_work("evaluations.csv", "x,y\n")(t), train_py(t, "publish_only=true"))[1], "work_dir"),
    Case("train: work_dir is a file", lambda t: ((t / "work").write_text("x"), train_py(t))[1], "work_dir"),
    Case("train: ship_dir is a file", lambda t: ((t / "ship").write_text("x"), train_py(t))[1], "ship_dir"),
    Case("train: manifest.yaml deeply nested", lambda t: ((t / "ship").mkdir(), (t / "ship" / "manifest.yaml").write_text(nested(100_000, "yaml")), train_py(t))[2], "manifest.yaml"),
    Case("train: env.id=Pendulum-v1", lambda t: train_py(t, "env.id=Pendulum-v1"), "not a MuJoCo task"),
    # ---- signals and limits ------------------------------------------------------------------------------------------
    Case("SIGTERM after the first iteration (then resumes)", lambda t: run_py(t, "schedule.iterations=3"), "interrupted by SIGTERM", signal_after=("run/metrics.csv", signal.SIGTERM)),
    Case("SIGINT after the first iteration (then resumes)", lambda t: run_py(t, "schedule.iterations=3"), "interrupted by SIGINT", signal_after=("run/metrics.csv", signal.SIGINT)),
    Case("SIGHUP after the first iteration (then resumes)", lambda t: run_py(t, "schedule.iterations=3"), "interrupted by SIGHUP", signal_after=("run/metrics.csv", signal.SIGHUP)),
    Case("SIGTERM before the run starts", lambda t: run_py(t, "schedule.iterations=3"), "interrupted by SIGTERM", signal_after=("", signal.SIGTERM)),
    Case("a CPU-time limit (SIGXCPU)", lambda t: run_py(t, "schedule.iterations=50"), "SIGXCPU", limits="ulimit -S -t 15;"),
    Case("a file-size limit (EFBIG)", lambda t: run_py(t, "schedule.iterations=3"), "File too large", limits="ulimit -f 40;"),
    Case("few file descriptors (finishes)", lambda t: run_py(t, "schedule.iterations=3"), "", limits="ulimit -n 24;", resumes=True),
    Case("a memory limit too small for the imports (refused)", lambda t: run_py(t, "schedule.iterations=3"), "ImportError", limits="ulimit -v 500000;"),
    Case("a memory limit met during the work (failed, resumable)", lambda t: run_py(t, "schedule.iterations=3"), "status failed", limits="ulimit -v 900000;"),
    # ---- sweeps --------------------------------------------------------------------------------------------------------
    Case("sweep: a refused job among good ones", lambda t: [str(ROOT / "run.py"), "-m", *QUICK, "schedule.iterations=1", "seed=0,1", "schedule.rollout_steps=-5,100", f"hydra.sweep.dir={t / 'sweep'}"], "did not finish"),
    Case("sweep: a refused job under joblib", lambda t: [str(ROOT / "run.py"), "-m", *QUICK, "hydra/launcher=joblib", "schedule.iterations=1", "schedule.rollout_steps=100,-5", f"hydra.sweep.dir={t / 'sweep'}"], "did not finish"),
]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def check(case: Case, timeout: int) -> tuple[bool, str]:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        env = {**ENV, "MINARI_DATASETS_PATH": str(tmp / "datasets")}  # never the user's own datasets
        if "minari-file" in case.tags:
            (tmp / "minari-file").write_text("x")
            env["MINARI_DATASETS_PATH"] = str(tmp / "minari-file")
        args = case.setup(tmp)
        before = {p: snapshot(p) for p in tmp.iterdir() if p.is_dir() and not p.is_symlink()}
        cmd = [PY, *args]
        shell = case.limits + " exec " + " ".join(f"'{a}'" for a in cmd) if case.limits else None
        proc = subprocess.Popen(shell or cmd, shell=bool(shell), cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        if case.signal_after:
            trigger, sig = case.signal_after
            deadline = time.time() + 120
            while trigger and time.time() < deadline and not (tmp / trigger).exists() and proc.poll() is None:
                time.sleep(0.05)
            if not trigger:
                time.sleep(2.5)
            proc.send_signal(sig)
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            return False, f"still running after {timeout} s"
        lines = err.strip().splitlines()
        last = lines[-1] if lines else ""
        if marker(tmp).exists():
            return False, "CODE RAN from a file"
        if "Traceback" in err:
            return False, "TRACEBACK " + last
        if case.resumes and not case.signal_after:
            if proc.returncode != 0:
                return False, f"exit {proc.returncode}: {last}"
            broken = [l for l in out.splitlines() if l.startswith("broken: ")]
            return (not case.says or any(case.says in l for l in broken)), (broken[0] if broken else "finished")
        if proc.returncode == 0:
            return False, "ACCEPTED"
        ok = last.startswith("error: ") and case.says in last
        changed = [str(p) for p, snap in before.items() if p.exists() and snapshot(p) != snap
                   and not case.signal_after and not args[0].endswith("train.py")]
        if changed:
            return False, f"CHANGED {changed}: {last}"
        if case.signal_after:
            status = json.loads((tmp / "run" / "status.json").read_text()).get("status") if (tmp / "run" / "status.json").is_file() else "none"
            again = subprocess.run([PY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
            ok = ok and (again.returncode == 0 or not (tmp / "run").exists())
            last = f"{last} | status {status} | rerun exit {again.returncode}"
        return ok, last


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks.hostile", description=__doc__)
    parser.add_argument("only", nargs="*", help="keep cases whose name contains one of these")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--timeout", type=int, default=180)
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.only or any(o in c.name for o in args.only)]
    finished_run()
    results = []
    with ThreadPoolExecutor(args.jobs) as pool:
        for case, ok, said in pool.map(lambda c: (c, *check(c, args.timeout)), cases):
            print(f"{'ok  ' if ok else 'FAIL'} {case.name}: {said}", flush=True)
            results.append((case, ok, said))
    failed = sum(not ok for _, ok, _ in results)
    print(f"{len(results) - failed} handled, {failed} not, of {len(results)} hostile cases")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
