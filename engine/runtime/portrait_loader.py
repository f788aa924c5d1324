"""The portrait worker: prepares portraits and their pipelines off the processing thread.

A request is answered twice when networks are on: first with the geometric pipeline (about a
second: the avatar moves right away), then with the networks' pipeline once they are compiled
(seconds from the cache; the very first compile on a CPU takes about a minute). The newest
request wins; a result overtaken by a newer request is dropped. A portrait that cannot be used
(no face, damaged file) is refused with the engine's reason and the current one stays.
A personalized profile is a portrait too: its source image, animated with its own networks.
"""

from __future__ import annotations

import dataclasses
import gc
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
class PortraitRequest:
    """What to animate. path: an image, or with `profile` a personalized profile's folder
    (engine.personalize.profile): its source image with its fine-tuned networks."""

    path: str
    profile: bool = False


@dataclass(frozen=True)
class _Target:
    """A request resolved on the worker: the image, the networks' folder and tier (None: the
    options'), and the name to show."""

    image: str
    models: Path | None
    tier: str | None
    name: str


@dataclass(frozen=True)
class Prepared:
    """A pipeline ready to take over. compute: what renders it. note: worth showing.
    path: the request's path (a profile's folder for a profile)."""

    pipeline: Pipeline
    path: str
    name: str
    notes: tuple[str, ...]
    device: str
    compute: str
    note: str = ""
    profile: bool = False


def _device() -> tuple[str, str]:
    """(torch device, description for the user)."""
    from engine.device import probe_device

    report = probe_device()
    return report.device, f"{report.device} ({report.device_name})"


def _tier(options: LoaderOptions, device: str, target: _Target | None = None) -> str:
    from engine.runtime.neural import tier_folder

    if target is not None and target.tier is not None:
        return target.tier
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
        self._requests: LatestSlot[PortraitRequest] = LatestSlot()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="visage-portraits", daemon=True)
        self._thread.start()

    def request(self, portrait: str | Path | PortraitRequest) -> None:
        """Load an image (a path) or a PortraitRequest (the newest request wins)."""
        if not isinstance(portrait, PortraitRequest):
            portrait = PortraitRequest(str(portrait))
        self._requests.put(portrait)

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

    def _hand_over(self, prepared: Prepared) -> None:
        """Deliver `prepared`, first moving every object alive now out of the garbage
        collector's generations (gc.freeze): torch, the compiled graphs and the portrait live
        as long as they are used, and a full collection over them paused every thread for a
        quarter of a second (one 239 ms collection in 40 s of live avatar; MODEL_CARD
        "Speed"). Frozen objects are still freed when nothing refers to them; only reference
        cycles among them are never collected."""
        gc.freeze()
        self._deliver(prepared)

    def _run(self) -> None:
        while not self._stop.is_set():
            request = self._requests.take(timeout=0.2)
            if request is None:
                continue
            path = request.path
            try:
                target = _resolve(request)
                geometric = self._geometric(request, target)
            except VisageError as err:  # no face, damaged file...: the user's to fix
                log.warning("portrait refused: %s", err)
                self._emit(PortraitRefused(path, str(err), request.profile))
                continue
            except Exception as err:  # the worker loop's boundary
                log.exception("loading %s failed", path)
                fault = EngineFault.of("portrait loader", err)
                self._emit(fault)
                self._emit(PortraitRefused(path, fault.message, request.profile))
                continue
            self._hand_over(geometric)
            if self.options.networks and not self._overtaken():
                self._upgrade(geometric, target)

    def _overtaken(self) -> bool:
        return self._requests.peek() is not None or self._stop.is_set()

    def _geometric(self, request: PortraitRequest, target: _Target) -> Prepared:
        from engine.portrait import prepare_portrait
        from engine.runtime.pipeline import Pipeline

        portrait = prepare_portrait(target.image, output_size=self.options.output_size)
        for note in portrait.notes:
            log.warning("%s", note)
        device, described = _device()
        note = ""
        if self.options.networks:
            whose = "profile's own" if request.profile else f"{_tier(self.options, device)}-tier"
            note = f"preparing the {whose} networks"
        return Prepared(
            pipeline=Pipeline(portrait, self.options.config),
            path=request.path,
            name=target.name or portrait.name,
            notes=portrait.notes,
            device=described,
            compute=GEOMETRIC,
            note=note,
            profile=request.profile,
        )

    def _upgrade(self, geometric: Prepared, target: _Target) -> None:
        """Build the networks' pipeline for the same portrait; failures keep the geometric."""
        try:
            prepared = self._neural(geometric, target)
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
        self._hand_over(prepared)

    def _neural(self, geometric: Prepared, target: _Target) -> Prepared:
        from engine.runtime.neural import load_models
        from engine.runtime.pipeline import Pipeline

        portrait: Portrait = geometric.pipeline.portrait
        device, _ = _device()
        tier = _tier(self.options, device, target)
        models = load_models(tier, target.models or self.options.models, device)
        pipeline = Pipeline(
            portrait, self.options.config, models, device=device, backend=self.options.backend
        )
        assert pipeline.neural is not None
        whose = f" of profile {geometric.name!r}" if geometric.profile else ""
        compute = f"{tier}-tier networks{whose}: {pipeline.neural.backend_summary}"
        return dataclasses.replace(geometric, pipeline=pipeline, compute=compute, note="")


def _resolve(request: PortraitRequest) -> _Target:
    """The image and networks a request stands for (a profile is read here, on the worker)."""
    if not request.profile:
        return _Target(request.path, None, None, "")
    from engine.personalize.profile import load_profile

    info = load_profile(Path(request.path))
    return _Target(str(info.source), info.folder, info.tier, info.name)
