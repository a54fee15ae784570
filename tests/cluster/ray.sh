#!/usr/bin/env bash
# A local Ray head (2 CPUs), then the small sweep through hydra-ray-launcher (hydra/launcher=ray_cluster),
# compared with the same sweep run locally.
source "$(dirname "$0")/common.sh"
BASE=$WORK/ray
RAY=$REPO/.venv/bin/ray
MARK=$WORK/ray-started       # exists while a head started by this script runs
unset RAY_ADDRESS            # ray_cluster.yaml then uses address=auto: the head started here

stop_ray() {
  if [ -e "$MARK" ]; then "$RAY" stop >/dev/null 2>&1 || true; rm -f "$MARK"; fi
}
stop_ray                     # a head left by an interrupted earlier run of this script
trap stop_ray EXIT
mkdir -p "$WORK" && touch "$MARK"
"$RAY" start --head --num-cpus=2 --include-dashboard=false --disable-usage-stats >"$WORK/ray-start.log" 2>&1 \
  || { tail -n 20 "$WORK/ray-start.log"; echo "ray start failed (another Ray already running here?)"; rm -f "$MARK"; exit 1; }
grep -o "Local node IP.*" "$WORK/ray-start.log" | sed 's/\x1b\[[0-9;]*m//g' || true

rm -rf "$BASE" && mkdir -p "$BASE"
sweep ray "$BASE/ray" hydra/launcher=ray_cluster
# The jobs really ran as Ray tasks on the head started here.
grep -q "Connected to Ray cluster" "$BASE/ray.log" && grep -q "(_run_job pid=" "$BASE/ray.log" \
  || { echo "the sweep did not run on Ray"; exit 1; }
compare_with_local ray
