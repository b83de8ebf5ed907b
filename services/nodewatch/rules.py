"""Pure decisions of nodewatch (流程节点监管), rules.md §1: no database, no broker, no wall clock.

`NodeRules.apply(case, event, ledger, effects)` applies one event to the case's
state (a plain dict, stored by the handler) and to its deadlines (the batch's
DeadlineBatch, in memory); what it raises or resolves goes into `effects`.

Order across topics and keys is arbitrary (contract §1), so:
- events of a case read before its `case.filed` are kept (`pending`) and
  applied, in event-time order, right after the filing opens the deadlines;
- awaited facts are kept (`facts`), so a deadline opened after its fact
  (a clue verified before the clue's registration was read) is resolved at once;
- triage decisions are kept as a team history; an alert carries the team in
  force at its raised_at.
Facts are timed by their event time (`done_at`, `reported_at`, ...), never by
when they were read: see shared/deadline_book.py for why that makes replays identical.
"""
from __future__ import annotations

from datetime import datetime, time
from typing import Any

from services.nodewatch.policy import NodePolicy, NodeRule
from shared.calendar import CourtCalendar
from shared.contract.envelope import COURT_TZ, Event, parse_event
from shared.deadline_book import FINISHED, Deadline, DeadlineBatch, ms
from shared.deadlines import court_date, end_of_day, warn_at
from shared.runtime.effects import Effects

NODE_ZH: dict[str, str] = {
    "notice_served": "执行通知书送达", "property_report_order_served": "报告财产令送达",
    "network_inquiry_launched": "网络查控发起", "traditional_inquiry_done": "传统查控完成",
    "investigation_completed": "财产调查完成", "clue_verified": "财产线索核查",
    "applicant_interviewed": "约谈申请执行人", "respondent_questioned": "询问被执行人",
    "consumption_restricted": "限制消费", "dishonest_listed": "纳入失信名单",
    "property_controlled": "查封/扣押/冻结", "control_renewed": "续行查封/冻结",
    "valuation_completed": "评估完成", "auction_listed": "网拍挂拍", "auction_failed": "流拍",
    "disposal_concluded": "处置完毕",
}
CLOSURE_ZH: dict[str, str] = {
    "performed": "执行完毕", "terminated_current": "终结本次执行程序", "terminated": "终结执行",
    "rejected": "驳回申请", "not_enforced": "不予执行", "withdrawn": "销案",
}
PENDING_LIMIT = 1000  # events kept for a case whose filing has not been read; beyond that, the oldest go
# rules.md §2: triage decides at the first network inquiry result (执保: at the filing). Nodewatch
# expects that decision for these case types, so an alert raised after it carries its team.
TRIAGED_TYPES = frozenset({"执", "执恢", "执保"})


def new_case(case_no: str) -> dict[str, Any]:
    """The state nodewatch keeps per case (collection `cases`)."""
    return {"_id": case_no, "case_type": None, "filed_at": None, "filed_on": None, "closed": None,
            "facts": [], "pending": [], "teams": [], "extensions": [], "triage_expected_at": None}


def triage_expected_at(case: dict[str, Any]) -> datetime | None:
    """When the case's first triage decision is due (rules.md §2), while it has not been read."""
    return None if case.get("teams") else case.get("triage_expected_at")


def local_text(moment: datetime) -> str:
    return moment.astimezone(COURT_TZ).strftime("%Y-%m-%d %H:%M")


def filing_trigger(event: Event) -> datetime:
    """When the filing period starts: the event time on the filing day, else the start of filed_on."""
    filed_on = event.data.filed_on
    if court_date(event.time) == filed_on:
        return event.time
    return datetime.combine(filed_on, time(0, 0), tzinfo=COURT_TZ)


def closure_time(event: Event) -> datetime:
    """A closure counts from its event time, or the end of closed_on when that is earlier (back-dated)."""
    return min(event.time, end_of_day(event.data.closed_on))


