"""How the frame loop's two threads share the CPU cores when the networks run on the CPU.

The loop has two threads (engine.runtime.finisher): one begins a frame (landmarks, flow, warp
net) while the other finishes the previous one (fusion, composite, paste). Each gets half of
the cores: its own PyTorch thread count, and itself and its OpenMP workers pinned one per
core. On two cores that is one core each, single-threaded.

Why pinned: unpinned, the scheduler now and then runs two of these threads on one core, and a
frame waits at an OpenMP barrier: a few frames in a hundred took 100 to 150 ms instead of 40
(MODEL_CARD "Speed"). `OMP_PROC_BIND` pins too, but it pins the process's main thread when
torch loads, and every thread started later (the window, the camera, the virtual camera)
inherits that one core. Here only the two stage threads and their own workers are pinned;
every other thread keeps all cores.

`use_cores` must run on the stage thread before that thread's first torch work: OpenMP
starts a thread's team on its first parallel operation, and the team's workers are told apart
as the threads that appear then. When they cannot be (another thread started meanwhile),
nothing is pinned and the reason is logged.

VISAGE_PIN_THREADS=0 turns pinning off (thread counts are still split).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

ENV = "VISAGE_PIN_THREADS"
_TASKS = "/proc/self/task"
_TEAM_LOCK = threading.Lock()  # one thread at a time starts its team and counts new threads


@dataclass(frozen=True)
class Pinning:
    """thread: the caller's native id. workers: its OpenMP workers' native ids. cores: the core
    of the caller, then of each worker. previous: the cores they all had before."""

    thread: int
    workers: tuple[int, ...]
    cores: tuple[int, ...]
    previous: frozenset[int]


def pinning_enabled() -> bool:
    """False when VISAGE_PIN_THREADS is 0/off/false, or where threads cannot be pinned."""
    if os.environ.get(ENV, "").strip().lower() in ("0", "off", "false", "no"):
        return False
    return hasattr(os, "sched_setaffinity") and os.path.isdir(_TASKS)


def allowed_cores() -> tuple[int, ...]:
    """The cores this process may run on (all of them where that cannot be asked)."""
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    return tuple(range(os.cpu_count() or 1))


def stage_cores(cores: Sequence[int] | None = None) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """`cores` (default: the allowed ones) split for the loop's (beginning, finishing) threads:
    the first half and the rest; with one core, both get it."""
    cores = tuple(cores) if cores is not None else allowed_cores()
    if len(cores) < 2:
        return cores, cores
    half = len(cores) // 2
    return cores[:half], cores[half:]


def _threads() -> set[int]:
    """Native ids of this process's threads (empty where /proc is missing)."""
    if not os.path.isdir(_TASKS):
        return set()
    return {int(name) for name in os.listdir(_TASKS)}


def _start_team() -> int:
    """Run one parallel torch operation on the calling thread, so that OpenMP starts its team
    (and ATen reads this thread's count). Returns the team's size."""
    import torch

    torch.ones(1 << 20).mul_(2.0).sum()  # 1M elements: far above ATen's parallel grain size
    return torch.get_num_threads()


def _set_default_threads(count: int) -> None:
    """Set the process default thread count without changing the caller's.

    torch.set_num_threads sets the calling thread's OpenMP team size and the default that other
    threads adopt at their first torch work; set from a short-lived helper thread, only the
    default changes (a thread that has started its team keeps its own)."""
    import torch

    helper = threading.Thread(target=torch.set_num_threads, args=(count,), name="visage-threads")
    helper.start()
    helper.join()


def use_cores(cores: Sequence[int]) -> Pinning | None:
    """Give the calling thread len(cores) PyTorch threads, pinned one per core (the caller on
    the first). Returns the pinning, or None when nothing was pinned (disabled, or the workers
    could not be identified). Other threads' counts and the process default stay as they were.
    """
    import torch

    cores = tuple(cores)
    if not cores:
        raise ValueError("use_cores needs at least one core")
    with _TEAM_LOCK:
        default = torch.get_num_threads()
        torch.set_num_threads(len(cores))
        before = _threads()
        team = _start_team()
        workers = tuple(sorted(_threads() - before))
        if default != len(cores):
            _set_default_threads(default)
    if not pinning_enabled():
        return None
    if len(workers) != team - 1:
        log.info("threads not pinned: %d OpenMP threads, %d new threads", team, len(workers))
        return None
    me = threading.get_native_id()
    pinning = Pinning(me, workers, cores[: 1 + len(workers)], frozenset(allowed_cores()))
    try:
        for tid, core in zip((me, *workers), pinning.cores, strict=True):
            os.sched_setaffinity(tid, {core})
    except OSError as err:  # a worker that ended, or a sandbox that forbids it
        unpin(pinning)
        log.info("threads not pinned: %s", err)
        return None
    log.info(
        "%s: %d torch thread(s) pinned to cores %s",
        threading.current_thread().name,
        team,
        pinning.cores,
    )
    return pinning


def unpin(pinning: Pinning) -> None:
    """Give the pinned threads their previous cores back (threads that ended are skipped)."""
    for tid in (pinning.thread, *pinning.workers):
        try:
            os.sched_setaffinity(tid, pinning.previous)
        except OSError:
            log.debug("thread %d ended before it was unpinned", tid)
