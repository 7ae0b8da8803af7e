"""The one verbosity switch: ``hdc-ray -v`` or ``HDC_RAY_VERBOSE=1`` brings back per-epoch lines and Ray's
own log lines. Here, below every layer, because the sweep (``tune/console.py`` quiets Ray and Optuna) and
Ray Data prediction (``distributed/predict.py``) both read it.
"""

from __future__ import annotations

import os

VERBOSE_ENV = "HDC_RAY_VERBOSE"


def is_verbose(flag: bool = False) -> bool:
    """``flag`` (the ``-v`` option) or a non-empty, non-zero ``HDC_RAY_VERBOSE``."""
    return flag or os.environ.get(VERBOSE_ENV, "").strip() not in ("", "0")