class NodeRules:
    def __init__(self, policy: NodePolicy, calendar: CourtCalendar):
        self.policy = policy
        self.calendar = calendar
        rules = policy.rules
        self.on_filing = [r for r in rules if r.trigger.event == "case.filed"]
        self.on_clue = [r for r in rules if r.trigger.event == "property.clue.registered"]
        self.triggered_by: dict[str, list[NodeRule]] = {}
        self.awaiting: dict[str, list[NodeRule]] = {}
        for rule in rules:
            if rule.trigger.node:
                self.triggered_by.setdefault(rule.trigger.node, []).append(rule)
            if rule.awaits.node:
                self.awaiting.setdefault(rule.awaits.node, []).append(rule)
        self.on_closure = [r for r in rules if r.awaits.event == "case.closed"]
        self.extended = [r for r in rules if r.extended_by]
        self.awaited_nodes = frozenset(self.awaiting)
        self._codes = {r.code: r for r in rules}

    def rule(self, code: str) -> NodeRule | None:
        return self._codes.get(code)

    # -- entry point --------------------------------------------------------------

    def apply(self, case: dict[str, Any], event: Event, ledger: DeadlineBatch, effects: Effects) -> bool:
        """Apply one event; True when the case document changed (and must be written)."""
        if event.type == "triage.decided":
            return self._decision(case, event, ledger)
        if event.type == "case.filed":
            return self._filed(case, event, ledger, effects)
        if case["filed_at"] is None:
            self._keep_pending(case, event)
            return True
        return self._dispatch(case, event, ledger, effects)

    def _dispatch(self, case: dict[str, Any], event: Event, ledger: DeadlineBatch, effects: Effects) -> bool:
        if event.type == "node.completed":
            return self._node(case, event, ledger, effects)
        if event.type == "property.clue.registered":
            self._clue(case, event, ledger, effects)
            return False
        if event.type == "case.term_extended":
            self._extended(case, event, ledger, effects)
            return True
        if event.type == "case.closed":
            return self._closed(case, event, ledger, effects)
        if event.type == "property.inquiry.result":
            return self._inquiry(case, event)
        # case.closure_proposed, case.resumed: no node rule waits on them.
        return False

    def _inquiry(self, case: dict[str, Any], event: Event) -> bool:
        """The first network result is when triage decides: expect its decision from that time."""
        if event.data.channel != "network" or case["teams"] or case.get("triage_expected_at") is not None \
                or case["case_type"] not in TRIAGED_TYPES:
            return False
        case["triage_expected_at"] = ms(min(event.data.returned_at, event.time))
        return True

    # -- events -------------------------------------------------------------------

    def _decision(self, case: dict[str, Any], event: Event, ledger: DeadlineBatch) -> bool:
        data = event.data
        entry = [ms(data.decided_at), data.revision, data.team]
        ledger.set_team(case["_id"], data.team, data.decided_at, data.revision)
        if any(t[0] == entry[0] and t[1] == entry[1] for t in case["teams"]):
            return False
        case["triage_expected_at"] = None
        case["teams"].append(entry)
        case["teams"].sort(key=lambda t: (t[0], t[1]))
        return True

    def _keep_pending(self, case: dict[str, Any], event: Event) -> None:
        case["pending"].append(event.to_bytes().decode())
        if len(case["pending"]) > PENDING_LIMIT:
            del case["pending"][0]

    def _filed(self, case: dict[str, Any], event: Event, ledger: DeadlineBatch, effects: Effects) -> bool:
        if case["filed_at"] is not None:
            return False  # the same case filed again under another event id: the first filing counts
        data = event.data
        trigger = ms(filing_trigger(event))
        case.update(case_type=data.case_type, filed_at=trigger, filed_on=data.filed_on.isoformat())
        if data.case_type == "执保" and data.case_type in TRIAGED_TYPES and not case["teams"]:
            # triage decides a preservation case at its filing: expect it from the start of the filing day
            start_of_day = datetime.combine(data.filed_on, time(0, 0), tzinfo=COURT_TZ)
            case["triage_expected_at"] = ms(min(event.time, start_of_day))
        for rule in self.on_filing:
            if case["case_type"] in rule.case_types:
                self._open(case, rule, case["_id"], None, trigger, ledger, effects,
                           {"trigger": "case.filed", "case_type": data.case_type, "filed_on": case["filed_on"]})
        pending = [parse_event(text) for text in case["pending"]]
        case["pending"] = []
        for earlier in sorted(pending, key=lambda e: e.time):
            self._dispatch(case, earlier, ledger, effects)
        return True

    def _node(self, case: dict[str, Any], event: Event, ledger: DeadlineBatch, effects: Effects) -> bool:
        data = event.data
        done_at = ms(data.done_at)
        kept = data.node in self.awaited_nodes
        if kept:
            case["facts"].append({"node": data.node, "at": done_at, "ref": data.ref, "asset_kind": data.asset_kind})
        for rule in self.awaiting.get(data.node, ()):
            self._fact_for(case, rule, data.node, done_at, data.ref, ledger, effects)
        for rule in self.triggered_by.get(data.node, ()):
            if case["case_type"] not in rule.case_types:
                continue
            if rule.trigger.per == "asset":
                if not data.ref:
                    continue
                subject, ref = f"{case['_id']}#{data.ref}", data.ref
                kind = data.asset_kind or "other"
                details = {"trigger": data.node, "asset_kind": kind}
            else:
                subject, ref, kind = case["_id"], None, None
                details = {"trigger": data.node}
            self._open(case, rule, subject, ref, done_at, ledger, effects, details, asset_kind=kind)
        return kept

    def _clue(self, case: dict[str, Any], event: Event, ledger: DeadlineBatch, effects: Effects) -> None:
        data = event.data
        for rule in self.on_clue:
            if case["case_type"] in rule.case_types:
                self._open(case, rule, f"{case['_id']}#{data.clue_id}", data.clue_id, ms(data.reported_at),
                           ledger, effects, {"trigger": "property.clue.registered", "clue_kind": data.kind,
                                             "reported_by": data.reported_by})

    def _extended(self, case: dict[str, Any], event: Event, ledger: DeadlineBatch, effects: Effects) -> None:
        new_deadline = event.data.new_deadline
        case["extensions"].append({"at": ms(event.time), "new_deadline": new_deadline.isoformat()})
        for rule in self.extended:
            doc = ledger.get(rule.code, case["_id"])
            if doc is None or doc["state"] in FINISHED:
                continue
            # The approved date replaces the term as given (no roll-over: the court chose the day).
            due = end_of_day(new_deadline)
            warn = warn_at(due, rule.warn_before) if rule.warn_before is not None else None
            ledger.rearm(effects, rule.code, case["_id"], at=event.time, due_at=due, warn_at=warn,
                         reason=f"执行期限已延长至{new_deadline.isoformat()}",
                         details={"extended_to": new_deadline.isoformat(),
                                  "approved_by": event.data.approved_by})

    def _closed(self, case: dict[str, Any], event: Event, ledger: DeadlineBatch, effects: Effects) -> bool:
        if case["closed"] is not None:
            return False
        data = event.data
        at = ms(closure_time(event))
        case["closed"] = {"mode": data.mode, "at": at, "closed_on": data.closed_on.isoformat()}
        mode_zh = CLOSURE_ZH.get(data.mode, data.mode)
        for rule in self.on_closure:
            ledger.resolve(effects, rule.code, case["_id"], at=at,
                           reason=f"案件已结案（{mode_zh}，{data.closed_on.isoformat()}）")

        def survives(doc: dict[str, Any]) -> bool:
            rule = self.rule(doc["rule"])
            return rule is not None and data.mode in rule.survives_closure

        ledger.resolve_case(effects, case["_id"], at=at, reason=f"案件已结案（{mode_zh}），节点监管终止",
                            keep=survives)
        return True

    # -- helpers ------------------------------------------------------------------

    def _may_open(self, case: dict[str, Any], rule: NodeRule) -> bool:
        closed = case["closed"]
        return closed is None or closed["mode"] in rule.survives_closure

    def _open(self, case: dict[str, Any], rule: NodeRule, subject: str, ref: str | None, trigger: datetime,
              ledger: DeadlineBatch, effects: Effects, details: dict[str, Any], asset_kind: str | None = None) -> None:
        if not self._may_open(case, rule):
            return
        due, warn = rule.deadline_times(trigger, self.calendar, asset_kind)
        existing = ledger.get(rule.code, subject)
        if existing is None:
            ledger.open(effects, Deadline(
                rule=rule.code, subject=subject, case_no=case["_id"], ref=ref, opened_at=trigger,
                due_at=due, warn_at=warn, name_zh=rule.name_zh,
                texts={"due_soon": rule.texts.due_soon, "overdue": rule.texts.overdue},
                teams=[(t[0], t[1], t[2]) for t in case["teams"]], details=details,
            ))
        elif existing["state"] in FINISHED:
            # Triggered again after the last period ended (a second valuation, another failed auction).
            ledger.rearm(effects, rule.code, subject, at=trigger, due_at=due, warn_at=warn,
                         reason="再次触发", reopen=True, details=details)
        else:
            return  # a period already runs: the first trigger counts
        self._facts_already_in(case, rule, subject, ref, trigger, ledger, effects)

    def _facts_already_in(self, case: dict[str, Any], rule: NodeRule, subject: str, ref: str | None,
                          trigger: datetime, ledger: DeadlineBatch, effects: Effects) -> None:
        """Facts read before the deadline opened (out-of-order input) settle it now."""
        if rule.awaits.event == "case.closed":
            closed = case["closed"]
            if closed is not None and closed["at"] >= trigger:
                ledger.resolve(effects, rule.code, subject, at=closed["at"],
                               reason=f"案件已结案（{CLOSURE_ZH.get(closed['mode'], closed['mode'])}）")
            return
        # For a filing, any record of the node counts; for a node or item trigger, only one after it.
        any_time = rule.trigger.event == "case.filed" or rule.awaits.same_ref
        facts = sorted((f for f in case["facts"] if f["node"] == rule.awaits.node
                        and (not rule.awaits.same_ref or f["ref"] == ref)
                        and (any_time and not rule.awaits.restarts or f["at"] >= trigger)),
                       key=lambda f: f["at"])
        for fact in facts:
            self._fact_for(case, rule, fact["node"], fact["at"], fact["ref"], ledger, effects)
            if not rule.awaits.restarts:
                break

    def _fact_for(self, case: dict[str, Any], rule: NodeRule, node: str, done_at: datetime, ref: str | None,
                  ledger: DeadlineBatch, effects: Effects) -> None:
        """An awaited node fact for `rule`: resolve its deadline, or restart the period (renewal)."""
        if rule.awaits.same_ref:
            if not ref:
                return
            subject = f"{case['_id']}#{ref}"
        else:
            subject = case["_id"]
        doc = ledger.get(rule.code, subject)
        if doc is None or doc["state"] in FINISHED:
            return
        if rule.trigger.event == "node.completed" and not rule.awaits.same_ref and done_at < doc["started_at"]:
            return  # e.g. the first auction's listing does not answer a later failed auction
        reason = f"{NODE_ZH.get(node, node)}已完成（{local_text(done_at)}）"
        if rule.awaits.restarts:
            if done_at <= doc["started_at"]:
                return  # this renewal (or an older one) already started the running period
            kind = (doc.get("details") or {}).get("asset_kind")
            due, warn = rule.deadline_times(done_at, self.calendar, kind)
            ledger.rearm(effects, rule.code, subject, at=done_at, due_at=due, warn_at=warn, reason=reason)
        else:
            ledger.resolve(effects, rule.code, subject, at=done_at, reason=reason)
