"""What pages show of deferral: an instance's trigger, and the banner when no triggerer is alive."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dagsapp.secrets import mask_secrets
from dagsapp.triggers import decode_value
from runs.models import Job, TaskInstance, Trigger
from runs.web.health import deferred_without_triggerer, triggerer_heartbeat

__all__ = ["DeferralDetails", "deferral_details", "deferred_without_triggerer"]


@dataclass(frozen=True)
class DeferralDetails:
    classpath: str | None
    kwargs: Any
    next_method: str | None
    next_kwargs: Any
    timeout: datetime | None
    triggerer: str | None
    created: datetime | None


def _shown(value: Any) -> Any:
    # Secret-looking keys (password, token, ...) are masked, as in rendered fields (dagsapp/secrets.py).
    return mask_secrets(_json_safe(decode_value(value)), set())


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def deferral_details(ti: TaskInstance) -> DeferralDetails | None:
    """The instance's trigger (class, kwargs masked, triggerer), next method and timeout; None when
    it never deferred."""
    if ti.trigger_id is None and not ti.next_method:
        return None
    trigger = Trigger.objects.filter(pk=ti.trigger_id).values("classpath", "kwargs", "triggerer_id", "created_date").first() \
        if ti.trigger_id is not None else None
    triggerer = None
    if trigger is not None and trigger["triggerer_id"] is not None:
        job = Job.objects.filter(pk=trigger["triggerer_id"]).values("pk", "hostname", "pid").first()
        if job is not None:
            alive = triggerer_heartbeat().alive
            triggerer = f"triggerer {job['pk']} on {job['hostname']} (pid {job['pid']})" + ("" if alive else ", no heartbeat")
    elif trigger is not None:
        triggerer = "waiting for a triggerer to take it"
    return DeferralDetails(
        classpath=trigger["classpath"] if trigger else None, kwargs=_shown(trigger["kwargs"]) if trigger else None,
        next_method=ti.next_method, next_kwargs=_shown(ti.next_kwargs) if ti.next_kwargs else None, timeout=ti.trigger_timeout,
        triggerer=triggerer, created=trigger["created_date"] if trigger else None)
