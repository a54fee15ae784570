#!/usr/bin/env bash
# make test-cluster: the small DAgger sweep through real engines on this machine (single-node Slurm,
# a local Ray head), each compared with the same sweep run by the local launcher.
# Outputs under ${CLUSTER_TEST_DIR:-/tmp/dagger-cluster-test}; one line per engine and a final count.
cd "$(dirname "$0")"
passed=0 failed=0 results=()
for engine in slurm ray; do
  echo "=================== $engine ==================="
  start=$SECONDS
  if bash "./$engine.sh"; then result=PASS; passed=$((passed + 1)); else result=FAIL; failed=$((failed + 1)); fi
  results+=("$result $engine ($((SECONDS - start)) s in all)")
  echo "$result $engine"
done
echo "==================================================="
printf '%s\n' "${results[@]}"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
