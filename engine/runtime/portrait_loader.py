"""The portrait worker: prepares portraits and their pipelines off the processing thread.

A request is answered twice when networks are on: first with the geometric pipeline (about a
second: the avatar moves right away), then with the networks' pipeline once they are compiled
(seconds from the cache; the very first compile on a CPU takes about a minute). The newest
request wins; a result overtaken by a newer request is dropped. A portrait that cannot be used
(no face, damaged file) is refused with the engine's reason and the current one stays.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from engine.config import EngineConfig
from engine.errors import VisageError
from engine.runtime.events import ComputeChanged, EngineFault, PortraitRefused, RunnerEvent
from engine.runtime.slots import LatestSlot

if TYPE_CHECKING:  # torch is imported by the worker, never on the caller's (GUI) thread
    from engine.portrait import Portrait
    from engine.runtime.pipeline import Pipeline

log = logging.getLogger(__name__)

GEOMETRIC = "geometric path"


@dataclass(frozen=True)
class LoaderOptions:
    """networks: run the trained networks on top of the geometric path (when shipped).
    tier: "cpu" or "gpu" (None: gpu on CUDA when its weights exist, else cpu).
    models: a folder with the tier's networks (None: the shipped ones).
    backend: how the networks run ("auto", "tensorrt", "torch.compile", "eager").
    output_size: (width, height) of the avatar (None: the portrait's own, capped at 1920).
    """

    networks: bool = True
    tier: str | None = None
    models: Path | None = None
    backend: str = "auto"
    output_size: tuple[int, int] | None = None
    config: EngineConfig = field(default_factory=EngineConfig)


@dataclass(frozen=True)
class Prepared:
    """A pipeline ready to take over. compute: what renders it. note: worth showing."""

    pipeline: Pipeline
    path: str
    name: str
    notes: tuple[str, ...]
    device: str
    compute: str
    note: str = ""


def _device() -> tuple[str, str]:
    """(torch device, description for the user)."""
    from engine.device import probe_device

    report = probe_device()
    return report.device, f"{report.device} ({report.device_name})"


def _tier(options: LoaderOptions, device: str) -> str:
    from engine.runtime.neural import tier_folder

    if options.tier is not None:
        return options.tier
    return "gpu" if device == "cuda" and (tier_folder("gpu") / "warp").is_dir() else "cpu"


class PortraitLoader:
    """deliver: receives each Prepared (from the worker thread). emit: runner events."""

    def __init__(
        self,
        options: LoaderOptions,
        deliver: Callable[[Prepared], None],
        emit: Callable[[RunnerEvent], None],
    ) -> None:
        self.options = options
        self._deliver, self._emit = deliver, emit
        self._requests: LatestSlot[str] = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="visage-portraits", daemon=True)
        self._thread.start()

    def request(self, path: str | Path) -> None:
        """Load the portrait at `path` (the newest request wins)."""
        self._requests.put(str(path))

    def stop(self, wait_s: float = 2.0) -> bool:
        """Stop after the current step; True when the worker has ended. A network compile
        cannot be interrupted: after `wait_s` the (daemon) thread is left to finish on its own,
        its result dropped, and False returned (the process should then end with os._exit:
        interpreter shutdown under a running compile can crash)."""
        self._stop.set()
        if self._thread is None:
            return True
        self._thread.join(timeout=wait_s)
        if self._thread.is_alive():
            log.info("the portrait worker is still compiling networks; not waiting for it")
            return False
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            path = self._requests.take(timeout=0.2)
            if path is None:
                continue
            try:
                geometric = self._geometric(path)
            except VisageError as err:  # no face, damaged file...: the user's to fix
                log.warning("portrait refused: %s", err)
                self._emit(PortraitRefused(path, str(err)))
                continue
            except Exception as err:  # the worker loop's boundary
                log.exception("loading %s failed", path)
                fault = EngineFault.of("portrait loader", err)
                self._emit(fault)
                self._emit(PortraitRefused(path, fault.message))
                continue
            self._deliver(geometric)
            if self.options.networks and not self._overtaken():
                self._upgrade(geometric)

    def _overtaken(self) -> bool:
        return self._requests.peek() is not None or self._stop.is_set()

    def _geometric(self, path: str) -> Prepared:
        from engine.portrait import prepare_portrait
        from engine.runtime.pipeline import Pipeline

        portrait = prepare_portrait(path, output_size=self.options.output_size)
        for note in portrait.notes:
            log.warning("%s", note)
        device, described = _device()
        note = ""
        if self.options.networks:
            note = f"preparing the {_tier(self.options, device)}-tier networks"
        return Prepared(
            pipeline=Pipeline(portrait, self.options.config),
            path=path,
            name=portrait.name,
            notes=portrait.notes,
            device=described,
            compute=GEOMETRIC,
            note=note,
        )

    def _upgrade(self, geometric: Prepared) -> None:
        """Build the networks' pipeline for the same portrait; failures keep the geometric."""
        try:
            prepared = self._neural(geometric)
        except VisageError as err:
            log.warning("networks unavailable: %s", err)
            note = f"networks unavailable: {err}"
            self._emit(ComputeChanged(geometric.device, GEOMETRIC, note))
            return
        except Exception as err:  # the worker loop's boundary
            log.exception("preparing the networks failed")
            self._emit(EngineFault.of("network preparation", err))
            self._emit(ComputeChanged(geometric.device, GEOMETRIC, "networks failed to load"))
            return
        if self._overtaken():
            prepared.pipeline.close()
            return
        self._deliver(prepared)

    def _neural(self, geometric: Prepared) -> Prepared:
        from engine.runtime.neural import load_models
        from engine.runtime.pipeline import Pipeline

        portrait: Portrait = geometric.pipeline.portrait
        device, _ = _device()
        tier = _tier(self.options, device)
        models = load_models(tier, self.options.models, device)
        pipeline = Pipeline(
            portrait, self.options.config, models, device=device, backend=self.options.backend
        )
        assert pipeline.neural is not None
        compute = f"{tier}-tier networks: {pipeline.neural.backend_summary}"
        return Prepared(
            pipeline, geometric.path, geometric.name, geometric.notes, geometric.device, compute
        )
