"""Liveness and readiness: /healthz says the process runs, /readyz that it can serve."""
from __future__ import annotations

from shared.metrics import READY


class Health:
    """Named readiness checks; ready when every registered check holds."""

    def __init__(self, service: str):
        self._service = service
        self._checks: dict[str, bool] = {}

    def register(self, name: str) -> None:
        self._checks.setdefault(name, False)

    def set(self, name: str, ok: bool) -> None:
        self._checks[name] = ok
        READY.labels(self._service).set(1 if self.ready else 0)

    @property
    def ready(self) -> bool:
        return all(self._checks.values())

    def report(self) -> dict[str, bool]:
        return dict(self._checks)
