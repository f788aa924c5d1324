"""Pinning the networks' OpenMP threads on two-core machines (engine.threads), checked in fresh
interpreters: OpenMP reads the setting only when torch is first imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = """
import json, os, sys
from engine.threads import pin_openmp_threads
if sys.argv[2] == "torch-first":
    import torch
pinned = pin_openmp_threads(int(sys.argv[1]))
print(json.dumps([pinned, os.environ.get("OMP_PROC_BIND"), os.environ.get("OMP_PLACES")]))
"""


def run(cores: int, order: str = "", **env: str) -> list[object]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OMP_")}
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(cores), order or "-"],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: list[object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_two_cores_pin_one_thread_per_core() -> None:
    assert run(2) == [True, "close", "cores"]
    assert run(1) == [True, "close", "cores"]


def test_larger_machines_and_the_users_own_setting_are_left_alone() -> None:
    assert run(8) == [False, None, None]
    assert run(2, OMP_PROC_BIND="false") == [False, "false", None]
    assert run(2, OMP_PLACES="threads") == [False, None, "threads"]


@pytest.mark.slow
def test_too_late_once_torch_is_loaded() -> None:
    assert run(2, "torch-first") == [False, None, None]
