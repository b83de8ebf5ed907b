"""A county court's enforcement year, generated deterministically from a seed.

    from tools.workload import generate_year
    events = generate_year(seed=2025, cases=3000)            # ≈ 60,000 events, hourly ticks
    events = generate_year(2025, 300, tick_every=timedelta(days=1))   # the demo

Used by `make demo` and by replay benchmarks. Same seed and arguments give the
same events, byte for byte (`Event.to_bytes()`), ids included. Events are
sorted by event time; within one case they follow cause and effect.

What a year holds (shares are rough and drawn per case):
- filings: 执 (≈80 %), 执保 preservation (≈12 %), 执恢 resumed (≈8 %, each with
  `previous_case_no`; some resume a case this year closed as 终本, with a
  `case.resumed` on the old case), numbered per type in filing order,
  `（2025）豫0481执N号`. Parties are people (Chinese names, valid 18-digit
  resident IDs from the court's county and its neighbours) and organisations
  (valid unified social credit codes), long-tailed target amounts with a few
  ≥ 5,000,000, an enforcement basis of every kind.
- node completions (rules.md §1): most on time, some late, some missing, so
  that every node rule raises warnings and overdue alerts now and then.
- network and traditional `property.inquiry.result`s: nothing found (the most
  common outcome), some deposits, deposits covering the target, property that
  needs disposal (valuation, auction, failed auction, re-auction).
- property clues from applicants and the platform's bulk query, verified or not.
- funds: deductions and voluntary payments, a few unidentified deposits matched
  later (some after the 3-working-day claim period), payouts to the applicants
  (mostly within 30 days, some late, a few delays approved, a rare payout to a
  non-party or beyond the balance).
- closures in the six modes, mostly performed (执行完毕) and terminated_current
  (终本), 终本 proposals before closing (some too early for the review), term
  extensions for long disposals.
- `clock.tick` every `tick_every` of simulated time through the year (None: no
  ticks).

Topics: case events go to `ecc.case.events`, funds events to
`ecc.funds.events` (an unidentified deposit and its match under the key
`unmatched:<receipt_id>`), ticks to `ecc.clock` (`shared.topics.topic_for_event_type`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any, Iterable

from stdnum.cn import uscc

from shared.contract.envelope import COURT_TZ, Event, make_event
from shared.ids import derived_id

TZ = COURT_TZ
CENT = Decimal("0.01")

PROVINCE_CODES = {
    "京": "11", "津": "12", "冀": "13", "晋": "14", "蒙": "15", "辽": "21", "吉": "22", "黑": "23",
    "沪": "31", "苏": "32", "浙": "33", "皖": "34", "闽": "35", "赣": "36", "鲁": "37", "豫": "41",
    "鄂": "42", "湘": "43", "粤": "44", "桂": "45", "琼": "46", "渝": "50", "川": "51", "贵": "52",
    "云": "53", "藏": "54", "陕": "61", "甘": "62", "青": "63", "宁": "64", "新": "65",
}
COURT_NAMES = {"豫0481": "舞钢市人民法院", "豫04": "平顶山市中级人民法院"}
# Neighbouring county codes (GB/T 2260) for parties from outside the court's county.
NEIGHBOUR_REGIONS = ["410402", "410403", "410404", "410411", "410421", "410422", "410423",
                     "410425", "410482", "410102", "410105", "411102", "411121", "411302"]

SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏"
    "钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
)
# Rough frequency: the first surnames are far more common.
SURNAME_WEIGHTS = [max(1.0, 30.0 - i * 0.6) for i in range(len(SURNAMES))]
GIVEN_CHARS = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华建国建华志强海燕红梅玉兰春花国庆金凤德胜"
    "文博浩然子轩雨欣思远嘉怡俊杰宇航晓东立新卫东振华爱民淑珍丽娟红霞海涛永刚鹏飞晨阳佳琪梓涵"
)
ORG_PLACES = ["舞钢市", "舞钢市", "平顶山市", "河南"]
ORG_BRANDS = ["鑫源", "宏达", "金石", "华鼎", "恒泰", "顺发", "中原", "瑞丰", "永兴", "天成", "众诚",
              "佳和", "钢城", "龙泉", "嘉禾", "豫通", "宝隆", "昌盛", "立信", "鸿运"]
ORG_TRADES = ["商贸", "建筑工程", "钢铁贸易", "房地产开发", "物流", "农业开发", "机械制造", "建材",
              "餐饮管理", "矿业", "汽车销售", "电子科技"]
ORG_FORMS = ["有限公司", "有限公司", "有限责任公司", "股份有限公司"]
BANKS = ["中国农业银行股份有限公司舞钢支行", "中国工商银行股份有限公司舞钢支行",
         "河南舞钢农村商业银行股份有限公司", "中国邮政储蓄银行股份有限公司舞钢市支行",
         "平顶山银行股份有限公司舞钢支行"]
LAW_FIRMS = ["河南钢城律师事务所", "河南舞阳律师事务所", "河南平正律师事务所"]
HANDLERS = [f"H{n:02d}" for n in range(1, 19)]  # 承办人 ids
CHIEFS = ["B01", "B02"]  # 执行局长/副局长: approvals
FUND_CLERKS = ["F01", "F02"]

CASE_FILED = "case.filed"
NODE = "node.completed"
INQUIRY = "property.inquiry.result"
CLUE = "property.clue.registered"
TERM_EXTENDED = "case.term_extended"
CLOSURE_PROPOSED = "case.closure_proposed"
CLOSED = "case.closed"
RESUMED = "case.resumed"
RECEIVED = "funds.received"
DISBURSED = "funds.disbursed"
MATCHED = "funds.matched"
DELAY = "funds.delay_approved"
TICK = "clock.tick"


# ---------------------------------------------------------------- identity numbers

def region_of_court(court_code: str) -> str:
    """Court code → the 6-digit region code its IDs start with: 豫0481 → 410481."""
    province = PROVINCE_CODES.get(court_code[:1], "41")
    digits = "".join(c for c in court_code if c.isdigit())
    return (province + digits + "0000")[:6]


def mod11_2_check(body17: str) -> str:
    """ISO 7064 MOD 11-2 check character of the first 17 digits of a resident ID."""
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    check = (12 - sum(int(d) * w for d, w in zip(body17, weights)) % 11) % 11
    return "X" if check == 10 else str(check)


def resident_id(region: str, born: date, sequence: int) -> str:
    """A valid 18-digit resident ID (GB 11643): region, birth date, sequence, MOD 11-2 check."""
    body = f"{region}{born:%Y%m%d}{sequence:03d}"
    return body + mod11_2_check(body)


def org_code_check(body8: str) -> str:
    """GB 11714 check character of an 8-character organisation code."""
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum(alphabet.index(c) * w for c, w in zip(body8, weights))
    check = 11 - total % 11
    return {10: "X", 11: "0"}.get(check, str(check))


def social_credit_code(region: str, org_body8: str, kind: str = "91") -> str:
    """A valid unified social credit code (GB 32100): kind, region, org code, check."""
    first17 = f"{kind}{region}{org_body8}{org_code_check(org_body8)}"
    return first17 + uscc.calc_check_digit(first17)


# ---------------------------------------------------------------- calendar

@lru_cache(maxsize=4096)
def is_workday(day: date) -> bool:
    try:
        import chinese_calendar

        return chinese_calendar.is_workday(day)
    except (ImportError, NotImplementedError):
        return day.weekday() < 5


def next_workday(day: date) -> date:
    while not is_workday(day):
        day += timedelta(days=1)
    return day


def add_workdays(day: date, n: int) -> date:
    while n > 0:
        day += timedelta(days=1)
        if is_workday(day):
            n -= 1
    return day


# ---------------------------------------------------------------- the builder

@dataclass
class _Pending:
    time: datetime
    rank: int  # 0 events, 1 ticks: a tick at the same instant comes after the events
    seq: int
    type: str
    subject: str
    data: dict[str, Any]
    source: str
    id: str
    case_index: int | None = None
    post_closure: bool = False  # may follow the case's closure (終本 re-checks, renewals, resumption)


@dataclass
class _Person:
    name: str
    kind: str
    id_no: str
    phone: str | None = None

    def party(self) -> dict[str, Any]:
        out = {"name": self.name, "kind": self.kind, "id_no": self.id_no}
        if self.phone:
            out["phone"] = self.phone
        return out


@dataclass
class _Case:
    index: int
    case_type: str
    filed_at: datetime
    profile: str
    case_no: str = ""
    target: Decimal = Decimal(0)
    applicants: list[_Person] = field(default_factory=list)
    respondents: list[_Person] = field(default_factory=list)
    previous_case_no: str | None = None
    resumes_index: int | None = None
    closed_at: datetime | None = None
    closed_mode: str | None = None
    handler: str = ""
    counter: int = 0


def _money(value: Decimal | float) -> Decimal:
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def _fmt(amount: Decimal) -> str:
    return format(amount.quantize(CENT), "f")


def _iso(moment: datetime) -> str:
    return moment.astimezone(TZ).isoformat()


class _Year:
    """One simulated year of one court. Call `run()`; the result is time-ordered Events."""

    def __init__(self, seed: int, cases: int, court_code: str, year: int,
                 tick_every: timedelta | None):
        if cases < 0:
            raise ValueError("cases must be ≥ 0")
        # A seeded, reproducible simulation (bandit B311): nothing here is a secret.
        self.rng = random.Random(f"ecc-workload:{seed}:{court_code}:{year}")  # nosec B311
        self.seed = seed
        self.n_cases = cases
        self.court_code = court_code
        self.court_name = COURT_NAMES.get(court_code, f"{court_code}人民法院")
        self.region = region_of_court(court_code)
        self.year = year
        self.tick_every = tick_every
        self.start = datetime(year, 1, 1, tzinfo=TZ)
        self.end = datetime(year + 1, 1, 1, tzinfo=TZ)  # exclusive: the export stops at year end
        self.pending: list[_Pending] = []
        self.seq = 0
        self.ids_used: set[str] = set()
        self.serial = {"receipt": 0, "payout": 0, "clue": 0}
        src = self.region
        self.src_window = f"court/{src}/service-window"
        self.src_flow = f"court/{src}/case-flow"
        self.src_funds = f"court/{src}/case-funds"
        self.src_clock = "ecc/workload"
        self.serial_debtors: list[_Person] = []
        self.cases: list[_Case] = []

    # ------------------------------------------------------------ random helpers

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, options: list[Any] | tuple[Any, ...] | str, weights: list[float] | None = None) -> Any:
        return self.rng.choices(options, weights=weights, k=1)[0]

    def office_time(self, day: date) -> datetime:
        """A moment in office hours (08:30-12:00, 14:30-17:30) of a working day on/after `day`."""
        day = next_workday(day)
        if self.chance(0.55):
            minutes = self.rng.randint(8 * 60 + 30, 12 * 60 - 1)
        else:
            minutes = self.rng.randint(14 * 60 + 30, 17 * 60 + 29)
        return datetime.combine(day, time(minutes // 60, minutes % 60, self.rng.randint(0, 59)), TZ)

    def after(self, moment: datetime, lo: float, hi: float) -> datetime:
        """An office-hours moment `lo`..`hi` days after `moment`, always strictly later."""
        days = self.rng.uniform(lo, hi)
        day = (moment + timedelta(days=days)).astimezone(TZ).date()
        candidate = self.office_time(day)
        if candidate <= moment:
            candidate = moment + timedelta(minutes=self.rng.randint(5, 90))
        return candidate

    # ------------------------------------------------------------ people

    def person(self, local_share: float = 0.7) -> _Person:
        surname = self.pick(SURNAMES, SURNAME_WEIGHTS)
        given = "".join(self.rng.choice(GIVEN_CHARS) for _ in range(1 if self.chance(0.25) else 2))
        region = self.region if self.chance(local_share) else self.pick(NEIGHBOUR_REGIONS)
        born = date(1950, 1, 1) + timedelta(days=self.rng.randint(0, 52 * 365))
        while True:
            id_no = resident_id(region, born, self.rng.randint(1, 999))
            if id_no not in self.ids_used:
                break
        self.ids_used.add(id_no)
        phone = None
        if self.chance(0.75):
            phone = "1" + self.pick("35789") + "".join(str(self.rng.randint(0, 9)) for _ in range(9))
        return _Person(surname + given, "person", id_no, phone)

    def org(self, name: str | None = None, kind_code: str = "91") -> _Person:
        if name is None:
            name = (self.pick(ORG_PLACES) + self.pick(ORG_BRANDS) + self.pick(ORG_TRADES)
                    + self.pick(ORG_FORMS))
        region = self.region if self.chance(0.75) else self.pick(NEIGHBOUR_REGIONS)
        while True:
            body = "".join(self.rng.choice("0123456789ABCDEFGHJKLMNPQRTUWXY") for _ in range(8))
            code = social_credit_code(region, body, kind_code)
            if code not in self.ids_used:
                break
        self.ids_used.add(code)
        phone = None
        if self.chance(0.5):
            phone = f"0375-{self.rng.randint(2, 8)}{self.rng.randint(0, 999999):06d}"
        return _Person(name, "org", code, phone)

    # ------------------------------------------------------------ amounts

    def target_amount(self, case_type: str) -> Decimal:
        if self.chance(0.015):  # a few large cases (rules.md §2 line 4: ≥ 5,000,000)
            value = self.rng.uniform(5_000_000, 30_000_000)
        else:
            value = self.rng.lognormvariate(10.9, 1.25)  # median ≈ 54,000 yuan
            value = min(max(value, 800.0), 4_900_000.0)
        if case_type == "执保":
            value *= self.rng.uniform(0.8, 1.2)
        if self.chance(0.45):
            return _money(round(value, -2 if value > 10_000 else 0))
        return _money(value)

    # ------------------------------------------------------------ events

    def emit(self, case: _Case | None, moment: datetime, type_: str, data: dict[str, Any],
             *, subject: str | None = None, source: str | None = None,
             post_closure: bool = False) -> None:
        if case is not None:
            case.counter += 1
            event_id = f"wl{self.seed}-{self.year}-c{case.index:05d}-{case.counter:03d}"
            subject = subject or case.case_no
        else:
            event_id = f"wl{self.seed}-{self.year}-x{self.seq:07d}"
        self.seq += 1
        self.pending.append(_Pending(moment, 0, self.seq, type_, subject or "", data,
                                     source or self.src_flow, event_id,
                                     case.index if case is not None else None, post_closure))

    def node(self, case: _Case, moment: datetime, node: str, *, ref: str | None = None,
             asset_kind: str | None = None, note: str | None = None, by: str | None = None,
             post_closure: bool = False) -> None:
        data: dict[str, Any] = {"node": node, "done_at": _iso(moment), "by": by or case.handler}
        if ref:
            data["ref"] = ref
        if asset_kind:
            data["asset_kind"] = asset_kind
        if note:
            data["note"] = note
        self.emit(case, moment, NODE, data, post_closure=post_closure)

    def next_id(self, kind: str, prefix: str) -> str:
        self.serial[kind] += 1
        return f"{prefix}{self.year}{self.court_digits}{self.serial[kind]:06d}"

    @property
    def court_digits(self) -> str:
        return self.region[-4:]

    # ------------------------------------------------------------ the year

    def run(self) -> list[Event]:
        cases = self.cases = self.plan_cases()
        for case in cases:
            self.simulate(case, cases)
        self.ticks()
        return self.finish()

    def plan_cases(self) -> list[_Case]:
        days = [self.start.date() + timedelta(days=i) for i in range((self.end - self.start).days)]
        workdays = [d for d in days if is_workday(d)]
        # Fewer filings in the first weeks and around Spring Festival, more in autumn: a mild weight.
        weights = [0.7 if d.month in (1, 2) else 1.2 if d.month in (9, 10, 11) else 1.0 for d in workdays]
        planned = []
        for index in range(self.n_cases):
            case_type = self.pick(["执", "执保", "执恢"], [80, 12, 8])
            filed_day = self.pick(workdays, weights) if workdays else self.start.date()
            planned.append((filed_day, index, case_type))
        planned.sort()
        cases = []
        for order, (filed_day, _index, case_type) in enumerate(planned):
            filed_at = self.office_time(filed_day)
            if case_type == "执保":
                profile = self.pick(["found", "nothing"], [75, 25])
            elif case_type == "执恢":
                profile = self.pick(["partial", "full_deposit", "disposal", "nothing"], [30, 20, 35, 15])
            else:
                profile = self.pick(["nothing", "partial", "full_deposit", "disposal", "performs"],
                                    [40, 22, 13, 20, 5])
            cases.append(_Case(order + 1, case_type, filed_at, profile))
        # Case numbers per type in filing order (ties on the day broken by the office time).
        cases.sort(key=lambda c: (c.filed_at, c.index))
        numbers: dict[str, int] = {}
        for order, case in enumerate(cases, start=1):
            case.index = order
            numbers[case.case_type] = numbers.get(case.case_type, 0) + 1
            case.case_no = f"（{self.year}）{self.court_code}{case.case_type}{numbers[case.case_type]}号"
            case.handler = self.pick(HANDLERS)
        return cases

    # ------------------------------------------------------------ one case

    def simulate(self, case: _Case, all_cases: list[_Case]) -> None:
        rng = self.rng
        case.target = self.target_amount(case.case_type)
        large = case.target >= 1_000_000
        # Applicants: people, companies, and banks for loan debts.
        n_app = 2 if self.chance(0.08) else 1
        for _ in range(n_app):
            if large and self.chance(0.4):
                case.applicants.append(self.org(self.pick(BANKS)))
            elif self.chance(0.22):
                case.applicants.append(self.org())
            else:
                case.applicants.append(self.person())
        n_resp = self.pick([1, 2, 3, 4], [70, 20, 7, 3])
        for _ in range(n_resp):
            if self.serial_debtors and self.chance(0.06):
                debtor = self.pick(self.serial_debtors)
            elif self.chance(0.25):
                debtor = self.org()
                if self.chance(0.3):
                    self.serial_debtors.append(debtor)
            else:
                debtor = self.person()
            if all(debtor.id_no != p.id_no for p in case.respondents + case.applicants):
                case.respondents.append(debtor)
        if case.case_type == "执恢":
            self.link_previous(case, all_cases)
        self.file(case)
        if case.case_type == "执保":
            self.preservation_flow(case)
        else:
            self.enforcement_flow(case)

    def basis(self, case: _Case) -> dict[str, Any]:
        y = case.filed_at.year - (1 if self.chance(0.6) else 0)
        own = self.court_name
        if case.case_type == "执保":
            if self.chance(0.6):
                return {"doc_no": f"（{case.filed_at.year}）{self.court_code}财保{rng_int(self, 1, 400)}号",
                        "issuing_court": own, "kind": "ruling"}
            return {"doc_no": f"（{case.filed_at.year}）{self.court_code}民初{rng_int(self, 1, 6000)}号",
                    "issuing_court": own, "kind": "ruling"}
        kind = self.pick(["judgment", "mediation", "ruling", "arbitration", "notarial", "other"],
                         [55, 25, 5, 7, 5, 3])
        if kind == "judgment":
            if self.chance(0.2):
                return {"doc_no": f"（{y}）豫04民终{rng_int(self, 1, 3000)}号",
                        "issuing_court": COURT_NAMES["豫04"], "kind": kind}
            return {"doc_no": f"（{y}）{self.court_code}民初{rng_int(self, 1, 6000)}号",
                    "issuing_court": own, "kind": kind}
        if kind in ("mediation", "ruling"):
            return {"doc_no": f"（{y}）{self.court_code}民初{rng_int(self, 1, 6000)}号",
                    "issuing_court": own, "kind": kind}
        if kind == "arbitration":
            return {"doc_no": f"平仲裁字〔{y}〕第{rng_int(self, 1, 900)}号",
                    "issuing_court": "平顶山仲裁委员会", "kind": kind}
        if kind == "notarial":
            return {"doc_no": f"（{y}）豫平顶山证经字第{rng_int(self, 1, 2000)}号",
                    "issuing_court": "河南省平顶山市公证处", "kind": kind}
        return {"doc_no": f"舞人社监罚〔{y}〕{rng_int(self, 1, 90)}号",
                "issuing_court": "舞钢市人力资源和社会保障局", "kind": "other"}

    def link_previous(self, case: _Case, all_cases: list[_Case]) -> None:
        """执恢: resume an earlier 终本 case, from this year when one is ripe, else from before."""
        ripe = [c for c in all_cases
                if c.closed_mode == "terminated_current" and c.resumes_index is None
                and c.case_type == "执" and c.closed_at is not None
                and c.closed_at + timedelta(days=30) < case.filed_at]
        if ripe and self.chance(0.5):
            old = self.pick(ripe)
            old.resumes_index = case.index
            case.previous_case_no = old.case_no
            # The platform's bulk query finds property first; the case is then resumed.
            found_at = self.after(max(old.closed_at, case.filed_at - timedelta(days=25)), 0.5, 3)
            if found_at >= case.filed_at:
                found_at = case.filed_at - timedelta(hours=self.rng.randint(2, 48))
            if found_at > old.closed_at:
                clue_id = self.next_id("clue", "XS")
                self.emit(old, found_at, CLUE, {
                    "clue_id": clue_id, "kind": self.pick(["deposit", "vehicle", "real_estate"]),
                    "description": "总对总平台批量查询发现被执行人名下新增财产",
                    "reported_by": "platform_bulk_query", "reported_at": _iso(found_at)},
                    post_closure=True)
            resumed_at = case.filed_at - timedelta(minutes=self.rng.randint(1, 30))
            self.emit(old, resumed_at, RESUMED, {"new_case_no": case.case_no,
                                                 "resumed_on": resumed_at.date().isoformat()},
                      post_closure=True)
            return
        prev_year = case.filed_at.year - self.pick([1, 2, 3, 4], [40, 30, 20, 10])
        case.previous_case_no = f"（{prev_year}）{self.court_code}执{rng_int(self, 1, 3200)}号"

    def file(self, case: _Case) -> None:
        data: dict[str, Any] = {
            "case_no": case.case_no, "case_type": case.case_type, "court_code": self.court_code,
            "filed_on": case.filed_at.date().isoformat(), "target_amount": _fmt(case.target),
            "applicants": [p.party() for p in case.applicants],
            "respondents": [p.party() for p in case.respondents],
            "basis": self.basis(case), "handler": case.handler,
        }
        if case.previous_case_no:
            data["previous_case_no"] = case.previous_case_no
        self.emit(case, case.filed_at, CASE_FILED, data, source=self.src_window)

    # ------------------------------------------------------------ assets

    def assets_for(self, case: _Case, profile: str, prefix: str) -> list[dict[str, Any]]:
        target = case.target
        assets: list[dict[str, Any]] = []
        n = 0

        def add(kind: str, value: Decimal, controllable: bool = True) -> None:
            nonlocal n
            n += 1
            assets.append({"ref": f"{prefix}{n}", "kind": kind, "value": _fmt(value),
                           "controllable": controllable})

        if profile == "nothing":
            if self.chance(0.5):  # accounts found, all empty
                for _ in range(self.rng.randint(1, 3)):
                    add("deposit", Decimal("0.00"))
        elif profile in ("partial", "performs"):
            share = self.rng.uniform(0.03, 0.8)
            parts = self.rng.randint(1, 3)
            for _ in range(parts):
                add("deposit", max(_money(target * Decimal(str(share)) / parts), Decimal("1.00")))
        elif profile == "full_deposit":
            add("deposit", _money(target * Decimal(str(self.rng.uniform(1.0, 1.6)))))
            if self.chance(0.3):
                add("deposit", _money(self.rng.uniform(10, 5000)))
        elif profile in ("disposal", "found"):
            kind = self.pick(["real_estate", "vehicle", "equity", "securities", "other"], [45, 35, 8, 4, 8])
            ratio = self.rng.uniform(0.4, 2.5)
            add(kind, _money(target * Decimal(str(ratio))))
            if self.chance(0.15):  # e.g. a mortgaged flat: found but not controllable
                add("real_estate", _money(target * Decimal(str(self.rng.uniform(0.5, 2)))), False)
            if self.chance(0.4):
                add("deposit", _money(target * Decimal(str(self.rng.uniform(0.01, 0.2)))))
        return assets

    # ------------------------------------------------------------ funds

    def receive(self, case: _Case, moment: datetime, amount: Decimal, payer: str,
                closes_by: list[datetime]) -> Decimal:
        """A receipt for the case (sometimes an unidentified deposit matched later) and its payouts.

        Returns the amount that reached the case's account (0 for a deposit never
        claimed); the payout time, when there is one this year, goes to `closes_by`.
        """
        amount = _money(amount)
        if amount <= 0:
            return Decimal(0)
        receipt_id = self.next_id("receipt", "SK")
        if self.chance(0.05):  # 不明款: the payer gave no case number
            key = f"unmatched:{receipt_id}"
            self.emit(case, moment, RECEIVED, {
                "receipt_id": receipt_id, "amount": _fmt(amount), "payer_name": payer,
                "received_at": _iso(moment)}, subject=key, source=self.src_funds)
            if self.chance(0.8):
                matched_day = add_workdays(moment.date(), self.rng.randint(1, 3))
            else:
                matched_day = add_workdays(moment.date(), self.rng.randint(4, 9))
            matched_at = self.office_time(matched_day)
            if matched_at <= moment:
                matched_at = moment + timedelta(hours=2)
            if self.chance(0.97):
                self.emit(case, matched_at, MATCHED, {
                    "receipt_id": receipt_id, "case_no": case.case_no, "matched_at": _iso(matched_at)},
                    subject=key, source=self.src_funds)
            else:
                return Decimal(0)  # never claimed this year
            ready = matched_at
        else:
            self.emit(case, moment, RECEIVED, {
                "receipt_id": receipt_id, "case_no": case.case_no, "amount": _fmt(amount),
                "payer_name": payer, "received_at": _iso(moment)}, source=self.src_funds)
            ready = moment
        # Payouts: mostly within 30 days (法发〔2017〕6号), some late, a few delays approved.
        roll = self.rng.random()
        if roll < 0.03:
            until = (moment + timedelta(days=self.rng.randint(40, 80))).date()
            self.emit(case, self.after(moment, 5, 15), DELAY, {
                "case_no": case.case_no, "until": until.isoformat(),
                "reason": self.pick(["案外人提出异议，待审查", "申请执行人账户冻结，暂缓发放", "当事人申请暂缓领取"]),
                "approved_by": self.pick(CHIEFS)}, source=self.src_funds)
            pay_at = self.office_time(until - timedelta(days=self.rng.randint(1, 10)))
        elif roll < 0.85:
            pay_at = self.after(ready, 3, 25)
        elif roll < 0.95:
            pay_at = self.after(ready, 31, 60)
        else:
            return amount  # not paid out this year (yet)
        if pay_at <= ready:
            pay_at = ready + timedelta(hours=3)
        total_share = Decimal(0)
        payees = list(case.applicants)
        for i, payee in enumerate(payees):
            share = _money(amount / len(payees)) if i < len(payees) - 1 else amount - total_share
            total_share += share
            name, id_no = payee.name, payee.id_no
            if self.chance(0.012):  # paid to the applicant's lawyer: not a party of the case
                firm = self.org(self.pick(LAW_FIRMS), kind_code="31")
                name, id_no = firm.name, firm.id_no
            if self.chance(0.004):  # a clerical error: more than the balance
                share += _money(self.rng.uniform(100, 5000))
            self.emit(case, pay_at + timedelta(minutes=i), DISBURSED, {
                "payout_id": self.next_id("payout", "FK"), "case_no": case.case_no,
                "amount": _fmt(share), "payee_name": name, "payee_id_no": id_no,
                "approved_by": self.pick(CHIEFS), "disbursed_at": _iso(pay_at + timedelta(minutes=i))},
                source=self.src_funds)
        closes_by.append(pay_at + timedelta(minutes=len(payees)))
        return amount

    # ------------------------------------------------------------ flows

    def preservation_flow(self, case: _Case) -> None:
        """执保: network inquiry at filing, controls within days, closed when done."""
        t0 = case.filed_at
        launched = self.after(t0, 0, 1.5)
        self.node(case, launched, "network_inquiry_launched")
        result_at = self.after(launched, 0.5, 3)
        profile = case.profile
        assets = self.assets_for(case, "found" if profile == "found" else "nothing", "BQ")
        self.emit(case, result_at, INQUIRY, {"channel": "network", "returned_at": _iso(result_at),
                                              "assets": assets})
        last = result_at
        controllable = [a for a in assets if a["controllable"] and Decimal(a["value"]) > 0]
        for asset in controllable:
            roll = self.rng.random()
            if roll < 0.8:
                at = self.after(result_at, 0.2, 3)
            elif roll < 0.9:
                at = self.after(result_at, 6, 14)
            else:
                continue  # never controlled: node.preservation overdue
            self.node(case, at, "property_controlled", ref=asset["ref"], asset_kind=asset["kind"])
            last = max(last, at)
        if self.chance(0.85):
            self.close(case, self.after(last, 5, 40), "performed", Decimal(0))

    def enforcement_flow(self, case: _Case) -> None:
        """执 / 执恢: notice, report order, inquiries, controls, disposal, funds, closure."""
        t0 = case.filed_at
        profile = case.profile
        events_at: list[datetime] = [t0]  # every fact's time, for the closure's lower bound
        payouts_done: list[datetime] = []
        recovered = Decimal(0)

        # Notice and report order (usually served together).
        roll = self.rng.random()
        notice_at = None
        if roll < 0.82:
            notice_at = self.after(t0, 0.5, self.pick([3, 6, 9], [60, 30, 10]))
        elif roll < 0.92:
            notice_at = self.after(t0, 11, 30)  # late: node.notice overdue
        # Served on each respondent; the first service is what the node rules await.
        served_at = notice_at
        for respondent in case.respondents if notice_at else []:
            how = self.pick(["电子送达", "邮寄送达", "直接送达", "公告送达"], [40, 35, 20, 5])
            self.node(case, served_at, "notice_served", note=f"{respondent.name}：{how}")
            events_at.append(served_at)
            if self.chance(0.9):
                order_at = served_at + timedelta(minutes=self.rng.randint(1, 20))
                self.node(case, order_at, "property_report_order_served", note=respondent.name)
                events_at.append(order_at)
            elif self.chance(0.6):
                order_at = self.after(served_at, 1, 20)
                self.node(case, order_at, "property_report_order_served", note=respondent.name)
                events_at.append(order_at)
            served_at = self.after(served_at, 0, 6)

        # First network inquiry (总对总网络查控).
        roll = self.rng.random()
        launched = None
        if roll < 0.86:
            launched = self.after(t0, 0, 4)
        elif roll < 0.95:
            launched = self.after(t0, 6, 20)
        if launched:
            self.node(case, launched, "network_inquiry_launched")
            result_at = self.after(launched, 1, 7)
            assets = self.assets_for(case, profile, "A")
            self.emit(case, result_at, INQUIRY, {"channel": "network", "returned_at": _iso(result_at),
                                                  "assets": assets})
            events_at.append(result_at)
        else:
            result_at, assets = None, []

        # Respondent performs voluntarily after the notice.
        if profile == "performs" and notice_at:
            parts = self.pick([1, 2, 3, 4], [50, 25, 15, 10])
            recovered += self.installments(case, self.after(notice_at, 3, 25), case.target, parts,
                                           payouts_done, events_at)

        # Controls and deductions of what the inquiry found.
        controllable = [a for a in assets if a["controllable"] and Decimal(a["value"]) > 0]
        still_owed = case.target - recovered
        disposal_asset = None
        for asset in controllable:
            if result_at is None:
                break
            roll = self.rng.random()
            if roll < 0.9:
                at = self.after(result_at, 0.2, 5)
            elif roll < 0.96:
                at = self.after(result_at, 6, 15)
            else:
                continue
            self.node(case, at, "property_controlled", ref=asset["ref"], asset_kind=asset["kind"])
            events_at.append(at)
            if asset["kind"] == "deposit" and still_owed > 0:
                take = min(Decimal(asset["value"]), still_owed)
                deducted_at = self.after(at, 3, 20)
                got = self.receive(case, deducted_at, take, case.respondents[0].name, payouts_done)
                recovered += got
                still_owed -= got
                events_at.append(deducted_at)
            elif asset["kind"] != "deposit" and disposal_asset is None:
                disposal_asset = (asset, at)
            # Deposits frozen early in the year and not yet released: renewal before a year.
            if asset["kind"] == "deposit" and take_renewal(self, at):
                renew_at = self.after(at, 330, 360)
                self.node(case, renew_at, "control_renewed", ref=asset["ref"], post_closure=True)

        # Traditional inquiries (传统查控: land registry, vehicle office, housing fund...):
        # most cases, one to three, weeks apart; sometimes they find a vehicle or a flat.
        places = ["不动产登记中心", "车辆管理所", "住房公积金管理中心", "市场监督管理局", "社保中心"]
        n_trad = self.pick([0, 1, 2, 3], [25, 30, 27, 18])
        done_at = t0
        for k in range(1, n_trad + 1):
            done_at = self.after(done_at if k > 1 else t0, 7 if k > 1 else 10, 30 if k > 1 else 45)
            self.node(case, done_at, "traditional_inquiry_done", note=self.pick(places))
            trad_assets: list[dict[str, Any]] = []
            if self.chance(0.06):
                trad_assets.append({"ref": f"T{k}", "kind": self.pick(["vehicle", "real_estate", "other"]),
                                    "value": _fmt(_money(float(case.target) * self.rng.uniform(0.1, 0.8))),
                                    "controllable": self.chance(0.7)})
            returned = done_at + timedelta(minutes=self.rng.randint(10, 120))
            self.emit(case, returned, INQUIRY, {"channel": "traditional", "returned_at": _iso(returned),
                                                 "assets": trad_assets})
            events_at.append(returned)
            for asset in trad_assets:
                if asset["controllable"] and self.chance(0.85):
                    at = self.after(returned, 1, 6)
                    self.node(case, at, "property_controlled", ref=asset["ref"], asset_kind=asset["kind"])
                    events_at.append(at)

        # Property clues from the applicant (about 1 case in 3).
        if self.chance(0.3):
            for _ in range(self.rng.randint(1, 2)):
                reported = self.after(t0, 10, 90)
                clue_id = self.next_id("clue", "XS")
                kind = self.pick(["vehicle", "real_estate", "deposit", "equity", "other"], [35, 25, 20, 5, 15])
                self.emit(case, reported, CLUE, {
                    "clue_id": clue_id, "kind": kind,
                    "description": self.pick(CLUE_TEXTS[kind]),
                    "reported_by": self.pick(["applicant", "other"], [90, 10]),
                    "reported_at": _iso(reported)})
                events_at.append(reported)
                roll = self.rng.random()
                if roll < 0.8:
                    verified = self.after(reported, 1, 6)
                elif roll < 0.9:
                    verified = self.after(reported, 8, 20)
                else:
                    continue
                self.node(case, verified, "clue_verified", ref=clue_id,
                          note=self.pick(["经核查无可供执行财产", "线索属实，已采取控制措施", "线索不实"]))
                events_at.append(verified)

        # Measures against the respondent.
        # Restrictions are ordered per respondent (限制消费令, 失信名单).
        if profile in ("nothing", "partial", "disposal") and self.chance(0.75):
            listed = profile != "disposal" and self.chance(0.45)
            for respondent in case.respondents:
                at = self.after(t0, 2, 15)
                self.node(case, at, "consumption_restricted", note=respondent.name)
                events_at.append(at)
                if listed:
                    at = self.after(t0, 20, 60)
                    self.node(case, at, "dishonest_listed", note=respondent.name)
                    events_at.append(at)
        if self.chance(0.4):
            at = self.after(t0, 5, 40)
            self.node(case, at, "respondent_questioned")
            events_at.append(at)
        interviewed = profile in ("nothing", "partial") and self.chance(0.8)
        if interviewed:
            at = self.after(t0, 30, 80)
            self.node(case, at, "applicant_interviewed")
            events_at.append(at)

        # Property investigation done within a month, mostly.
        roll = self.rng.random()
        if roll < 0.8:
            at = self.after(t0, 10, 28)
        elif roll < 0.9:
            at = self.after(t0, 33, 60)
        else:
            at = None
        if at:
            self.node(case, at, "investigation_completed")
            events_at.append(at)

        # Disposal of seized property: valuation, auction, maybe a failed auction, sale.
        disposal_done = None
        if disposal_asset is not None:
            asset, controlled_at = disposal_asset
            valued = self.after(controlled_at, 15, 50)
            self.node(case, valued, "valuation_completed", ref=asset["ref"])
            listed = self.after(valued, 5, 25) if self.chance(0.85) else self.after(valued, 31, 50)
            self.node(case, listed, "auction_listed", ref=asset["ref"])
            last = listed
            if self.chance(0.35):
                failed = self.after(listed, 30, 35)
                self.node(case, failed, "auction_failed", ref=asset["ref"])
                relisted = self.after(failed, 10, 25) if self.chance(0.8) else self.after(failed, 32, 45)
                self.node(case, relisted, "auction_listed", ref=asset["ref"], note="二拍")
                last = relisted
            if self.chance(0.85):
                disposal_done = self.after(last, 30, 40)
                self.node(case, disposal_done, "disposal_concluded", ref=asset["ref"])
                proceeds = min(_money(Decimal(asset["value"]) * Decimal(str(self.rng.uniform(0.55, 0.9)))),
                               case.target - recovered)
                if proceeds > 0:
                    buyer = self.person(local_share=0.5)
                    paid = self.after(disposal_done, 1, 10)
                    recovered += self.receive(case, paid, proceeds, buyer.name, payouts_done)
                    events_at.append(paid)
                events_at.append(disposal_done)
            # Long disposals get the term extended (case.term_extended) before 6 months run out.
            six_months = add_months(t0, 6)
            if last > six_months - timedelta(days=45) and self.chance(0.75):
                ext_at = self.office_time((six_months - timedelta(days=self.rng.randint(5, 25))).date())
                if ext_at > t0:
                    self.emit(case, ext_at, TERM_EXTENDED, {
                        "new_deadline": add_months(t0, self.pick([9, 12])).date().isoformat(),
                        "approved_by": self.pick(CHIEFS)})

        # A partial payer settles the rest in instalments (分期履行) in about a third of cases.
        if profile == "partial" and recovered < case.target and self.chance(0.35):
            start = self.after(max(events_at), 10, 40)
            recovered += self.installments(case, start, case.target - recovered,
                                           self.rng.randint(2, 5), payouts_done, events_at)

        # Closure.
        floor = max(events_at + payouts_done)
        mode, closed_at = self.closure_plan(case, profile, recovered, floor, disposal_done, interviewed)
        # Cases still open near the 6-month term: the bureau chief extends some (延长执行期限).
        six_months = add_months(t0, 6)
        if (mode is None or closed_at > six_months) and self.chance(0.4):
            ext_at = self.office_time((six_months - timedelta(days=self.rng.randint(5, 25))).date())
            if t0 < ext_at < six_months:
                self.emit(case, ext_at, TERM_EXTENDED, {
                    "new_deadline": add_months(t0, self.pick([9, 12])).date().isoformat(),
                    "approved_by": self.pick(CHIEFS)})
        if mode is None:
            self.reinquiries(case, result_at, None)
            return
        if mode == "terminated_current":
            if self.chance(0.95):
                proposed = closed_at - timedelta(days=self.rng.randint(3, 15))
                proposed = max(proposed, floor + timedelta(minutes=5))
                if proposed < closed_at:
                    self.emit(case, proposed, CLOSURE_PROPOSED, {
                        "mode": mode, "proposed_on": proposed.date().isoformat(), "by": case.handler})
        elif mode in ("terminated", "withdrawn") and self.chance(0.5):
            proposed = max(closed_at - timedelta(days=self.rng.randint(2, 7)), floor + timedelta(minutes=5))
            if proposed < closed_at:
                self.emit(case, proposed, CLOSURE_PROPOSED, {
                    "mode": mode, "proposed_on": proposed.date().isoformat(), "by": case.handler})
        self.reinquiries(case, result_at, closed_at)
        self.close(case, closed_at, mode, recovered)

    def installments(self, case: _Case, first_at: datetime, total: Decimal, parts: int,
                     payouts_done: list[datetime], events_at: list[datetime]) -> Decimal:
        """The respondent pays `total` in `parts` monthly instalments; returns what arrived."""
        got = Decimal(0)
        paid_so_far = Decimal(0)
        at = first_at
        for i in range(parts):
            amount = _money(total / parts) if i < parts - 1 else total - paid_so_far
            paid_so_far += amount
            if at >= self.end:
                break
            got += self.receive(case, at, amount, case.respondents[0].name, payouts_done)
            events_at.append(at)
            at = self.after(at, 25, 35)
        return got

    def reinquiries(self, case: _Case, first_result: datetime | None, closed_at: datetime | None) -> None:
        """Open cases are queried again through the network every three months or so."""
        if first_result is None:
            return
        stop = min(closed_at or self.end, self.end)
        at = self.after(first_result, 50, 70)
        while at < stop:
            self.node(case, at, "network_inquiry_launched", note="定期复查")
            returned = self.after(at, 1, 5)
            assets = []
            if self.chance(0.4):
                assets = [{"ref": f"R{at:%m%d}-{i}", "kind": "deposit", "value": "0.00", "controllable": True}
                          for i in range(1, self.rng.randint(1, 3) + 1)]
            self.emit(case, returned, INQUIRY, {"channel": "network", "returned_at": _iso(returned),
                                                 "assets": assets})
            at = self.after(returned, 50, 70)

    def closure_plan(self, case: _Case, profile: str, recovered: Decimal, floor: datetime,
                     disposal_done: datetime | None, interviewed: bool) -> tuple[str | None, datetime]:
        t0 = case.filed_at
        if recovered >= case.target:
            return "performed", self.after(floor, 1, 12)
        roll = self.rng.random() if recovered == 0 else 1.0
        if roll < 0.04:
            return "withdrawn", self.after(t0, 15, 90)  # settled outside the court, 销案
        if roll < 0.07:
            return "terminated", self.after(t0, 30, 150)  # e.g. the respondent died without estate
        if roll < 0.08:
            return "rejected", self.after(t0, 5, 30)
        if roll < 0.09:
            return "not_enforced", self.after(t0, 10, 60)
        if profile == "partial" and self.chance(0.3):
            return "performed", self.after(floor, 5, 40)  # applicant accepts a settlement: 和解履行完毕
        if profile in ("nothing", "partial") or (profile == "disposal" and disposal_done is not None):
            roll = self.rng.random()
            if roll < 0.82:
                at = self.after(t0, 92, 150)  # 终本 after the 3-month minimum
            elif roll < 0.92:
                at = self.after(t0, 45, 85)  # too early: review misses min_duration
            else:
                return None, t0  # still open: term runs out
            return "terminated_current", max(at, self.after(floor, 1, 5))
        return None, t0

    def close(self, case: _Case, closed_at: datetime, mode: str, recovered: Decimal) -> None:
        if closed_at >= self.end:
            return
        self.emit(case, closed_at, CLOSED, {"mode": mode, "closed_on": closed_at.date().isoformat(),
                                             "amount_recovered": _fmt(recovered)})
        case.closed_at, case.closed_mode = closed_at, mode
        if mode == "terminated_current":
            # 终本 cases: the platform's periodic bulk query keeps looking (rules.md §5 re-check).
            for months in (6,):
                query_at = self.office_time((closed_at + timedelta(days=30 * months - 10)).date())
                if query_at < self.end and self.chance(0.6):
                    self.emit(case, query_at, INQUIRY, {"channel": "network", "returned_at": _iso(query_at),
                                                         "assets": []}, post_closure=True)

    # ------------------------------------------------------------ ticks and output

    def ticks(self) -> None:
        if not self.tick_every:
            return
        if self.tick_every <= timedelta(0):
            raise ValueError("tick_every must be positive")
        moment = self.start
        while moment < self.end:
            stamp = moment.replace(microsecond=0)
            self.seq += 1
            self.pending.append(_Pending(stamp, 1, self.seq, TICK, "clock", {"now": _iso(stamp)},
                                         self.src_clock, derived_id(TICK, _iso(stamp))))
            moment += self.tick_every

    def finish(self) -> list[Event]:
        closed = {c.index: c.closed_at for c in self.cases if c.closed_at is not None}
        kept = [p for p in self.pending if self.start <= p.time < self.end
                and (p.post_closure or p.case_index not in closed or p.time <= closed[p.case_index])]
        kept.sort(key=lambda p: (p.time, p.rank, p.seq))
        return [make_event(type=p.type, subject=p.subject, time=p.time, data=p.data,
                           source=p.source, id=p.id) for p in kept]


CLUE_TEXTS = {
    "vehicle": ["被执行人名下有一辆小型轿车，常停放于舞钢市垭口街道", "被执行人驾驶的货车实际归其所有"],
    "real_estate": ["被执行人在舞钢市院岭路有住房一套", "被执行人在平顶山市新华区购有商铺"],
    "deposit": ["被执行人在农商行开有账户，近期有资金往来", "被执行人微信、支付宝账户有收入"],
    "equity": ["被执行人持有某商贸公司30%股权"],
    "other": ["被执行人在工地有未结工程款", "被执行人有到期债权未收回"],
}


def rng_int(year: _Year, lo: int, hi: int) -> int:
    return year.rng.randint(lo, hi)


def take_renewal(year: _Year, controlled_at: datetime) -> bool:
    """Renew a deposit freeze (1 year) only when the renewal falls inside the simulated year."""
    return controlled_at.month <= 1 and year.chance(0.7)


def add_months(moment: datetime, months: int) -> datetime:
    """Same day-of-month `months` later (last day of the month when shorter), rules.md §0."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    for day in (moment.day, 30, 29, 28):
        try:
            return moment.replace(year=year, month=month, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def generate_year(seed: int, cases: int, court_code: str = "豫0481", year: int = 2025, *,
                  tick_every: timedelta | None = timedelta(hours=1)) -> list[Event]:
    """A deterministic enforcement year of one court: `cases` filings and all that follows.

    Returns contract Events sorted by event time (a tick after the events of its
    instant). Only events inside the calendar year are kept, so late cases are
    still open at the end. `tick_every=None` leaves the clock out.
    """
    return _Year(seed, cases, court_code, year, tick_every).run()


def topic_suffix(event: Event) -> str:
    """The registry suffix of the topic an event travels on (shared.topics)."""
    from shared.topics import topic_for_event_type

    return topic_for_event_type(event.type).suffix


def summarize(events: Iterable[Event]) -> dict[str, int]:
    """Counts per event type, for reports."""
    counts: dict[str, int] = {}
    for event in events:
        counts[event.type] = counts.get(event.type, 0) + 1
    return dict(sorted(counts.items()))


def main(argv: list[str] | None = None) -> int:
    """python -m tools.workload [--seed N] [--cases N] [--tick-hours H] [--out FILE.jsonl]"""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m tools.workload", description=main.__doc__)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--cases", type=int, default=3000)
    parser.add_argument("--court-code", default="豫0481")
    parser.add_argument("--year", type=int, default=2025)
    parser.add_argument("--tick-hours", type=float, default=1.0, help="0 for no ticks")
    parser.add_argument("--out", help="write JSON lines here (default: only print counts)")
    args = parser.parse_args(argv)
    tick = timedelta(hours=args.tick_hours) if args.tick_hours > 0 else None
    events = generate_year(args.seed, args.cases, args.court_code, args.year, tick_every=tick)
    if args.out:
        with open(args.out, "wb") as out:
            for event in events:
                out.write(event.to_bytes() + b"\n")
    for type_, count in summarize(events).items():
        print(f"{type_:<28} {count:>7}")
    print(f"{'total':<28} {len(events):>7}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
