"""Entry point of the frozen app (build.spec): the `visage` command, as pip installs it
(pyproject's [project.scripts]: the window when given no subcommand, else the engine's CLI)."""

from __future__ import annotations

import multiprocessing
import sys

from app.launcher import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child process must not rerun the command
    sys.exit(main())
