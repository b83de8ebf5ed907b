"""Pure decisions of funds (一案一账户 case-fund supervision), rules.md §3: no database, no broker, no wall clock.

Two parts:

- `account_view(ledger, rule, calendar)`: the arithmetic of one case account
  (Decimal throughout), a pure function of the ledger document: balance,
  each receipt's cumulative position, payout due and the moment payouts
  covered it, each payout's balance after it, the balance at closure.
- `FundsRules.apply(state, event, deadlines, effects)` applies one event to the
  batch's state (plain dicts the handler loaded and will store) and returns a
  rejection reason for an impossible fact (the handler dead-letters it);
  `FundsRules.reconcile(ledger, deadlines, effects)` then brings the case's
  deadlines and alerts (the deadline book, shared/deadline_book.py) in line
  with the account view, once per touched case and batch.

Because reconcile looks at the whole account as event time orders it, the
order in which events are read does not change what is decided: a payout
read before its case's filing is kept and judged when the filing arrives
(funds.payee_not_party), a receipt read late takes its place by time, and a
fact timed before an alert it settles resolves it as a late fact.

Semantics (rules.md §3, with the choices the table leaves open):
- Balance = Σ received − Σ disbursed of the case. A receipt joins the case's
  account when it is credited to it: at `received_at` when the payer named the
  case, at `matched_at` for an unidentified deposit (不明款) claimed later.
  Until it is matched, an unidentified deposit belongs to no case.
- funds.disbursement, per receipt, in credit order (credited_at, receipt_id):
  cumulative receipts C up to and including it must be reached by the case's
  cumulative payouts (in disbursed_at order) within 30 days of `received_at`
  (warning 20 days before). The awaited fact is the payout at which Σ payouts
  first reaches C. Money is fungible: payouts cover the oldest receipts first.
- 延缓发放 (funds.delay_approved): the due of each receipt becomes
  max(own due, end of `until`) (no roll-over: the chief chose the day). An
  alert already raised is resolved at the approval's time with the approval as
  reason, and the deadline starts a new cycle (re-arm) with the new due; the
  new cycle warns only if its warning moment lies after the approval. A later
  approval never shortens one in force.
- A receipt read late that sorts before receipts already paid out can leave a
  receipt uncovered whose deadline was resolved: it is re-opened (re-arm,
  cycle n+1), from the moment it had been taken as covered.
- funds.payee_not_party: judged once the filing (parties) is known; never
  resolved automatically (a finding for the bureau chief, closed in oncall).
- funds.overdrawn, per payout: the balance right after it (receipts credited
  at the same instant count first) is below 0. Resolved when a later receipt
  brings the balance back to ≥ 0, or, when a receipt timed before the payout
  is read late and shows the balance never went negative, at once as a late fact.
- funds.closed_with_balance: the balance as of the closure (event time) is
  above 0. Resolved when the case's payouts reach what it had received by the
  closure. A closure does not end funds.disbursement deadlines (unlike the
  generic closure rule of rules.md §0): money held after closure must still be
  paid out, and its overdue alert must not vanish with the closure.
"""
from __future__ import annotations

import hashlib
import json
from bisect import bisect_left
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from services.funds.policy import (
    CLAIM, CLOSED_WITH_BALANCE, DISBURSEMENT, OVERDRAWN, PAYEE_NOT_PARTY, UNIDENTIFIED, FundsPolicy, FundsRule,
)
from shared.alerts import court_iso
from shared.calendar import CourtCalendar
from shared.contract.casenumber import CaseNumberError, parse_case_no
from shared.contract.envelope import COURT_TZ, Event
from shared.contract.types import format_money, parse_money
from shared.deadline_book import FINISHED, Deadline, DeadlineBatch, key_of, ms
from shared.deadlines import court_date, end_of_day, warn_at
from shared.masking import mask_text
from shared.runtime.effects import Effects

ZERO = Decimal("0.00")
UNMATCHED_PREFIX = "unmatched:"
TOTALS_ID = "funds"

CLOSURE_ZH: dict[str, str] = {
    "performed": "执行完毕", "terminated_current": "终结本次执行程序", "terminated": "终结执行",
    "rejected": "驳回申请", "not_enforced": "不予执行", "withdrawn": "销案",
}


