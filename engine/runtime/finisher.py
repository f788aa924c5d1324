"""The frame loop's second thread: it finishes one frame while the first thread begins the next.

    processing thread:  camera frame -> Pipeline.begin -> submit ──┐
    finishing thread:          outputs <- Pipeline.finish  <───────┘

`submit` waits while the finishing thread is busy, so one frame at most is in its hands and
the first thread is never more than one frame ahead: frames still drop at the camera's slot,
never queue here. The two halves of a frame take about the same time on the CPU tier, so two
cores render about a quarter more frames per second than one thread running both halves
(MODEL_CARD "Speed"), for about one half-frame more latency.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from engine.runtime.affinity import Pinning, stage_cores, use_cores

log = logging.getLogger(__name__)

Job = Callable[[], object]  # its result is ignored


class Finisher:
    """Runs submitted jobs one at a time, in order, on its own thread.

    on_error: called on the finishing thread with an exception a job raised (the loop's
    boundary: the thread carries on with the next job).
    """

    def __init__(self, on_error: Callable[[Exception], None], name: str = "visage-finishing"):
        self._on_error = on_error
        self._jobs: queue.Queue[Job] = queue.Queue(maxsize=1)
        self._free = threading.Semaphore(1)  # held from submit until the job has run
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, job: Job, timeout: float = 1.0) -> bool:
        """Hand `job` over once the previous one has run. False (and `job` not taken) when the
        finishing thread stayed busy for `timeout` seconds or is stopping."""
        if self._stop.is_set() or not self._free.acquire(timeout=timeout):
            return False
        self._jobs.put(job)
        return True

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until the job in hand (if any) has run; False on timeout."""
        if not self._free.acquire(timeout=timeout):
            return False
        self._free.release()
        return True

    def stop(self, timeout: float = 10.0) -> None:
        """Let the job in hand finish, then end the thread (a job not yet started is dropped)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._jobs.get(timeout=0.1)
            except queue.Empty:
                continue
            try:
                job()
            except Exception as err:  # the loop boundary: report, carry on with the next job
                self._on_error(err)
            finally:
                self._free.release()


def split_cores(finisher: Finisher) -> list[Pinning | None]:
    """Half the cores each for the calling thread and `finisher`'s thread, before either runs
    the networks (engine.runtime.affinity). Returns the caller's pinning, followed by the
    finishing thread's once its setup has run (before any job submitted after this call);
    None where nothing was pinned, and one entry only when the finisher stayed busy."""
    begin_cores, finish_cores = stage_cores()
    pinnings = [use_cores(begin_cores)]
    if not finisher.submit(lambda: pinnings.append(use_cores(finish_cores))):
        log.warning("the finishing thread stayed busy: its threads were not set up")
    return pinnings
