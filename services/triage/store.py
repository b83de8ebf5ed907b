"""triage's MongoDB state: one document per case, one counts document per team, the watermark.

- `cases`: {_id: case_no, filing, assets, results, network_at, early, closed_at,
  decisions: [...], team, track} — everything rules.py needs, and the decision
  history the API shows.
- `teams`: {_id: team, track, open, settled, pending: [{at, delta}]} — open cases live,
  as of the watermark, and the changes timed after it (rules.TeamBook).
- `meta`: {_id: "watermark", now}.

Times are stored as RFC 3339 text in the court's zone, not as BSON dates: BSON keeps
milliseconds only, and a decision's `decided_at` must be spelled the same whether it
was computed from a fresh event or from a stored one (replays compare the bytes).
All writes go through `Effects` (one transaction per batch); this module only builds
the write operations and reads.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pymongo import ASCENDING, ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from services.triage.policy import TriagePolicy
from services.triage.rules import Asset, CaseState, Decision, Filing, Inquiry, TeamBook, TeamChange, court_time
from shared.contract.types import format_money
from shared.ids import derived_id
from shared.runtime.mongo import find_in

CASES = "cases"
TEAMS = "teams"
META = "meta"
WATERMARK_ID = "watermark"


def decision_id(decision: Decision) -> str:
    """triage:<case_no>:<policy_version>:<revision> — a replay produces the same id."""
    return derived_id("triage", decision.case_no, decision.policy_version, decision.revision)


def _time(moment: datetime | None) -> str | None:
    return court_time(moment).isoformat() if moment is not None else None


def _parse_time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


def _asset_doc(asset: Asset) -> dict[str, Any]:
    return {"ref": asset.ref, "kind": asset.kind, "value": format_money(asset.value), "controllable": asset.controllable}


def _asset(doc: dict[str, Any]) -> Asset:
    return Asset(doc["ref"], doc["kind"], Decimal(doc["value"]), doc["controllable"])


def decision_doc(decision: Decision) -> dict[str, Any]:
    return {
        "id": decision_id(decision), "revision": decision.revision, "track": decision.track,
        "reasons": list(decision.reasons), "team": decision.team, "decided_at": _time(decision.decided_at),
        "policy_version": decision.policy_version,
    }


def case_doc(state: CaseState) -> dict[str, Any]:
    filing = state.filing
    current = state.current
    return {
        "_id": state.case_no,
        "filing": None if filing is None else {
            "case_type": filing.case_type, "target_amount": format_money(filing.target_amount),
            "respondents": filing.respondents, "at": _time(filing.at),
        },
        "assets": [_asset_doc(a) for a in state.assets],
        "results": state.results,
        "network_at": _time(state.network_at),
        "early": [{"channel": i.channel, "at": _time(i.at), "assets": [_asset_doc(a) for a in i.assets]}
                  for i in state.early],
        "closed_at": _time(state.closed_at),
        "decisions": [decision_doc(d) for d in state.decisions],
        # Copies of the current decision, for queries and the API's team check.
        "team": current.team if current else None,
        "track": current.track if current else None,
    }


def case_state(doc: dict[str, Any]) -> CaseState:
    filing = doc.get("filing")
    return CaseState(
        case_no=doc["_id"],
        filing=None if filing is None else Filing(
            filing["case_type"], Decimal(filing["target_amount"]), filing["respondents"], _parse_time(filing["at"])),
        assets=tuple(_asset(a) for a in doc.get("assets", [])),
        results=doc.get("results", 0),
        network_at=_parse_time(doc.get("network_at")),
        early=tuple(Inquiry(i["channel"], _parse_time(i["at"]), tuple(_asset(a) for a in i["assets"]))
                    for i in doc.get("early", [])),
        closed_at=_parse_time(doc.get("closed_at")),
        decisions=tuple(
            Decision(doc["_id"], d["revision"], d["track"], tuple(d["reasons"]), d["team"],
                     _parse_time(d["decided_at"]), d["policy_version"])
            for d in doc.get("decisions", [])),
    )


class TriageStore:
    def __init__(self, db: AsyncDatabase, policy: TriagePolicy):
        self.db = db
        self.policy = policy
        self._stored_tracks: dict[str, str | None] = {}  # teams of an earlier policy keep their track

    async def ensure_indexes(self) -> None:
        await self.db[CASES].create_index([("team", ASCENDING)])

    # ---------------------------------------------------------------- the handler's reads

    async def load_cases(self, case_nos: set[str]) -> dict[str, CaseState]:
        if not case_nos:
            return {}
        return {doc["_id"]: case_state(doc) for doc in await find_in(self.db[CASES], "_id", case_nos)}

    async def load_book(self) -> TeamBook:
        docs = [doc async for doc in self.db[TEAMS].find({})]
        self._stored_tracks.update({doc["_id"]: doc.get("track") for doc in docs})
        meta = await self.db[META].find_one({"_id": WATERMARK_ID})
        pending = sorted(
            (TeamChange(doc["_id"], change["delta"], _parse_time(change["at"]))
             for doc in docs for change in doc.get("pending", [])),
            key=lambda c: (c.at, c.team, c.delta),
        )
        return TeamBook(
            open={doc["_id"]: doc.get("open", 0) for doc in docs},
            settled={doc["_id"]: doc.get("settled", 0) for doc in docs},
            pending=tuple(pending),
            watermark=_parse_time(meta["now"]) if meta else None,
        )

    # ---------------------------------------------------------------- write operations

    def case_write(self, state: CaseState) -> ReplaceOne:
        return ReplaceOne({"_id": state.case_no}, case_doc(state), upsert=True)

    def book_writes(self, before: TeamBook, after: TeamBook) -> tuple[list[ReplaceOne], list[ReplaceOne]]:
        """(team writes, meta writes) for what changed between two books."""
        tracks = {**self._stored_tracks, **{team: track for team, track in self.policy.all_teams}}
        team_ops = []
        for team in sorted(set(after.open) | set(after.settled) | {c.team for c in after.pending}):
            doc = self._team_doc(after, team, tracks.get(team))
            if doc != self._team_doc(before, team, tracks.get(team)):
                team_ops.append(ReplaceOne({"_id": team}, doc, upsert=True))
        meta_ops = []
        if after.watermark != before.watermark:
            meta_ops.append(ReplaceOne({"_id": WATERMARK_ID}, {"_id": WATERMARK_ID, "now": _time(after.watermark)},
                                       upsert=True))
        return team_ops, meta_ops

    @staticmethod
    def _team_doc(book: TeamBook, team: str, track: str | None) -> dict[str, Any]:
        return {
            "_id": team, "track": track, "open": book.open.get(team, 0), "settled": book.settled.get(team, 0),
            "pending": [{"at": _time(c.at), "delta": c.delta} for c in book.pending if c.team == team],
        }

    # ---------------------------------------------------------------- the API's reads

    async def case(self, case_no: str) -> dict[str, Any] | None:
        return await self.db[CASES].find_one({"_id": case_no})

    async def teams(self) -> tuple[list[dict[str, Any]], str | None]:
        stored = {doc["_id"]: doc async for doc in self.db[TEAMS].find({})}
        meta = await self.db[META].find_one({"_id": WATERMARK_ID})
        rows = []
        for team, track in self.policy.all_teams:
            doc = stored.pop(team, {})
            rows.append({"team": team, "track": track, "in_policy": True, "open_cases": doc.get("open", 0),
                         "open_cases_at_watermark": doc.get("settled", 0)})
        for team, doc in sorted(stored.items()):  # teams of an earlier policy that still hold cases
            rows.append({"team": team, "track": doc.get("track"), "in_policy": False,
                         "open_cases": doc.get("open", 0), "open_cases_at_watermark": doc.get("settled", 0)})
        return rows, meta["now"] if meta else None
