"""Where the networks' CPU threads run, decided before torch loads its OpenMP runtime.

On a two-core machine PyTorch runs the networks on two OpenMP threads that the OS may move
between the cores. Measured on this project's 2-core machine (see the model card's "Speed"): a
few frames in a hundred then stall for 100 to 150 ms inside the networks (99th percentile of
the frame time 124 to 143 ms in 8 runs), and pinning one thread to each core removes that
(43 to 59 ms in 10 runs). Larger machines are left alone: nothing was measured there.
"""

from __future__ import annotations

import os
import sys

SMALL_MACHINE_CORES = 2
PINNING = {"OMP_PROC_BIND": "close", "OMP_PLACES": "cores"}


def pin_openmp_threads(cores: int | None = None) -> bool:
    """On a machine with at most SMALL_MACHINE_CORES cores (`cores`, default os.cpu_count()),
    pin OpenMP's threads one per core (PINNING), unless the user set OMP_PROC_BIND or
    OMP_PLACES. OpenMP reads these once, when torch is first imported, so this must run before
    that; it does nothing after. Returns whether it set them."""
    if "torch" in sys.modules or any(key in os.environ for key in PINNING):
        return False
    if (cores or os.cpu_count() or 1) > SMALL_MACHINE_CORES:
        return False
    os.environ.update(PINNING)
    return True
