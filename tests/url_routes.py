"""Every URL the site answers, walked from Django's resolver with its whole route (the REST API's
``api/v2/`` prefix included), for the tests that try each one: login, CSRF, hostile ids, safe methods."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from django.urls import URLResolver, get_resolver


def is_api(name: str) -> bool:
    """Airflow's REST API v2 and its token endpoint: JSON, a token or the session, 401 without."""
    return name.startswith(("api_v2:", "api_auth:"))


@dataclass(frozen=True)
class Route:
    name: str  # "runs:grid", "api_v2:get_dag", "favicon"
    route: str  # from the site's root: "api/v2/dags/<dag_id>"
    converters: tuple[str, ...]  # the ids it takes, by name

    @property
    def is_api(self) -> bool:
        return is_api(self.name)

    def url(self, values: dict[str, str]) -> str:
        """The URL with each id replaced by the given raw text, quoted as a browser would."""
        out = self.route
        for name in self.converters:
            out = re.sub(rf"<(?:\w+:)?{name}>", lambda m, name=name: quote(values[name], safe=""), out)
        return "/" + out


def site_routes(resolver: URLResolver | None = None, route: str = "", namespace: str = "") -> list[Route]:
    """Every route but Django's admin (users and roles, the audit log read-only: tests/runs/test_admin.py),
    which asks for a staff login of its own."""
    out: list[Route] = []
    for p in (resolver or get_resolver()).url_patterns:
        if isinstance(p, URLResolver):
            if p.namespace != "admin":
                out += site_routes(p, route + str(p.pattern), p.namespace or namespace)
        else:
            out.append(Route(f"{namespace}:{p.name}" if namespace else str(p.name), route + str(p.pattern),
                             tuple(p.pattern.converters)))
    return out
