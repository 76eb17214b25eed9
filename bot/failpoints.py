"""Named crash points for the crash-safety tests (test-only; inert unless configured).

`hit(name)` kills the current process with SIGKILL when `name` was configured, so a test can stop
Greenlight at an exact point (e.g. after Choppity answered but before the database commit) and
then prove that a restarted process finishes the work exactly once. In production the set is
empty and `hit` is a set lookup.
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterable

log = logging.getLogger(__name__)

_armed: frozenset[str] = frozenset()


def configure(names: Iterable[str]) -> None:
    """Arm exactly these failpoints (replacing any armed before)."""
    global _armed
    _armed = frozenset(n for n in names if n)
    if _armed:
        log.warning("failpoints armed (test-only): %s", ", ".join(sorted(_armed)))


def armed() -> frozenset[str]:
    """The failpoints currently armed."""
    return _armed


def hit(name: str) -> None:
    """SIGKILL this process if the failpoint `name` is armed; otherwise do nothing."""
    if name in _armed:
        log.warning("failpoint %s hit: killing process %s", name, os.getpid())
        for handler in logging.getLogger().handlers:
            handler.flush()
        os.kill(os.getpid(), signal.SIGKILL)
