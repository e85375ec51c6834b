#!/usr/bin/env bash
# A virtual environment with feedbax as the field used it in late 2024, for `benchmarks/peer.py`:
# JAX 0.4.35 and the Equinox, Optax and Diffrax versions of its time, feedbax from source
# (its PyPI wheel lacks `feedbax.mechanics`).
#
#   bash benchmarks/peer/setup.sh [FEEDBAX_SOURCE]
#
# FEEDBAX_SOURCE: a feedbax checkout; without it, github.com/mlprt/feedbax is cloned at
# commit f77d438. The environment goes to benchmarks/peer/.venv (git-ignored).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source_dir="${1:-}"
if [[ -z "$source_dir" ]]; then
  source_dir="$here/.feedbax"
  [[ -d "$source_dir" ]] || git clone -q https://github.com/mlprt/feedbax "$source_dir"
  git -C "$source_dir" checkout -q f77d438
fi
python3.11 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q "jax[cpu]==0.4.35" "equinox==0.11.10" "optax==0.2.4" "diffrax==0.6.0" \
  "jaxtyping==0.2.36" numpy matplotlib plotly polars seaborn tqdm crc32c tensorboardX
"$here/.venv/bin/pip" install -q --no-deps "$source_dir"
"$here/.venv/bin/python" -c "import feedbax.xabdeef, jax; print('feedbax ready, jax', jax.__version__)"