# -- state documents ---------------------------------------------------------------


def new_ledger(case_no: str) -> dict[str, Any]:
    """The account of one case (collection `ledgers`, `_id` = case number). Amounts are decimal strings."""
    return {"_id": case_no, "filed": None, "closed": None, "teams": [], "receipts": [], "payouts": [],
            "delays": [], "received": "0.00", "disbursed": "0.00", "balance": "0.00"}


def new_totals() -> dict[str, Any]:
    """Court-wide totals (collection `totals`), kept in step with every batch: the metrics read them."""
    return {"_id": TOTALS_ID, "received": "0.00", "disbursed": "0.00", "unidentified_amount": "0.00",
            "unidentified_count": 0, "receipts": 0, "payouts": 0}


def unmatched_subject(receipt_id: str) -> str:
    """Subject and key of an unidentified deposit and of its match (contract §3)."""
    return f"{UNMATCHED_PREFIX}{receipt_id}"


def item_subject(case_no: str, ref: str) -> str:
    """Subject of a per-item rule (rules.md §0): `<case_no>#<receipt or payout id>`."""
    return f"{case_no}#{ref}"


def money(text: str | Decimal) -> Decimal:
    return text if isinstance(text, Decimal) else parse_money(text)


def _canonical(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, Decimal):
        return format_money(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return {k: _canonical(v) for k, v in value}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return value


def fingerprint(data: BaseModel | Mapping[str, Any]) -> str:
    """Content hash of a fact: the same payout sent again under another event id has the same one.

    Times are compared as instants (+08:00 and Z spellings of one moment agree),
    amounts at 2 decimals ("100" and "100.00" agree).
    """
    items = dict(data) if isinstance(data, Mapping) else {k: v for k, v in data}
    canonical = json.dumps({k: _canonical(v) for k, v in items.items()}, ensure_ascii=False, sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def closure_time(event: Event) -> datetime:
    """A closure counts from its event time, or the end of closed_on when that is earlier (back-dated)."""
    return min(event.time, end_of_day(event.data.closed_on))


def local_text(moment: datetime) -> str:
    return moment.astimezone(COURT_TZ).strftime("%Y-%m-%d %H:%M")


class _Template(dict):
    """format_map values that leave unknown placeholders for the deadline book ({due_date}, {case_no}...)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def fill(texts: Mapping[str, str], **values: Any) -> dict[str, str]:
    out = {}
    for kind, text in texts.items():
        try:
            out[kind] = text.format_map(_Template(values))
        except (ValueError, IndexError, AttributeError):
            out[kind] = text
    return out


# -- the account view (pure arithmetic) ----------------------------------------------


@dataclass(frozen=True)
class ReceiptView:
    receipt_id: str
    amount: Decimal
    received_at: datetime
    credited_at: datetime
    payer_name: str
    via: str                      # direct | matched
    cumulative: Decimal           # Σ receipts up to and including this one, in credit order
    covered_at: datetime | None   # the payout at which Σ payouts first reached `cumulative`
    uncovered: Decimal            # the part of this receipt not yet paid out (by every payout known)
    due_at: datetime
    warn_at: datetime | None
    suspended_until: date | None  # the delay (延缓发放) that set due_at, if one did
    delay_at: datetime | None     # when that delay was approved
    delay: dict[str, Any] | None


@dataclass(frozen=True)
class PayoutView:
    payout_id: str
    amount: Decimal
    payee_name: str
    payee_id_no: str
    approved_by: str
    disbursed_at: datetime
    balance_after: Decimal
    overdrawn: bool
    back_in_credit_at: datetime | None  # the later receipt at which the balance is ≥ 0 again
    payee_is_party: bool | None         # None while the filing has not been read


@dataclass(frozen=True)
class AccountView:
    case_no: str
    received: Decimal
    disbursed: Decimal
    balance: Decimal
    receipts: tuple[ReceiptView, ...]
    payouts: tuple[PayoutView, ...]
    closed_at: datetime | None
    balance_at_closure: Decimal | None
    closure_paid_out_at: datetime | None

    @property
    def pending(self) -> tuple[ReceiptView, ...]:
        """Receipts not fully paid out yet, in credit order."""
        return tuple(r for r in self.receipts if r.covered_at is None)


def _delay_until(delay: Mapping[str, Any]) -> date:
    until = delay["until"]
    return until if isinstance(until, date) else date.fromisoformat(until)


def receipt_schedule(received_at: datetime, delays: list[Mapping[str, Any]], rule: FundsRule,
                     calendar: CourtCalendar) -> tuple[datetime, datetime | None, Mapping[str, Any] | None]:
    """(due, warn, governing delay) of one receipt's payout: 30 days, or later when a delay says so."""
    due, warn = rule.deadline_times(received_at, calendar)
    governing = None
    for delay in sorted(delays, key=lambda d: (d["at"], d.get("event_id", ""))):
        if governing is None or _delay_until(delay) > _delay_until(governing):
            governing = delay
    if governing is None:
        return due, warn, None
    suspended = end_of_day(_delay_until(governing))
    if suspended <= due:
        return due, warn, None
    new_warn = warn_at(suspended, rule.warn_before) if rule.warn_before is not None else None
    if new_warn is not None and new_warn <= governing["at"]:
        new_warn = None  # the chief set a due less than warn_before away: no warning in this cycle
    return suspended, new_warn, governing


def account_view(ledger: Mapping[str, Any], rule: FundsRule, calendar: CourtCalendar) -> AccountView:
    """The case account as event time orders it (rule = funds.disbursement, for the payout due)."""
    receipts = sorted(ledger["receipts"], key=lambda r: (r["credited_at"], r["receipt_id"]))
    payouts = sorted(ledger["payouts"], key=lambda p: (p["disbursed_at"], p["payout_id"]))
    paid_times: list[datetime] = []
    paid_cumulative: list[Decimal] = []
    total_paid = ZERO
    for payout in payouts:
        total_paid += money(payout["amount"])
        paid_times.append(payout["disbursed_at"])
        paid_cumulative.append(total_paid)

    def first_paid_reaching(target: Decimal) -> datetime | None:
        index = bisect_left(paid_cumulative, target)  # cumulative payouts never decrease
        return paid_times[index] if index < len(paid_times) else None

    delays = list(ledger.get("delays") or [])
    receipt_views = []
    cumulative = ZERO
    for receipt in receipts:
        amount = money(receipt["amount"])
        cumulative += amount
        due, warn, delay = receipt_schedule(receipt["received_at"], delays, rule, calendar)
        receipt_views.append(ReceiptView(
            receipt_id=receipt["receipt_id"], amount=amount, received_at=receipt["received_at"],
            credited_at=receipt["credited_at"], payer_name=receipt["payer_name"], via=receipt["via"],
            cumulative=cumulative, covered_at=first_paid_reaching(cumulative),
            uncovered=min(amount, max(cumulative - total_paid, ZERO)),
            due_at=due, warn_at=warn, suspended_until=_delay_until(delay) if delay else None,
            delay_at=delay["at"] if delay else None, delay=dict(delay) if delay else None,
        ))
    total_received = cumulative

    # The running balance in time order; money credited at the same instant as a payout counts first.
    timeline = sorted([(r["credited_at"], 0, r["receipt_id"], money(r["amount"])) for r in receipts]
                      + [(p["disbursed_at"], 1, p["payout_id"], -money(p["amount"])) for p in payouts])
    running = ZERO
    after: list[Decimal] = []
    for _at, _order, _ref, delta in timeline:
        running += delta
        after.append(running)
    position = {(order, ref): i for i, (_at, order, ref, _d) in enumerate(timeline)}
    parties = set((ledger.get("filed") or {}).get("parties") or ())
    filed = ledger.get("filed") is not None
    payout_views = []
    for payout in payouts:
        index = position[(1, payout["payout_id"])]
        balance_after = after[index]
        back = None
        if balance_after < 0:
            back = next((timeline[m][0] for m in range(index + 1, len(timeline))
                         if timeline[m][1] == 0 and after[m] >= 0), None)
        payout_views.append(PayoutView(
            payout_id=payout["payout_id"], amount=money(payout["amount"]), payee_name=payout["payee_name"],
            payee_id_no=payout["payee_id_no"], approved_by=payout["approved_by"],
            disbursed_at=payout["disbursed_at"], balance_after=balance_after, overdrawn=balance_after < 0,
            back_in_credit_at=back, payee_is_party=(payout["payee_id_no"] in parties) if filed else None,
        ))

    closed = ledger.get("closed")
    closed_at = closed["at"] if closed else None
    balance_at_closure = paid_out_at = None
    if closed_at is not None:
        received_by_closure = sum((money(r["amount"]) for r in receipts if r["credited_at"] <= closed_at), ZERO)
        paid_by_closure = sum((money(p["amount"]) for p in payouts if p["disbursed_at"] <= closed_at), ZERO)
        balance_at_closure = received_by_closure - paid_by_closure
        if balance_at_closure > 0:
            paid_out_at = first_paid_reaching(received_by_closure)
    return AccountView(
        case_no=ledger["_id"], received=total_received, disbursed=total_paid, balance=total_received - total_paid,
        receipts=tuple(receipt_views), payouts=tuple(payout_views), closed_at=closed_at,
        balance_at_closure=balance_at_closure, closure_paid_out_at=paid_out_at,
    )


# -- the batch state ---------------------------------------------------------------------


@dataclass
class FundsState:
    """What one batch loaded (and changes): ledgers, the receipt and payout registries, the totals."""

    ledgers: dict[str, dict[str, Any]] = field(default_factory=dict)
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    payouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    totals: dict[str, Any] = field(default_factory=new_totals)
    changed_ledgers: set[str] = field(default_factory=set)
    changed_receipts: set[str] = field(default_factory=set)
    changed_payouts: set[str] = field(default_factory=set)
    totals_changed: bool = False

    def ledger(self, case_no: str) -> dict[str, Any]:
        ledger = self.ledgers.get(case_no)
        if ledger is None:
            ledger = self.ledgers[case_no] = new_ledger(case_no)
        self.changed_ledgers.add(case_no)
        return ledger

    def add_to_totals(self, name: str, amount: Decimal | int) -> None:
        if isinstance(amount, Decimal):
            self.totals[name] = signed_money(Decimal(self.totals[name]) + amount)
        else:
            self.totals[name] = int(self.totals[name]) + amount
        self.totals_changed = True


def _subject_case(event: Event) -> str:
    return parse_case_no(event.subject).normalized


# -- decisions -------------------------------------------------------------------------------


class FundsRules:
    def __init__(self, policy: FundsPolicy, calendar: CourtCalendar):
        self.policy = policy
        self.calendar = calendar
        self.unidentified = policy.rule(UNIDENTIFIED)
        self.claim = policy.rule(CLAIM)
        self.disbursement = policy.rule(DISBURSEMENT)
        self.payee_not_party = policy.rule(PAYEE_NOT_PARTY)
        self.overdrawn = policy.rule(OVERDRAWN)
        self.closed_with_balance = policy.rule(CLOSED_WITH_BALANCE)

    def view(self, ledger: Mapping[str, Any]) -> AccountView:
        return account_view(ledger, self.disbursement, self.calendar)

    # -- events ----------------------------------------------------------------------------

    def apply(self, state: FundsState, event: Event, deadlines: DeadlineBatch, effects: Effects) -> str | None:
        """Apply one event; a returned text is the reason to dead-letter it (then nothing was changed)."""
        handler = {
            "funds.received": self._received, "funds.disbursed": self._disbursed,
            "funds.matched": self._matched, "funds.delay_approved": self._delay_approved,
            "case.filed": self._filed, "case.closed": self._closed, "triage.decided": self._decided,
        }.get(event.type)
        if handler is None:
            return None  # other case events: no fund rule waits on them
        return handler(state, event, deadlines, effects)

    def _received(self, state: FundsState, event: Event, deadlines: DeadlineBatch, effects: Effects) -> str | None:
        data = event.data
        known = state.receipts.get(data.receipt_id)
        fp = fingerprint(data)
        if known is not None:
            if known["fingerprint"] == fp:
                return None  # the same receipt sent again under another event id
            return (f"receipt_id {data.receipt_id} was already used for a different receipt "
                    f"(event {known['event_id']}); a receipt is never changed, a correction needs a new id")
        if data.case_no is None:
            if event.subject != unmatched_subject(data.receipt_id):
                return (f"subject {event.subject!r} of an unidentified deposit must be "
                        f"{unmatched_subject(data.receipt_id)!r} (contract §3)")
        elif _safe_subject_case(event) != data.case_no:
            return f"subject {event.subject!r} of a receipt must be its case number {data.case_no!r} (contract §3)"
        amount = data.amount
        received_at = ms(data.received_at)
        state.receipts[data.receipt_id] = {
            "_id": data.receipt_id, "fingerprint": fp, "event_id": event.id, "case_no": data.case_no,
            "amount": format_money(amount), "payer_name": data.payer_name, "received_at": received_at,
            "state": "unidentified" if data.case_no is None else "identified", "matched": None,
        }
        state.changed_receipts.add(data.receipt_id)
        state.add_to_totals("received", amount)
        state.add_to_totals("receipts", 1)
        if data.case_no is not None:
            ledger = state.ledger(data.case_no)
            ledger["receipts"].append({
                "receipt_id": data.receipt_id, "amount": format_money(amount), "received_at": received_at,
                "credited_at": received_at, "payer_name": data.payer_name, "via": "direct",
                "matched_at": None, "event_id": event.id,
            })
            return None
        state.add_to_totals("unidentified_amount", amount)
        state.add_to_totals("unidentified_count", 1)
        values = {"amount": format_money(amount), "payer": data.payer_name, "receipt_id": data.receipt_id}
        details = {"receipt_id": data.receipt_id, "amount": format_money(amount), "payer_name": data.payer_name,
                   "received_at": court_iso(received_at)}
        deadlines.open(effects, Deadline(
            rule=UNIDENTIFIED, subject=data.receipt_id, opened_at=received_at, due_at=None,
            ref=data.receipt_id, name_zh=self.unidentified.name_zh,
            texts=fill(self.unidentified.texts.as_dict(), **values),
            severities=self.unidentified.severities.as_dict(), details=details,
        ))
        due, warn = self.claim.deadline_times(received_at, self.calendar)
        deadlines.open(effects, Deadline(
            rule=CLAIM, subject=data.receipt_id, opened_at=received_at, due_at=due, warn_at=warn,
            ref=data.receipt_id, name_zh=self.claim.name_zh, texts=fill(self.claim.texts.as_dict(), **values),
            severities=self.claim.severities.as_dict(), details=details,
        ))
        return None

    def _matched(self, state: FundsState, event: Event, deadlines: DeadlineBatch, effects: Effects) -> str | None:
        data = event.data
        known = state.receipts.get(data.receipt_id)
        fp = fingerprint(data)
        if known is None:
            return (f"funds.matched for unknown receipt {data.receipt_id}: no funds.received with that id "
                    "was read (a match travels after its receipt, key unmatched:<receipt_id>)")
        if event.subject != unmatched_subject(data.receipt_id):
            return f"subject {event.subject!r} of a match must be {unmatched_subject(data.receipt_id)!r} (contract §5)"
        if known["case_no"] is not None:
            return (f"receipt {data.receipt_id} was received for case {known['case_no']}; "
                    "only an unidentified deposit (case_no null) can be matched")
        matched = known.get("matched")
        if matched is not None:
            if matched["fingerprint"] == fp:
                return None  # the same match sent again
            return (f"receipt {data.receipt_id} was already matched to case {matched['case_no']} "
                    f"at {local_text(matched['at'])} (event {matched['event_id']})")
        matched_at = ms(data.matched_at)
        if matched_at < known["received_at"]:
            return (f"matched_at {court_iso(matched_at)} is before the receipt's received_at "
                    f"{court_iso(known['received_at'])}")
        amount = money(known["amount"])
        known["matched"] = {"case_no": data.case_no, "at": matched_at, "event_id": event.id, "fingerprint": fp}
        known["state"] = "matched"
        state.changed_receipts.add(data.receipt_id)
        state.add_to_totals("unidentified_amount", -amount)
        state.add_to_totals("unidentified_count", -1)
        ledger = state.ledger(data.case_no)
        ledger["receipts"].append({
            "receipt_id": data.receipt_id, "amount": known["amount"], "received_at": known["received_at"],
            "credited_at": matched_at, "payer_name": known["payer_name"], "via": "matched",
            "matched_at": matched_at, "event_id": known["event_id"], "match_event_id": event.id,
        })
        reason = f"不明款已认领至{data.case_no}（{local_text(matched_at)}）"
        for rule in (UNIDENTIFIED, CLAIM):
            deadlines.resolve(effects, rule, data.receipt_id, at=matched_at, reason=reason)
        return None

    def _disbursed(self, state: FundsState, event: Event, deadlines: DeadlineBatch, effects: Effects) -> str | None:
        data = event.data
        known = state.payouts.get(data.payout_id)
        fp = fingerprint(data)
        if known is not None:
            if known["fingerprint"] == fp:
                return None  # the same payout sent again (a re-sending system, a retried POST)
            return (f"payout_id {data.payout_id} was already used for a different payout "
                    f"(case {known['case_no']}, {known['amount']} yuan, event {known['event_id']}); "
                    "a payout is never changed, a correction needs a new id")
        if _safe_subject_case(event) != data.case_no:
            return f"subject {event.subject!r} of a payout must be its case number {data.case_no!r} (contract §3)"
        state.payouts[data.payout_id] = {
            "_id": data.payout_id, "fingerprint": fp, "event_id": event.id, "case_no": data.case_no,
            "amount": format_money(data.amount), "disbursed_at": ms(data.disbursed_at),
        }
        state.changed_payouts.add(data.payout_id)
        state.add_to_totals("disbursed", data.amount)
        state.add_to_totals("payouts", 1)
        state.ledger(data.case_no)["payouts"].append({
            "payout_id": data.payout_id, "amount": format_money(data.amount), "payee_name": data.payee_name,
            "payee_id_no": data.payee_id_no, "approved_by": data.approved_by,
            "disbursed_at": ms(data.disbursed_at), "event_id": event.id,
        })
        return None

    def _delay_approved(self, state: FundsState, event: Event, deadlines: DeadlineBatch,
                        effects: Effects) -> str | None:
        data = event.data
        if _safe_subject_case(event) != data.case_no:
            return f"subject {event.subject!r} of a delay approval must be its case number {data.case_no!r}"
        approved_on = court_date(event.time)
        if data.until < approved_on:
            return (f"until {data.until.isoformat()} is before the approval date {approved_on.isoformat()}: "
                    "a payout delay cannot end before it was approved")
        fp = fingerprint(data)
        ledger = state.ledgers.get(data.case_no)
        if ledger is not None and any(d["fingerprint"] == fp for d in ledger["delays"]):
            return None  # the same approval sent again
        state.ledger(data.case_no)["delays"].append({
            "until": data.until.isoformat(), "reason": data.reason, "approved_by": data.approved_by,
            "at": ms(event.time), "event_id": event.id, "fingerprint": fp,
        })
        return None

    def _filed(self, state: FundsState, event: Event, deadlines: DeadlineBatch, effects: Effects) -> str | None:
        data = event.data
        if _safe_subject_case(event) != data.case_no:
            return f"subject {event.subject!r} differs from data.case_no {data.case_no!r}"
        parties = sorted({p.id_no for p in [*data.applicants, *data.respondents]})
        ledger = state.ledgers.get(data.case_no)
        if ledger is not None and ledger.get("filed") is not None:
            if ledger["filed"]["parties"] == parties:
                return None  # filed again (another event id): the first filing counts
            return (f"case {data.case_no} was already filed with different parties "
                    f"(event {ledger['filed']['event_id']}); funds keeps the first filing's parties")
        state.ledger(data.case_no)["filed"] = {
            "at": ms(event.time), "parties": parties, "case_type": data.case_type, "event_id": event.id,
        }
        return None

    def _closed(self, state: FundsState, event: Event, deadlines: DeadlineBatch, effects: Effects) -> str | None:
        case_no = _safe_subject_case(event)
        if case_no is None:
            return f"subject {event.subject!r} is not a case number"
        ledger = state.ledgers.get(case_no)
        if ledger is not None and ledger.get("closed") is not None:
            return None  # the first closure counts
        state.ledger(case_no)["closed"] = {"mode": event.data.mode, "closed_on": event.data.closed_on.isoformat(),
                                           "at": ms(closure_time(event)), "event_id": event.id}
        return None

    def _decided(self, state: FundsState, event: Event, deadlines: DeadlineBatch, effects: Effects) -> str | None:
        data = event.data
        entry = [ms(data.decided_at), data.revision, data.team]
        ledger = state.ledger(data.case_no)
        if not any(t[0] == entry[0] and t[1] == entry[1] for t in ledger["teams"]):
            ledger["teams"].append(entry)
            ledger["teams"].sort(key=lambda t: (t[0], t[1]))
        deadlines.set_team(data.case_no, data.team, data.decided_at, data.revision)
        return None

    # -- the case's deadlines and alerts, from its account -------------------------------

    def reconcile(self, ledger: dict[str, Any], deadlines: DeadlineBatch, effects: Effects) -> AccountView:
        """Open, resolve or re-arm the case's fund deadlines so they match its account; update the summary."""
        view = self.view(ledger)
        ledger["received"], ledger["disbursed"] = format_money(view.received), format_money(view.disbursed)
        ledger["balance"] = signed_money(view.balance)
        teams = [(t[0], t[1], t[2]) for t in ledger.get("teams") or []]
        for receipt in view.receipts:
            self._receipt_deadline(view, receipt, teams, deadlines, effects)
        for payout in view.payouts:
            self._payee(view, payout, teams, deadlines, effects)
            self._overdraft(view, payout, teams, deadlines, effects)
        self._closure(view, teams, deadlines, effects)
        return view

    def _receipt_deadline(self, view: AccountView, receipt: ReceiptView, teams: list, deadlines: DeadlineBatch,
                          effects: Effects) -> None:
        rule = self.disbursement
        subject = item_subject(view.case_no, receipt.receipt_id)
        details = {"receipt_id": receipt.receipt_id, "amount": format_money(receipt.amount),
                   "received_at": court_iso(receipt.received_at), "via": receipt.via,
                   "cumulative_received": format_money(receipt.cumulative)}
        if receipt.suspended_until is not None:
            details["suspended_until"] = receipt.suspended_until.isoformat()
        doc = deadlines.get(rule.code, subject)
        if doc is None:
            deadlines.open(effects, Deadline(
                # The period runs from received_at; its alerts can be raised only once the money is
                # the case's (credited_at: the match, for an unidentified deposit).
                rule=rule.code, subject=subject, case_no=view.case_no, ref=receipt.receipt_id,
                opened_at=receipt.credited_at, due_at=receipt.due_at, warn_at=receipt.warn_at,
                name_zh=rule.name_zh, severities=rule.severities.as_dict(), teams=teams, details=details,
                texts=fill(rule.texts.as_dict(), amount=format_money(receipt.amount), receipt_id=receipt.receipt_id),
            ))
        elif doc["state"] in FINISHED:
            if doc["state"] != "resolved" or receipt.covered_at is not None:
                return
            # A receipt read late now sorts before this one: the payouts no longer reach it.
            since = (doc.get("resolution") or {}).get("at") or receipt.received_at
            deadlines.rearm(effects, rule.code, subject, at=since, due_at=receipt.due_at, warn_at=receipt.warn_at,
                            reopen=True, details=details,
                            reason="晚到的收款记录排在前面，累计发放已不足以覆盖本笔收款")
        elif receipt.delay is not None and doc["due_at"] < receipt.due_at:
            delay = receipt.delay
            at = max(delay["at"], doc["started_at"])
            deadlines.rearm(effects, rule.code, subject, at=at, due_at=receipt.due_at, warn_at=receipt.warn_at,
                            details=details,
                            reason=f"已批准延缓发放至{receipt.suspended_until.isoformat()}"
                                   f"（{delay['approved_by']}：{delay['reason']}）")
        if receipt.covered_at is not None:
            deadlines.resolve(effects, rule.code, subject, at=receipt.covered_at,
                              reason=f"案款已发放（累计发放达到累计到账{format_money(receipt.cumulative)}元，"
                                     f"{local_text(receipt.covered_at)}）")

    def _payee(self, view: AccountView, payout: PayoutView, teams: list, deadlines: DeadlineBatch,
               effects: Effects) -> None:
        if payout.payee_is_party is not False:
            return  # a party, or not judged yet (the filing has not been read)
        rule = self.payee_not_party
        subject = item_subject(view.case_no, payout.payout_id)
        if deadlines.get(rule.code, subject) is not None:
            return
        deadlines.open(effects, Deadline(
            rule=rule.code, subject=subject, case_no=view.case_no, ref=payout.payout_id,
            opened_at=payout.disbursed_at, due_at=None, name_zh=rule.name_zh,
            texts=fill(rule.texts.as_dict(), payee=payout.payee_name, payout_id=payout.payout_id,
                       amount=format_money(payout.amount)),
            severities=rule.severities.as_dict(), teams=teams,
            details={"payout_id": payout.payout_id, "amount": format_money(payout.amount),
                     "payee_name": payout.payee_name, "payee_id_no": mask_text(payout.payee_id_no),
                     "approved_by": payout.approved_by, "disbursed_at": court_iso(payout.disbursed_at)},
        ))

    def _overdraft(self, view: AccountView, payout: PayoutView, teams: list, deadlines: DeadlineBatch,
                   effects: Effects) -> None:
        rule = self.overdrawn
        subject = item_subject(view.case_no, payout.payout_id)
        doc = deadlines.get(rule.code, subject)
        if payout.overdrawn:
            if doc is None:
                deadlines.open(effects, Deadline(
                    rule=rule.code, subject=subject, case_no=view.case_no, ref=payout.payout_id,
                    opened_at=payout.disbursed_at, due_at=None, name_zh=rule.name_zh,
                    texts=fill(rule.texts.as_dict(), amount=format_money(payout.amount), payout_id=payout.payout_id,
                               balance=signed_money(payout.balance_after)),
                    severities=rule.severities.as_dict(), teams=teams,
                    details={"payout_id": payout.payout_id, "amount": format_money(payout.amount),
                             "balance_after": signed_money(payout.balance_after),
                             "disbursed_at": court_iso(payout.disbursed_at)},
                ))
            if payout.back_in_credit_at is not None:
                deadlines.resolve(effects, rule.code, subject, at=payout.back_in_credit_at,
                                  reason=f"案款余额已恢复为非负（{local_text(payout.back_in_credit_at)}到账）")
        elif doc is not None and doc["state"] not in FINISHED:
            deadlines.resolve(effects, rule.code, subject, at=payout.disbursed_at,
                              reason="发放前的到账记录晚到，发放后余额并未为负")

    def _closure(self, view: AccountView, teams: list, deadlines: DeadlineBatch, effects: Effects) -> None:
        if view.closed_at is None or view.balance_at_closure is None:
            return
        rule = self.closed_with_balance
        doc = deadlines.get(rule.code, view.case_no)
        if view.balance_at_closure > 0:
            if doc is None:
                deadlines.open(effects, Deadline(
                    rule=rule.code, subject=view.case_no, case_no=view.case_no, opened_at=view.closed_at,
                    due_at=None, name_zh=rule.name_zh,
                    texts=fill(rule.texts.as_dict(), balance=format_money(view.balance_at_closure)),
                    severities=rule.severities.as_dict(), teams=teams,
                    details={"balance_at_closure": format_money(view.balance_at_closure),
                             "closed_at": court_iso(view.closed_at)},
                ))
            if view.closure_paid_out_at is not None:
                deadlines.resolve(effects, rule.code, view.case_no, at=view.closure_paid_out_at,
                                  reason=f"结案时余额已全部发放（{local_text(view.closure_paid_out_at)}）")
        elif doc is not None and doc["state"] not in FINISHED:
            deadlines.resolve(effects, rule.code, view.case_no, at=view.closed_at,
                              reason="收发记录晚到，结案时账户并无余额")


def signed_money(amount: Decimal) -> str:
    """A balance may be negative (overdrawn): '-50.00'."""
    return ("-" if amount < 0 else "") + format_money(abs(amount))


def _safe_subject_case(event: Event) -> str | None:
    try:
        return _subject_case(event)
    except CaseNumberError:
        return None


def deadline_keys_for_receipt(receipt_id: str) -> list[str]:
    """The deadline documents an unidentified deposit has (loaded by _id, they have no case)."""
    return [key_of(UNIDENTIFIED, receipt_id), key_of(CLAIM, receipt_id)]


