"""The user's personalized profiles, listed, renamed and deleted on a worker thread.

The file work (and the profile code, which imports torch) never runs on the caller's thread:
each command is queued and answered through the callback, from the worker, with
ProfilesChanged (the whole list, oldest first) or, when it failed, ProfileActionFailed and then
ProfilesChanged. Commands run in the order given.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from engine.errors import VisageError
from engine.paths import profiles_dir

if TYPE_CHECKING:
    from engine.personalize.profile import ProfileInfo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProfilesChanged:
    """root: the profiles folder. profiles: every readable profile in it, oldest first."""

    root: str
    profiles: tuple[ProfileInfo, ...]


@dataclass(frozen=True)
class ProfileActionFailed:
    """action: "rename" or "delete" (or "list"). message: the cause, for the user."""

    action: str
    folder: str
    message: str


ProfileEvent = ProfilesChanged | ProfileActionFailed


@dataclass(frozen=True)
class _Command:
    action: str
    folder: str = ""
    name: str = ""


_STOP = _Command("stop")


class ProfileLibrary:
    """root: the profiles folder (None: engine.paths.profiles_dir(), read when started)."""

    def __init__(self, emit: Callable[[ProfileEvent], None], root: Path | None = None) -> None:
        self._emit_to = emit
        self._root = root
        self._commands: queue.Queue[_Command] = queue.Queue()
        self._thread: threading.Thread | None = None

    @property
    def root(self) -> Path:
        return self._root if self._root is not None else profiles_dir()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="visage-profiles", daemon=True)
        self._thread.start()

    def stop(self, wait_s: float = 2.0) -> None:
        self._commands.put(_STOP)
        if self._thread is not None:
            self._thread.join(wait_s)

    def refresh(self) -> None:
        """List the profiles again (e.g. after a new one was saved)."""
        self._commands.put(_Command("list"))

    def rename(self, folder: str | Path, name: str) -> None:
        """Give a profile a new display name (its folder stays)."""
        self._commands.put(_Command("rename", str(folder), name))

    def delete(self, folder: str | Path) -> None:
        self._commands.put(_Command("delete", str(folder)))

    def _run(self) -> None:
        while True:
            command = self._commands.get()
            if command is _STOP:
                return
            try:
                self._do(command)
            except VisageError as err:  # the worker's boundary: a message for the user
                log.warning("profile %s failed: %s", command.action, err)
                self._emit(ProfileActionFailed(command.action, command.folder, str(err)))
            except Exception as err:  # the worker's boundary: report the cause, carry on
                log.exception("profile %s failed", command.action)
                message = f"{type(err).__name__}: {err}"
                self._emit(ProfileActionFailed(command.action, command.folder, message))
            try:
                self._list()
            except Exception as err:  # the worker's boundary
                log.exception("listing the profiles failed")
                self._emit(ProfileActionFailed("list", "", f"{type(err).__name__}: {err}"))

    def _do(self, command: _Command) -> None:
        from engine.personalize.profile import delete_profile, rename_profile

        if command.action == "rename":
            info = rename_profile(Path(command.folder), command.name)
            log.info("renamed profile %s to %r", info.folder.name, info.name)
        elif command.action == "delete":
            delete_profile(Path(command.folder))
            log.info("deleted profile %s", command.folder)

    def _list(self) -> None:
        from engine.personalize.profile import list_profiles

        root = self.root
        self._emit(ProfilesChanged(str(root), tuple(list_profiles(root))))

    def _emit(self, event: ProfileEvent) -> None:
        try:
            self._emit_to(event)
        except Exception:  # the owner's callback must not take the worker down
            log.exception("event handler failed on %s", type(event).__name__)
