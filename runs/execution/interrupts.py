"""Stopping a try whose instance was taken away (cleared, marked, declared dead) while it runs.

The heartbeat thread finds out; only the main thread can stop the task, so it is sent a signal
whose handler raises in the task's code.
"""
from __future__ import annotations

import os
import signal
from collections.abc import Callable
from typing import Any

INTERRUPT_SIGNAL = signal.SIGUSR2


class TaskInstanceTakenAway(BaseException):
    """Raised in the task's thread when its heartbeat finds the try taken away from it."""


# The try this process is running, and tries found taken away. The handler stays installed for
# the life of the process and acts only on the try running now: a late signal is harmless.
_current_try: tuple[int, int] | None = None
_lost_tries: set[tuple[int, int]] = set()
_handler_installed = False


def _on_interrupt(signum: int, frame: Any) -> None:
    if _current_try is not None and _current_try in _lost_tries:
        raise TaskInstanceTakenAway()


def watch_try(key: tuple[int, int]) -> Callable[[], None] | None:
    """Start watching a try; returns the callback its heartbeat calls when it is taken away."""
    global _current_try, _handler_installed
    import threading

    if threading.current_thread() is not threading.main_thread():
        return None  # signals reach only the main thread; such a try is not interrupted
    if not _handler_installed:
        signal.signal(INTERRUPT_SIGNAL, _on_interrupt)
        _handler_installed = True
    _current_try = key

    def on_lost() -> None:
        _lost_tries.add(key)
        os.kill(os.getpid(), INTERRUPT_SIGNAL)

    return on_lost


def unwatch_try() -> None:
    global _current_try
    _current_try = None
    _lost_tries.clear()
