"""intake's one consumer: the team each case was triaged to (繁简分流 decisions).

Intake needs it only to enforce a case handler's own-team scope on its API.
The latest revision wins; a replayed or older decision changes nothing.
"""
from __future__ import annotations

from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from shared.contract.envelope import Event
from shared.runtime.effects import Effects
from shared.runtime.mongo import find_in

TEAMS = "case_teams"


def latest_teams(current: dict[str, dict], events: list[Event]) -> dict[str, dict]:
    """Pure: the team document per case after these decisions (only the changed ones)."""
    changed: dict[str, dict] = {}
    for event in events:
        data = event.data
        known = changed.get(data.case_no) or current.get(data.case_no)
        if known is None or data.revision > known["revision"]:
            changed[data.case_no] = {"_id": data.case_no, "team": data.team, "track": data.track,
                                     "revision": data.revision}
    return changed


class TeamHandler:
    def __init__(self, db: AsyncDatabase):
        self.collection = db[TEAMS]

    async def handle(self, events: list[Event], effects: Effects) -> None:
        decisions = [e for e in events if e.type == "triage.decided"]
        case_nos = list({e.data.case_no for e in decisions})
        current = {d["_id"]: d for d in await find_in(self.collection, "_id", case_nos)}
        for doc in latest_teams(current, decisions).values():
            effects.write(TEAMS, ReplaceOne({"_id": doc["_id"]}, doc, upsert=True))
