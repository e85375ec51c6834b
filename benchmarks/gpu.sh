#!/usr/bin/env bash
# The GPU measurements in one go (about 5 minutes): rollout, training step and fixed-point
# finder at real sizes. Each script writes its summary, benchmarks/<name>-gpu.json.
#
#     bash benchmarks/gpu.sh            # PYTHON=... to choose the interpreter
#
# Needs JAX with CUDA (pip install "jax[cuda12]"). Without a GPU it says so and exits 0,
# measuring nothing. A script that fails or overruns its share of the 5 minutes is reported
# and the others still run; the exit status is the number of scripts that did not finish.
set -uo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python}
export PYTHONPATH="$(cd .. && pwd)/lib${PYTHONPATH:+:$PYTHONPATH}"
# Take GPU memory as needed rather than 75 % up front, as notebook kernels do (several
# kernels share one GPU); compile afresh, since compile time is part of what is measured.
export XLA_PYTHON_CLIENT_PREALLOCATE=false
export ROBUSTREACH_COMPILE_CACHE=off
unset JAX_COMPILATION_CACHE_DIR

backend=$("$PYTHON" -c 'import jax; print(jax.default_backend())' 2>/dev/null || echo "none (JAX failed to start)")
if [ "$backend" != "gpu" ] && [ "$backend" != "cuda" ]; then
    echo "gpu.sh: JAX's backend is $backend, not a GPU: nothing measured."
    exit 0
fi
"$PYTHON" -c 'import jax; print("gpu.sh:", jax.__version__, jax.devices())'

# Device fp32 peak (full-precision matmul, 8192^2), for the rollout's share of peak.
peak=$("$PYTHON" - <<'PY'
import time, jax, jax.numpy as jnp
a = jax.random.normal(jax.random.PRNGKey(0), (8192, 8192), jnp.float32)
f = jax.jit(lambda x: jnp.matmul(x, x, precision=jax.lax.Precision.HIGHEST))
jax.block_until_ready(f(a))
times = []
for _ in range(5):
    start = time.perf_counter()
    jax.block_until_ready(f(a))
    times.append(time.perf_counter() - start)
print(f"{2 * 8192**3 / min(times) / 1e9:.0f}")
PY
) || peak=""
echo "gpu.sh: fp32 matmul peak ${peak:-unmeasured} GFLOP/s"

failed=0
run() {  # run NAME SECONDS SCRIPT ARGS...
    local name=$1 limit=$2
    shift 2
    echo; echo "== $name (at most ${limit} s)"
    if ! timeout "$limit" "$PYTHON" "$@"; then
        echo "gpu.sh: $name failed or ran past ${limit} s"
        failed=$((failed + 1))
    fi
}
run rollout 45 rollout.py --batch 250 --steps 100 --hidden 50 ${peak:+--peak-gflops "$peak"}
run train 140 train.py --label gpu --rounds 5 --sizes 1x50,4x50,2x100
run fixed_points 90 fixed_points.py --sizes 1000 10000
echo; echo "gpu.sh: summaries in $(pwd)/*-gpu.json; $failed script(s) did not finish"
exit "$failed"
