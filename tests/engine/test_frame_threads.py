"""The frame loop's two threads: the Finisher's hand-over, and how the cores are split and
pinned between them (real threads, real torch, real OS affinity)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
import torch

from engine.runtime.affinity import ENV, pinning_enabled, stage_cores, use_cores
from engine.runtime.finisher import Finisher


def _on_thread(fn: Callable[[], Any]) -> Any:
    """fn's result, run on a fresh thread (as the loop's threads are)."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(fn()))
    worker.start()
    worker.join()
    return out[0]


def test_jobs_run_in_order_on_one_other_thread_and_errors_do_not_stop_it() -> None:
    errors: list[Exception] = []
    done: list[tuple[int, str]] = []
    finisher = Finisher(errors.append)
    finisher.start()

    def job(i: int) -> None:
        if i == 3:
            raise RuntimeError("job 3 failed")
        done.append((i, threading.current_thread().name))

    for i in range(8):
        assert finisher.submit(lambda i=i: job(i))
    assert finisher.wait_idle()
    finisher.stop()
    assert [i for i, _ in done] == [0, 1, 2, 4, 5, 6, 7]
    assert {name for _, name in done} == {"visage-finishing"}
    assert [str(e) for e in errors] == ["job 3 failed"]


def test_one_frame_in_flight_submit_waits_then_gives_up_while_busy() -> None:
    release = threading.Event()
    finisher = Finisher(lambda err: None)
    finisher.start()
    assert finisher.submit(lambda: release.wait(5.0))
    t0 = time.monotonic()
    assert not finisher.submit(lambda: None, timeout=0.2)  # busy: the caller is told, not queued
    assert time.monotonic() - t0 >= 0.19
    release.set()
    assert finisher.submit(lambda: None, timeout=2.0)  # free again
    finisher.stop()
    assert not finisher.submit(lambda: None, timeout=0.1)  # stopped: nothing more is taken


def test_stage_cores_split_the_allowed_cores_in_halves() -> None:
    assert stage_cores((0, 1)) == ((0,), (1,))
    assert stage_cores((0, 1, 2, 3, 4)) == ((0, 1), (2, 3, 4))
    assert stage_cores((3,)) == ((3,), (3,))  # one core: both threads share it


@pytest.mark.skipif(not pinning_enabled(), reason="this OS cannot pin threads (Linux only)")
def test_use_cores_pins_the_thread_and_its_workers_and_keeps_the_default() -> None:
    default = torch.get_num_threads()
    core = max(os.sched_getaffinity(0))

    def on_one_core() -> tuple[Any, set[int], int]:
        pinning = use_cores((core,))
        torch.ones(1 << 20).add_(1.0)  # later torch work keeps the thread's own count
        return pinning, os.sched_getaffinity(0), torch.get_num_threads()

    pinning, affinity, threads = _on_thread(on_one_core)
    assert pinning is not None and pinning.cores == (core,) and pinning.workers == ()
    assert affinity == {core} and threads == 1
    # other threads and the process default are untouched
    assert torch.get_num_threads() == default
    assert _on_thread(torch.get_num_threads) == default
    assert _on_thread(lambda: os.sched_getaffinity(0)) == os.sched_getaffinity(0)
    cores = tuple(sorted(os.sched_getaffinity(0)))
    if len(cores) >= 2:

        def on_two_cores() -> Any:
            pinning = use_cores(cores[:2])
            assert pinning is not None
            return pinning, [os.sched_getaffinity(t) for t in (pinning.thread, *pinning.workers)]

        two, affinities = _on_thread(on_two_cores)
        assert len(two.workers) == 1  # its OpenMP worker, found and pinned to the second core
        assert affinities == [{cores[0]}, {cores[1]}]


def test_pinning_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "0")
    assert not pinning_enabled()
    pinning, threads = _on_thread(lambda: (use_cores((0,)), torch.get_num_threads()))
    assert pinning is None and threads == 1  # the thread count is still its own
