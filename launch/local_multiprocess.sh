#!/usr/bin/env bash
# Starts N processes of one training job on this machine, as a multi-host job would run.
# On a CPU-only machine each process gets DEVICES fake devices (gloo collectives between them).
#
#   launch/local_multiprocess.sh 2 --config configs/baseline.py --workdir /tmp/mp
#
# Environment: DEVICES (fake CPU devices per process, default 2), PORT (coordinator port, 12355).
set -euo pipefail
n=${1:?usage: $0 NUM_PROCESSES TRAIN_FLAGS...}
shift
port=${PORT:-12355}
if ! python -c "import jax, sys; sys.exit(jax.default_backend() == 'cpu')" 2>/dev/null; then
  fake=""  # accelerators present: each process takes the devices it is given (CUDA_VISIBLE_DEVICES)
else
  fake="--xla_force_host_platform_device_count=${DEVICES:-2}"
fi
pids=()
for ((i = 0; i < n; i++)); do
  XLA_FLAGS="${XLA_FLAGS:-} $fake" python -m launch.train "$@" \
    --coordinator_address="127.0.0.1:$port" --num_processes="$n" --process_id="$i" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=$?; done
exit $status
