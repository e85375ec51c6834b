"""Worker run with feedbax's own interpreter (`peer/setup.sh`): train feedbax's point-mass
GRU reaching setup for `n_batches` batches of 250 and print the seconds from the call to the
trained model, as one JSON line. Usage: python feedbax_worker.py N_REPLICATES N_BATCHES"""

import json
import os
import sys
import tempfile
import time

n_replicates, n_batches = int(sys.argv[1]), int(sys.argv[2])
# feedbax writes `feedbax.log` when imported and checkpoints while training, into the working
# folder: both go to a scratch folder.
with tempfile.TemporaryDirectory() as scratch:
    os.chdir(scratch)
    import equinox as eqx
    import jax
    import jax.random as jr
    from feedbax.xabdeef import point_mass_nn_simple_reaches

    context = point_mass_nn_simple_reaches(n_replicates=n_replicates, hidden_size=50, n_steps=100, key=jr.PRNGKey(0))
    start = time.perf_counter()
    model, *_ = context.train(n_batches=n_batches, batch_size=250, log_step=n_batches, disable_tqdm=True, key=jr.PRNGKey(1))
    jax.block_until_ready(eqx.filter(model, eqx.is_array))
    seconds = time.perf_counter() - start
print(json.dumps({"library": "feedbax", "jax": jax.__version__, "replicates": n_replicates, "batches": n_batches,
                  "seconds": seconds}))
