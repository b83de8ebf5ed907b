"""What a handler decides for one batch: database writes, events to emit, rejections, deferrals.

The runtime stores all of it in one transaction with the batch's inbox ids,
so an event's effects and the record that it was handled never part.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from shared.contract.envelope import Event
from shared.topics import Topic


@dataclass
class Effects:
    writes: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    emitted: list[tuple[Topic, Event]] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)
    deferred: set[str] = field(default_factory=set)
    again: bool = False

    def write(self, collection: str, *ops: Any) -> None:
        """pymongo write ops (InsertOne, UpdateOne, ReplaceOne, ...) for `collection`."""
        self.writes[collection].extend(ops)

    def emit(self, topic: Topic, event: Event) -> None:
        if not topic.carries(event.type):
            raise ValueError(f"{event.type} does not travel on {topic.suffix}")
        self.emitted.append((topic, event))

    def reject(self, event: Event, reason: str) -> None:
        """Send this (valid but impossible) event to the dead-letter topic instead of applying it."""
        self.rejected[event.id] = reason

    def defer(self, event: Event) -> None:
        """Not yet: the runtime offers this event again with the next batch (before the new ones),
        does not record it as handled and does not commit its offset (a restart reads it again)."""
        self.deferred.add(event.id)

    def come_back(self) -> None:
        """More work is due without new input (a paged backlog of deadlines): the runtime runs the
        handler again with no events as soon as nothing new arrives, instead of waiting for a message."""
        self.again = True
