"""What a sweep prints: its own progress lines and the warnings that matter; Ray's and Optuna's internal
lines (experiment boxes, TensorBoard hints, checkpoint notices, worker logs) only with ``-v``.

``hdc-ray -v sweep ...`` or ``HDC_RAY_VERBOSE=1`` brings everything back (``hdc_ray.console.is_verbose``).
Trial failures are printed by the Parquet callback and Tune's own WARNING/ERROR lines (a lost node, a dead
actor) always reach stderr.
"""

from __future__ import annotations

import logging
import os


def quiet_console(verbose: bool) -> None:
    """Set before ``ray.init``/``Tuner``: Ray reads these at start-up (and workers inherit the environment)."""
    if verbose:
        return
    # Tune's new output engine prints an experiment box and a TensorBoard hint even at verbose=0; the old
    # reporter prints nothing at verbose=0.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    # "snapshotting has been triggered multiple times": advice about Tune's internals a user cannot act on.
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    # "operation took 0.6 s, which may be a performance bottleneck": a Parquet flush with fsync on a busy
    # disk; warn only when a callback stalls the driver for seconds.
    os.environ.setdefault("TUNE_WARN_THRESHOLD_S", "5")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # "A new study created in RDB ..."
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    logging.getLogger("ray.train").setLevel(logging.WARNING)
