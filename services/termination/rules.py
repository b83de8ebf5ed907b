"""Pure decisions of termination (终本审查与动态管理), rules.md §5: no database, no broker, no wall clock.

`review_case(policy, case, stage, stage_date)` runs the checklist on a case's state and says,
per item, whether it holds and which event(s) satisfied it (the evidence the API shows).

`TerminationRules.apply(case, event, ledger, effects)` applies one event to the case's state
(a plain dict the handler stores) and to its deadlines and alerts (the batch's DeadlineBatch,
in memory); reviews, restore suggestions and alerts go into `effects`, and the review documents
to store are returned.

What is judged when:
- A review judges the facts dated on or before the stage's date (proposed_on / closed_on, to the
  end of that local day): what the record held when the proposal or closure was made. A case
  whose filing has not been read yet keeps the review pending and runs it when the filing
  arrives (contract §1: cope with any order).
- The re-check (终本规定 第9条) follows a terminated_current closure: for `restore.window` a
  property clue, or an inquiry result with a controllable asset of value above the threshold,
  timed after the closure, suggests restoring enforcement; ten six-monthly `termination.recheck`
  deadlines await a network inquiry result timed inside their period. Facts are timed by their
  data (reported_at, returned_at, done_at), never by when they were read.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from services.termination.policy import PROPERTY_FOUND, RECHECK, UNQUALIFIED, TerminationPolicy
from shared.alerts import court_iso
from shared.calendar import CourtCalendar
from shared.contract.envelope import COURT_TZ, Event, make_event
from shared.contract.types import format_money
from shared.deadline_book import FINISHED, Deadline, DeadlineBatch, ms
from shared.deadlines import Period, add_months, due_at, end_of_day, warn_at
from shared.ids import derived_id
from shared.runtime.effects import Effects
from shared.topics import TERMINATION_EVENTS

SOURCE = "ecc/termination"
STAGES: tuple[str, ...] = ("proposed", "closed")
STAGE_ZH = {"proposed": "拟终本审查", "closed": "终本结案审查"}
CHECKLIST_NODES = frozenset({
    "notice_served", "property_report_order_served", "consumption_restricted", "network_inquiry_launched",
    "traditional_inquiry_done", "clue_verified", "property_controlled", "disposal_concluded",
    "applicant_interviewed",
})
NODE_FOR_ITEM = {
    "notice": "notice_served", "report_order": "property_report_order_served",
    "consumption_restricted": "consumption_restricted", "traditional_inquiry": "traditional_inquiry_done",
    "applicant_interviewed": "applicant_interviewed",
}
CLOSURE_ZH = {
    "performed": "执行完毕", "terminated_current": "终结本次执行程序", "terminated": "终结执行",
    "rejected": "驳回申请", "not_enforced": "不予执行", "withdrawn": "销案",
}
ASSET_ZH = {"deposit": "存款", "real_estate": "不动产", "vehicle": "车辆", "equity": "股权",
            "securities": "证券", "other": "其他财产"}
REPORTER_ZH = {"applicant": "申请执行人提供", "platform_bulk_query": "执行指挥平台统查", "other": "其他来源"}
TRIGGER_REF_MAX = 120  # keeps every derived id within the envelope's 300 characters


def new_case(case_no: str) -> dict[str, Any]:
    """The state termination keeps per case (collection `cases`)."""
    return {
        "_id": case_no, "case_type": None, "court_code": None, "filed_on": None, "filed_event": None,
        "nodes": [], "inquiries": [], "clues": [], "teams": [], "team": None, "closed": None, "resumed": None,
        "recheck": None, "reviews": {"proposed": 0, "closed": 0}, "pending_reviews": [],
        "latest": {"proposed": None, "closed": None}, "suggestions": [],
    }


def local_text(moment: datetime) -> str:
    return moment.astimezone(COURT_TZ).strftime("%Y-%m-%d %H:%M")


def trigger_ref(event_id: str) -> str:
    """The trigger event id as it goes into alert ids (no whitespace; very long ids hashed)."""
    ref = re.sub(r"\s+", "_", event_id.strip())
    if len(ref) > TRIGGER_REF_MAX:
        ref = "sha1-" + hashlib.sha1(event_id.encode(), usedforsecurity=False).hexdigest()
    return ref


def end_of_date(day: date) -> datetime:
    return ms(end_of_day(day))


def _evidence(kind: str, fact: dict[str, Any], what: str) -> dict[str, Any]:
    return {"event_id": fact["event_id"], "type": kind, "at": court_iso(fact["at"]), "what": what}


def _date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


# -- the checklist (rules.md §5) ---------------------------------------------------------


@dataclass(frozen=True)
class ItemResult:
    code: str
    name_zh: str
    required: bool
    passed: bool
    note: str
    evidence: list[dict[str, Any]] = field(default_factory=list)

    def as_doc(self) -> dict[str, Any]:
        return {"code": self.code, "name_zh": self.name_zh, "required": self.required, "passed": self.passed,
                "note": self.note, "evidence": self.evidence}


@dataclass(frozen=True)
class Review:
    stage: str
    stage_date: date
    items: tuple[ItemResult, ...]

    @property
    def missing(self) -> list[str]:
        return [i.code for i in self.items if i.required and not i.passed]

    @property
    def passed(self) -> bool:
        return not self.missing


class _Facts:
    """The case's facts dated on or before the review's cutoff, oldest first."""

    def __init__(self, case: dict[str, Any], cutoff: datetime, threshold: Decimal):
        self.nodes = sorted((n for n in case["nodes"] if n["at"] <= cutoff), key=lambda n: (n["at"], n["event_id"]))
        self.inquiries = sorted((i for i in case["inquiries"] if i["at"] <= cutoff),
                                key=lambda i: (i["at"], i["event_id"]))
        self.clues = sorted((c for c in case["clues"] if c["at"] <= cutoff), key=lambda c: (c["at"], c["event_id"]))
        self.threshold = threshold

    def node(self, code: str, ref: str | None = None) -> dict[str, Any] | None:
        for fact in self.nodes:
            if fact["node"] == code and (ref is None or fact.get("ref") == ref):
                return fact
        return None

    def of_node(self, code: str) -> list[dict[str, Any]]:
        return [n for n in self.nodes if n["node"] == code]


def _node_item(facts: _Facts, code: str) -> tuple[bool, str, list[dict[str, Any]]]:
    node = NODE_FOR_ITEM[code]
    fact = facts.node(node)
    if fact is None:
        return False, f"无{NODE_ZH[node]}记录", []
    return True, f"{NODE_ZH[node]}：{local_text(fact['at'])}", [_evidence("node.completed", fact, node)]


def _network_inquiry(facts: _Facts) -> tuple[bool, str, list[dict[str, Any]]]:
    launches = facts.of_node("network_inquiry_launched")
    if not launches:
        return False, "未发起网络查控", []
    network = [i for i in facts.inquiries if i["channel"] == "network"]
    for launch in launches:
        result = next((i for i in network if i["at"] >= launch["at"]), None)
        if result is not None:
            return True, f"{local_text(launch['at'])}发起网络查控，{local_text(result['at'])}返回结果", [
                _evidence("node.completed", launch, "network_inquiry_launched"),
                _evidence("property.inquiry.result", result, "network result"),
            ]
    return False, f"已于{local_text(launches[0]['at'])}发起网络查控，但其后无网络查控结果", [
        _evidence("node.completed", launches[0], "network_inquiry_launched")]


def _clues_verified(facts: _Facts) -> tuple[bool, str, list[dict[str, Any]]]:
    if not facts.clues:
        return True, "无登记的财产线索", []
    evidence, unverified = [], []
    for clue in facts.clues:
        check = facts.node("clue_verified", clue["clue_id"])
        if check is None:
            unverified.append(clue["clue_id"])
        else:
            evidence.append(_evidence("node.completed", check, f"clue_verified {clue['clue_id']}"))
    if unverified:
        return False, "未核查的线索：" + "、".join(unverified), evidence
    return True, f"{len(facts.clues)}条线索均已核查", evidence


def countable_assets(assets: list[dict[str, Any]], threshold: Decimal) -> list[dict[str, Any]]:
    return [a for a in assets if a["controllable"] and Decimal(a["value"]) > threshold]


def _property_disposed(facts: _Facts) -> tuple[bool, str, list[dict[str, Any]]]:
    found: dict[str, dict[str, Any]] = {}
    for inquiry in facts.inquiries:
        for asset in countable_assets(inquiry["assets"], facts.threshold):
            found.setdefault(asset["ref"], {**asset, "found_by": inquiry})
    controls = {n["ref"]: n for n in reversed(facts.of_node("property_controlled"))}  # earliest per ref
    refs = sorted(set(found) | set(controls))
    if not refs:
        return True, "未发现可供控制的财产", []
    evidence: list[dict[str, Any]] = []
    uncontrolled = []
    for ref in refs:
        control = controls.get(ref)
        if control is None:
            uncontrolled.append(ref)
        else:
            evidence.append(_evidence("node.completed", control, f"property_controlled {ref}"))
    disposal = facts.node("disposal_concluded")
    if disposal is not None:
        evidence.append(_evidence("node.completed", disposal, "disposal_concluded"))
    problems = []
    if uncontrolled:
        problems.append("未控制的财产：" + "、".join(uncontrolled))
    if disposal is None:
        problems.append("无处置完毕记录")
    if problems:
        return False, "；".join(problems), evidence
    return True, f"{len(refs)}项财产均已控制，处置完毕", evidence


def _min_duration(case: dict[str, Any], period: Period, stage_date: date) -> tuple[bool, str, list[dict[str, Any]]]:
    filed_on = _date(case["filed_on"])
    earliest = add_months(filed_on, period.amount) if period.unit == "months" else \
        date.fromordinal(filed_on.toordinal() + period.amount)
    filing = case["filed_event"]
    evidence = [{"event_id": filing["event_id"], "type": "case.filed", "at": court_iso(filing["at"]),
                 "what": f"filed_on {filed_on.isoformat()}"}]
    if stage_date >= earliest:
        return True, f"立案{filed_on.isoformat()}，至{stage_date.isoformat()}已满{_period_zh(period)}", evidence
    return False, f"立案{filed_on.isoformat()}，最早应于{earliest.isoformat()}终本", evidence


def _period_zh(period: Period) -> str:
    return f"{period.amount}个月" if period.unit == "months" else f"{period.amount}日"


def review_case(policy: TerminationPolicy, case: dict[str, Any], stage: str, stage_date: date) -> Review:
    """The rules.md §5 checklist, in its order, on the facts dated by the end of `stage_date`.

    The case's filing must be known (filed_on); the handler keeps the review pending until it is.
    """
    facts = _Facts(case, end_of_date(stage_date), policy.asset_value_above)
    items = []
    for item in policy.checklist:
        code = item.code
        if code in NODE_FOR_ITEM:
            passed, note, evidence = _node_item(facts, code)
        elif code == "network_inquiry":
            passed, note, evidence = _network_inquiry(facts)
        elif code == "clues_verified":
            passed, note, evidence = _clues_verified(facts)
        elif code == "property_disposed":
            passed, note, evidence = _property_disposed(facts)
        elif code == "min_duration":
            passed, note, evidence = _min_duration(case, policy.min_duration, stage_date)
        else:  # pragma: no cover - the policy refuses unknown codes
            raise ValueError(f"unknown checklist code {code}")
        items.append(ItemResult(code, item.name_zh, item.required, passed, note, evidence))
    return Review(stage, stage_date, tuple(items))


NODE_ZH: dict[str, str] = {
    "notice_served": "执行通知书送达", "property_report_order_served": "报告财产令送达",
    "network_inquiry_launched": "网络查控发起", "traditional_inquiry_done": "传统查控",
    "clue_verified": "财产线索核查", "applicant_interviewed": "约谈申请执行人",
    "consumption_restricted": "限制消费", "property_controlled": "查封/扣押/冻结",
    "disposal_concluded": "处置完毕",
}


# -- the re-check periods -----------------------------------------------------------------


@dataclass(frozen=True)
class RecheckPeriod:
    n: int
    start: datetime   # exclusive: the closure, or the previous period's due
    due: datetime     # inclusive
    warn: datetime | None


def recheck_periods(policy: TerminationPolicy, closed_on: date, closure_at: datetime,
                    calendar: CourtCalendar) -> list[RecheckPeriod]:
    """n = 1..periods: due n·every after the closure date (rules.md §0 arithmetic), each starting at the last."""
    rule = policy.recheck
    trigger = end_of_day(closed_on)
    periods, start = [], ms(closure_at)
    for n in range(1, rule.periods + 1):
        due = ms(due_at(trigger, Period(rule.every.amount * n, rule.every.unit), calendar))
        warn = ms(warn_at(due, rule.warn_before)) if rule.warn_before is not None else None
        periods.append(RecheckPeriod(n, start, due, warn))
        start = due
    return periods


def window_end(policy: TerminationPolicy, closed_on: date) -> datetime:
    """The end of the re-check window: `restore.window` after the closure date (no roll-over)."""
    period = policy.restore.window
    last = add_months(closed_on, period.amount) if period.unit == "months" else \
        date.fromordinal(closed_on.toordinal() + period.amount)
    return end_of_date(last)


def closure_time(event: Event) -> datetime:
    """A closure counts from its event time, or the end of closed_on when that is earlier (back-dated)."""
    return ms(min(event.time, end_of_day(event.data.closed_on)))


# -- applying events ----------------------------------------------------------------------


def review_event_id(case_no: str, stage: str, seq: int) -> str:
    return derived_id("termination.reviewed", case_no, stage, seq)


def restore_event_id(case_no: str, trigger: str) -> str:
    return derived_id("termination.restore_suggested", case_no, trigger_ref(trigger))


class TerminationRules:
    def __init__(self, policy: TerminationPolicy, calendar: CourtCalendar):
        self.policy = policy
        self.calendar = calendar

    def apply(self, case: dict[str, Any], event: Event, ledger: DeadlineBatch, effects: Effects) -> list[dict]:
        """Apply one event; returns the review documents to store (usually none)."""
        reviews: list[dict] = []
        kind = event.type
        if kind == "case.filed":
            self._filed(case, event, ledger, effects, reviews)
        elif kind == "triage.decided":
            self._decision(case, event, ledger)
        elif kind == "node.completed":
            if event.data.node in CHECKLIST_NODES:
                case["nodes"].append({"node": event.data.node, "at": ms(event.data.done_at), "ref": event.data.ref,
                                      "event_id": event.id})
        elif kind == "property.inquiry.result":
            self._inquiry(case, event, ledger, effects)
        elif kind == "property.clue.registered":
            self._clue(case, event, ledger, effects)
        elif kind == "case.closure_proposed":
            # A proposal after the closure is not reviewed: the first closure counts.
            if event.data.mode == "terminated_current" and case["closed"] is None:
                self._request(case, "proposed", event.data.proposed_on, event, ledger, effects, reviews)
        elif kind == "case.closed":
            self._closed(case, event, ledger, effects, reviews)
        elif kind == "case.resumed":
            self._resumed(case, event, ledger, effects)
        return reviews

    # -- events -------------------------------------------------------------------------

    def _filed(self, case, event, ledger, effects, reviews) -> None:
        if case["filed_on"] is not None:
            return  # the same case filed again under another event id: the first filing counts
        data = event.data
        case.update(case_type=data.case_type, court_code=data.court_code, filed_on=data.filed_on.isoformat(),
                    filed_event={"event_id": event.id, "at": ms(event.time)})
        pending, case["pending_reviews"] = case["pending_reviews"], []
        for request in sorted(pending, key=lambda r: r["at"]):
            self._review(case, request, ledger, effects, reviews)

    def _decision(self, case, event, ledger) -> None:
        data = event.data
        entry = [ms(data.decided_at), data.revision, data.team]
        if not any(t[0] == entry[0] and t[1] == entry[1] for t in case["teams"]):
            case["teams"].append(entry)
            case["teams"].sort(key=lambda t: (t[0], t[1]))
            case["team"] = case["teams"][-1][2]  # the latest decision (the API's team scope)
        ledger.set_team(case["_id"], data.team, data.decided_at, data.revision)

    def _inquiry(self, case, event, ledger, effects) -> None:
        data = event.data
        assets = [{"ref": a.ref, "kind": a.kind, "value": format_money(a.value), "controllable": a.controllable}
                  for a in data.assets if a.controllable]
        fact = {"channel": data.channel, "at": ms(data.returned_at), "event_id": event.id, "assets": assets}
        case["inquiries"].append(fact)
        if self._in_recheck(case, fact["at"]):
            self._after_closure_inquiry(case, fact, ledger, effects)

    def _clue(self, case, event, ledger, effects) -> None:
        data = event.data
        fact = {"clue_id": data.clue_id, "at": ms(data.reported_at), "event_id": event.id, "kind": data.kind,
                "reported_by": data.reported_by}
        case["clues"].append(fact)
        if self._in_recheck(case, fact["at"]):
            self._after_closure_clue(case, fact, ledger, effects)

    def _closed(self, case, event, ledger, effects, reviews) -> None:
        if case["closed"] is not None:
            return  # the first closure counts
        data = event.data
        at = closure_time(event)
        case["closed"] = {"mode": data.mode, "closed_on": data.closed_on.isoformat(), "at": at,
                          "event_id": event.id, "amount_recovered": format_money(data.amount_recovered)}
        if data.mode != "terminated_current":
            mode_zh = CLOSURE_ZH.get(data.mode, data.mode)
            ledger.resolve(effects, UNQUALIFIED, case["_id"], at=at, cancelled=True,
                           reason=f"案件以{mode_zh}方式结案，终本审查不再适用")
            return
        self._request(case, "closed", data.closed_on, event, ledger, effects, reviews)
        self._start_recheck(case, data.closed_on, at, ledger, effects)

    def _resumed(self, case, event, ledger, effects) -> None:
        if case["resumed"] is not None:
            return
        data = event.data
        at = ms(min(event.time, end_of_day(data.resumed_on)))
        case["resumed"] = {"new_case_no": data.new_case_no, "resumed_on": data.resumed_on.isoformat(), "at": at,
                           "event_id": event.id}
        reason = f"已恢复执行（{data.new_case_no}，{data.resumed_on.isoformat()}）"
        for doc in ledger.of_case(case["_id"]):
            if doc["rule"] == PROPERTY_FOUND:
                ledger.resolve(effects, PROPERTY_FOUND, doc["subject"], at=at, reason=reason)
        ledger.resolve_case(effects, case["_id"], at=at, reason=f"{reason}，终本动态管理结束", cancelled=True)

    # -- reviews ------------------------------------------------------------------------

    def _request(self, case, stage, stage_date: date, event, ledger, effects, reviews) -> None:
        request = {"stage": stage, "stage_date": stage_date.isoformat(), "at": ms(event.time),
                   "trigger": event.id}
        if case["filed_on"] is None:
            case["pending_reviews"].append(request)  # judged when the filing is read
            return
        self._review(case, request, ledger, effects, reviews)

    def _review(self, case, request, ledger, effects, reviews) -> None:
        stage, at = request["stage"], request["at"]
        stage_date = _date(request["stage_date"])
        result = review_case(self.policy, case, stage, stage_date)
        case["reviews"][stage] += 1
        seq = case["reviews"][stage]
        event_id = review_event_id(case["_id"], stage, seq)
        effects.emit(TERMINATION_EVENTS, make_event(
            type="termination.reviewed", subject=case["_id"], time=at, source=SOURCE, id=event_id,
            data={"case_no": case["_id"], "stage": stage, "passed": result.passed, "missing": result.missing},
        ))
        doc = {
            "_id": event_id, "case_no": case["_id"], "stage": stage, "seq": seq, "passed": result.passed,
            "missing": result.missing, "stage_date": stage_date.isoformat(), "reviewed_at": at,
            "trigger": request["trigger"], "policy_version": self.policy.version,
            "items": [i.as_doc() for i in result.items],
        }
        reviews.append(doc)
        case["latest"][stage] = {"review_id": event_id, "passed": result.passed, "missing": result.missing,
                                 "stage_date": stage_date.isoformat()}
        if not result.passed:
            self._unqualified(case, result, event_id, at, ledger, effects)
        elif stage == "closed":
            # The closure's review is the one that counts (终本合格率); a passing re-proposal leaves
            # the alert open until then, so one breach is one alert and it is never raised twice.
            ledger.resolve(effects, UNQUALIFIED, case["_id"], at=at,
                           reason=f"{STAGE_ZH[stage]}已通过（{stage_date.isoformat()}）")

    def _unqualified(self, case, result: Review, review_id: str, at: datetime, ledger, effects) -> None:
        rule = self.policy.unqualified
        names = "、".join(i.name_zh for i in result.items if i.code in result.missing)
        text = f"{rule.name_zh}（{STAGE_ZH[result.stage]}）：缺少{names}"
        details = {"stage": result.stage, "missing": result.missing, "review_id": review_id,
                   "stage_date": result.stage_date.isoformat()}
        # False when it exists: still open from an earlier failed review (raised once per breach).
        ledger.open(effects, Deadline(
            rule=UNQUALIFIED, subject=case["_id"], case_no=case["_id"], opened_at=at, due_at=None,
            name_zh=rule.name_zh, texts={"raised": text}, severities={"raised": rule.severity},
            teams=self._teams(case), details=details,
        ))

    # -- the re-check -------------------------------------------------------------------

    def _in_recheck(self, case: dict[str, Any], moment: datetime) -> bool:
        recheck = case.get("recheck")
        if recheck is None or moment <= recheck["from"]:
            return False
        resumed = case.get("resumed")
        return resumed is None or moment < resumed["at"]

    def _start_recheck(self, case, closed_on: date, at: datetime, ledger, effects) -> None:
        rule = self.policy.recheck
        periods = recheck_periods(self.policy, closed_on, at, self.calendar)
        case["recheck"] = {"from": at, "until": window_end(self.policy, closed_on),
                           "last_due": periods[-1].due, "closed_on": closed_on.isoformat()}
        teams = self._teams(case)
        for period in periods:
            ledger.open(effects, Deadline(
                rule=RECHECK, subject=f"{case['_id']}#{period.n}", case_no=case["_id"], ref=str(period.n),
                opened_at=period.start, due_at=period.due, warn_at=period.warn, name_zh=rule.name_zh,
                texts={"due_soon": rule.texts.due_soon, "overdue": rule.texts.overdue}, teams=teams,
                details={"period": period.n, "period_start": court_iso(period.start),
                         "closed_on": closed_on.isoformat()},
            ))
        # Facts timed after the closure but read before it (out-of-order input) count now.
        for fact in sorted(case["inquiries"], key=lambda f: f["at"]):
            if self._in_recheck(case, fact["at"]):
                self._after_closure_inquiry(case, fact, ledger, effects)
        for fact in sorted(case["clues"], key=lambda f: f["at"]):
            if self._in_recheck(case, fact["at"]):
                self._after_closure_clue(case, fact, ledger, effects)

    def _after_closure_inquiry(self, case, fact, ledger, effects) -> None:
        if fact["channel"] == "network":
            self._recheck_fact(case, fact, ledger, effects)
        found = countable_assets(fact["assets"], self.policy.asset_value_above)
        if found and fact["at"] <= case["recheck"]["until"]:
            listed = "、".join(f"{ASSET_ZH.get(a['kind'], a['kind'])}{a['ref']}（{a['value']}元）" for a in found[:5])
            more = f"等{len(found)}项" if len(found) > 5 else ""
            channel = "网络查控" if fact["channel"] == "network" else "传统查控"
            self._suggest(case, fact, f"终本后{channel}发现可控制财产：{listed}{more}", ledger, effects,
                          {"trigger_type": "property.inquiry.result", "channel": fact["channel"],
                           "assets": [a["ref"] for a in found]})

    def _after_closure_clue(self, case, fact, ledger, effects) -> None:
        if fact["at"] > case["recheck"]["until"]:
            return
        reporter = REPORTER_ZH.get(fact["reported_by"], fact["reported_by"])
        kind = ASSET_ZH.get(fact["kind"], fact["kind"])
        self._suggest(case, fact, f"终本后登记财产线索{fact['clue_id']}（{kind}，{reporter}）", ledger, effects,
                      {"trigger_type": "property.clue.registered", "clue_id": fact["clue_id"],
                       "reported_by": fact["reported_by"]})

    def _suggest(self, case, fact, reason: str, ledger, effects, details: dict[str, Any]) -> None:
        rule = self.policy.restore
        trigger = fact["event_id"]
        opened = ledger.open(effects, Deadline(
            rule=PROPERTY_FOUND, subject=f"{case['_id']}#{trigger_ref(trigger)}", case_no=case["_id"],
            ref=trigger_ref(trigger), opened_at=fact["at"], due_at=None, name_zh=rule.name_zh,
            texts={"raised": f"{rule.texts.raised}：{reason}"}, severities={"raised": rule.severity},
            teams=self._teams(case), details={**details, "trigger": trigger},
        ))
        if not opened:
            return  # suggested already (the same fact applied twice)
        effects.emit(TERMINATION_EVENTS, make_event(
            type="termination.restore_suggested", subject=case["_id"], time=fact["at"], source=SOURCE,
            id=restore_event_id(case["_id"], trigger),
            data={"case_no": case["_id"], "trigger": trigger, "reason": reason[:500]},
        ))
        case["suggestions"].append({"trigger": trigger, "at": fact["at"], "reason": reason[:500]})

    def _recheck_fact(self, case, fact, ledger, effects) -> None:
        """A network result at T answers the period holding T; it also makes up earlier missed periods."""
        at = fact["at"]
        when = local_text(at)
        for n in range(1, self.policy.recheck.periods + 1):
            doc = ledger.get(RECHECK, f"{case['_id']}#{n}")
            if doc is None or doc["state"] in FINISHED:
                continue
            start = doc["started_at"]
            if at <= start:
                break  # this and later periods start after the fact
            if at <= doc["due_at"]:
                ledger.resolve(effects, RECHECK, doc["subject"], at=at, reason=f"第{n}期网络查控复查已完成（{when}）")
                break
            ledger.resolve(effects, RECHECK, doc["subject"], at=at,
                           reason=f"第{n}期网络查控复查逾期，已于{when}补查")

    @staticmethod
    def _teams(case: dict[str, Any]) -> list[tuple[datetime, int, str]]:
        return [(t[0], t[1], t[2]) for t in case["teams"]]

