"""`python -m app`: the Visage window (see app.launcher.app_main for the options)."""

from __future__ import annotations

import sys

from app.launcher import app_main

if __name__ == "__main__":
    sys.exit(app_main())
