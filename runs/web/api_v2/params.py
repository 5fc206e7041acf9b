"""Query parameters shared by the list endpoints: limit/offset, order_by, date and number ranges."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar

from django.conf import settings
from django.db.models import F, Model, OrderBy, Q, QuerySet
from ninja import Schema
from ninja.errors import HttpError
from pydantic import Field, ValidationInfo, field_validator

M = TypeVar("M", bound=Model)


class Page(Schema):
    limit: int = Field(50, ge=0)
    offset: int = Field(0, ge=0)

    @field_validator("limit", "offset", mode="before")
    @classmethod
    def _empty_is_default(cls, value: object, info: ValidationInfo) -> object:
        # airflowctl sends ``limit=`` when its --limit is not given: the default, not a 422.
        return cls.model_fields[str(info.field_name)].default if value == "" else value

    def slice(self, qs: QuerySet[M]) -> list[M]:
        # Airflow clamps a larger limit to its maximum page size rather than refusing it.
        limit = min(self.limit, settings.API_MAXIMUM_PAGE_LIMIT)
        return list(qs[self.offset : self.offset + limit])


class DateRanges(Schema):
    """``<field>_gte`` / ``_gt`` / ``_lte`` / ``_lt`` on the dates every list of runs and instances has."""

    start_date_gte: datetime | None = None
    start_date_gt: datetime | None = None
    start_date_lte: datetime | None = None
    start_date_lt: datetime | None = None
    end_date_gte: datetime | None = None
    end_date_gt: datetime | None = None
    end_date_lte: datetime | None = None
    end_date_lt: datetime | None = None
    logical_date_gte: datetime | None = None
    logical_date_gt: datetime | None = None
    logical_date_lte: datetime | None = None
    logical_date_lt: datetime | None = None
    run_after_gte: datetime | None = None
    run_after_gt: datetime | None = None
    run_after_lte: datetime | None = None
    run_after_lt: datetime | None = None
    updated_at_gte: datetime | None = None
    updated_at_gt: datetime | None = None
    updated_at_lte: datetime | None = None
    updated_at_lt: datetime | None = None
    duration_gte: float | None = None
    duration_gt: float | None = None
    duration_lte: float | None = None
    duration_lt: float | None = None


RANGE_OPS = ("gte", "gt", "lte", "lt")


def range_filter(params: Schema, columns: Mapping[str, str | None]) -> Q:
    """The Q of every range parameter given; ``columns`` maps a parameter's field to a column
    (None: the field has no column here, and a bound on it matches nothing but is not an error)."""
    q = Q()
    values: dict[str, Any] = params.dict()
    for name, column in columns.items():
        for op in RANGE_OPS:
            value = values.get(f"{name}_{op}")
            if value is None:
                continue
            q &= Q(**{f"{column}__{op}": value}) if column else Q(pk__in=[])
    return q


def ordering(order_by: Sequence[str] | None, allowed: Mapping[str, str], *, default: str, tiebreak: str = "id") -> list[OrderBy]:
    """``order_by`` values such as ``map_index`` or ``-duration`` as ORDER BY terms, then
    ``tiebreak`` (descending when the first term is) so that pages never overlap; 400 for an
    unknown field. As Airflow sorts on PostgreSQL: plain ASC/DESC, so nulls come last ascending
    and first descending, and a page ordered by an indexed column reads the index in order."""
    values = [v for v in (order_by or []) if v] or [default]
    terms: list[OrderBy] = []
    for raw in values:
        name = raw.removeprefix("-")
        column = allowed.get(name)
        if column is None:
            raise HttpError(400, f"Ordering with '{name}' is disallowed or the attribute does not exist on the model")
        terms.append(F(column).desc() if raw.startswith("-") else F(column).asc())
    terms.append(F(tiebreak).desc() if values[0].startswith("-") else F(tiebreak).asc())
    return terms


def like_pattern(value: str | None, column: str, *, prefix: bool = False) -> Q:
    """Airflow's ``*_pattern`` (SQL LIKE with % and _, case-insensitive) and ``*_prefix_pattern``."""
    if not value:
        return Q()
    if prefix:
        return Q(**{f"{column}__istartswith": value})
    return Q(**{f"{column}__iregex": _like_to_regex(value)})


def _like_to_regex(pattern: str) -> str:
    # Airflow wraps the value in %...%: it matches anywhere, so the regex is not anchored.
    return "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
