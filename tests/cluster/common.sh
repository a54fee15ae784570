# Shared by slurm.sh and ray.sh (sourced): the small sweep, a timed runner and the comparison
# against the same sweep run by Hydra's basic local launcher.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
PY=$REPO/.venv/bin/python
# Outputs of every run live here (wiped per engine, so each run really runs the jobs again: a sweep
# into a folder that already holds finished jobs would only skip them).
WORK=${CLUSTER_TEST_DIR:-/tmp/dagger-cluster-test}
# Two jobs of two cheap iterations on InvertedPendulum; deterministic per seed on CPU.
SWEEP=(+sweeps=rollout_budget env=pendulum schedule.rollout_steps=100,200 schedule.iterations=2 seed=0
       policy.gradient_steps=200 policy.hidden=[64,64] eval.episodes=4 logger=none)
SWEEP_TIMEOUT=${SWEEP_TIMEOUT:-900}   # seconds; a job lost by the engine must not hang the test

# sweep NAME DIR [override ...]: run the sweep into DIR (timed, with its own log), print the wall time.
sweep() {
  local name=$1 dir=$2; shift 2
  local start=$SECONDS rc=0
  echo "--- $name sweep -> $dir"
  timeout "$SWEEP_TIMEOUT" "$PY" run.py -m "${SWEEP[@]}" "$@" "hydra.sweep.dir=$dir" >"$dir.log" 2>&1 || rc=$?
  echo "wall time ($name sweep): $((SECONDS - start)) s (exit $rc, log $dir.log)"
  if [ "$rc" != 0 ]; then tail -n 40 "$dir.log"; fi
  return "$rc"
}

# compare ENGINE: run the local reference sweep, print both reports, compare job by job.
compare_with_local() {
  local engine=$1 base=$WORK/$1
  sweep local "$base/local"
  for dir in "$base/$engine" "$base/local"; do
    echo "--- python -m dagger.report $dir"
    "$PY" -m dagger.report "$dir"
  done
  "$PY" tests/cluster/compare.py "$base/$engine" "$base/local"
}
