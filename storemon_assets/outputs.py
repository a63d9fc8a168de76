"""Where the CLI and the runs write their files: what an output path is."""

from __future__ import annotations

import stat
from pathlib import Path


def written_in_place(target: Path) -> bool:
    """Whether `target` is something other than a regular file (/dev/null, a pipe, a terminal).
    Such a target is written straight into: an atomic write's rename of a temporary file over it
    would replace the device or pipe itself (`--out /dev/null` run as root left a regular file
    at /dev/null)."""
    try:
        return not stat.S_ISREG(target.stat().st_mode)
    except FileNotFoundError:
        return False
