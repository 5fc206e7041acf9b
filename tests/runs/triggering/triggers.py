"""Triggers for the tests, importable by a triggerer subprocess (``tests.runs.triggering.triggers``)."""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

from dagsapp.triggers import BaseTrigger, TriggerEvent

log = logging.getLogger(__name__)


class EchoTrigger(BaseTrigger):
    """Logs and prints, waits ``seconds``, then fires with ``payload``."""

    def __init__(self, payload: Any = None, seconds: float = 0.0) -> None:
        super().__init__()
        self.payload = payload
        self.seconds = seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "tests.runs.triggering.triggers.EchoTrigger", {"payload": self.payload, "seconds": self.seconds}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        log.info("echo trigger waiting %s s", self.seconds)
        print("printed by the trigger")
        await asyncio.sleep(self.seconds)
        yield TriggerEvent(self.payload)


class FailingTrigger(BaseTrigger):
    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "tests.runs.triggering.triggers.FailingTrigger", {}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await asyncio.sleep(0.01)
        raise RuntimeError("the partner API said no")
        yield TriggerEvent(None)


class SilentTrigger(BaseTrigger):
    """Ends without an event."""

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "tests.runs.triggering.triggers.SilentTrigger", {}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        return
        yield TriggerEvent(None)


class BlockingTrigger(BaseTrigger):
    """Blocks the event loop with time.sleep (a mistake the triggerer must name)."""

    def __init__(self, seconds: float = 0.5) -> None:
        super().__init__()
        self.seconds = seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "tests.runs.triggering.triggers.BlockingTrigger", {"seconds": self.seconds}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        time.sleep(self.seconds)
        yield TriggerEvent("woke")


class ForeverTrigger(BaseTrigger):
    def serialize(self) -> tuple[str, dict[str, Any]]:
        return "tests.runs.triggering.triggers.ForeverTrigger", {}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            await asyncio.sleep(3600)
        yield TriggerEvent(None)
