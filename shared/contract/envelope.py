"""The CloudEvents 1.0 envelope every message carries (contract §1).

`parse_event` is the only way a consumer turns bytes into an Event: it checks
the envelope, rejects unknown types, and validates `data` against the type's
model, so a handler never sees an unvalidated payload.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.contract.events import EVENT_DATA_MODELS

from shared.clock import COURT_TZ  # noqa: F401  (re-exported for callers)


class EventError(ValueError):
    """A message that is not a valid contract event; `reason` goes to the dead letter."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class Event(BaseModel):
    """One contract event. `data` is the type's validated pydantic model."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1, max_length=300)
    source: str = Field(min_length=1, max_length=200)
    type: str
    subject: str = Field(min_length=1, max_length=300)
    time: AwareDatetime
    datacontenttype: Literal["application/json"] = "application/json"
    data: BaseModel

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in EVENT_DATA_MODELS:
            raise ValueError(f"unknown event type {value!r}")
        return value

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "specversion": self.specversion,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "subject": self.subject,
            "time": format_time(self.time),
            "datacontenttype": self.datacontenttype,
            "data": self.data.model_dump(mode="json", exclude_none=True),
        }

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json_dict(), ensure_ascii=False, separators=(",", ":")).encode()


def format_time(moment: datetime) -> str:
    """RFC 3339 in the court's zone, e.g. 2021-03-01T09:30:00+08:00."""
    return moment.astimezone(COURT_TZ).isoformat()


class _RawEnvelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, max_length=300)
    source: str = Field(min_length=1, max_length=200)
    type: str
    subject: str = Field(min_length=1, max_length=300)
    time: AwareDatetime
    datacontenttype: Literal["application/json"]
    data: dict[str, Any]


def _describe(exc: ValidationError, prefix: str = "") -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{prefix}{loc}: {err['msg']}" if loc else f"{prefix}{err['msg']}")
    return "; ".join(parts)


def parse_event(raw: bytes | str) -> Event:
    """Bytes from a topic → a validated Event, or EventError with a readable reason."""
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventError(f"not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise EventError("not a JSON object")
    try:
        envelope = _RawEnvelope.model_validate(obj)
    except ValidationError as exc:
        raise EventError(f"bad envelope: {_describe(exc)}") from exc
    model = EVENT_DATA_MODELS.get(envelope.type)
    if model is None:
        raise EventError(f"unknown event type {envelope.type!r}")
    try:
        data = model.model_validate(envelope.data)
    except ValidationError as exc:
        raise EventError(f"bad data for {envelope.type}: {_describe(exc, 'data.')}") from exc
    return Event(
        id=envelope.id, source=envelope.source, type=envelope.type,
        subject=envelope.subject, time=envelope.time, data=data,
    )


def make_event(
    *, type: str, subject: str, time: datetime, data: BaseModel | dict[str, Any],
    source: str, id: str,
) -> Event:
    """Build an Event, validating `data` against its type's model."""
    model = EVENT_DATA_MODELS.get(type)
    if model is None:
        raise EventError(f"unknown event type {type!r}")
    if isinstance(data, dict):
        try:
            data = model.model_validate(data)
        except ValidationError as exc:
            raise EventError(f"bad data for {type}: {_describe(exc, 'data.')}") from exc
    elif not isinstance(data, model):
        raise EventError(f"data for {type} must be {model.__name__}, not {data.__class__.__name__}")
    return Event(id=id, source=source, type=type, subject=subject, time=time, data=data)
