"""Case event data (案件事件), contract §4, topic `ecc.case.events`.

The subject of every case event is the case number, so only `case.filed`
repeats it in `data`.
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field, ValidationInfo, field_validator

from shared.contract.casenumber import CaseNo, CourtCode, parse_case_no
from shared.contract.events_vocab import (
    NODE_FIELDS_REQUIRED,
    AssetKind,
    BasisKind,
    CaseType,
    ClosureMode,
    ClueReporter,
    InquiryChannel,
    NodeCode,
    PartyKind,
)
from shared.contract.identity import PartyIdNo, Phone, check_party_id
from shared.contract.messages import contract_error
from shared.contract.types import (
    Actor,
    ContractModel,
    CourtDate,
    EventData,
    EventTime,
    Identifier,
    Line,
    Money,
    Name,
    Note,
    StrictBool,
)


class Party(ContractModel):
    """当事人 party: a person (resident ID) or an organisation (USCC)."""

    name: Name
    kind: PartyKind
    id_no: PartyIdNo
    phone: Phone | None = None

    @field_validator("id_no")
    @classmethod
    def _id_fits_kind(cls, id_no: str, info: ValidationInfo) -> str:
        kind = info.data.get("kind")  # absent when `kind` itself was invalid
        return check_party_id(kind, id_no) if kind else id_no


class Basis(ContractModel):
    """执行依据 enforcement basis: the judgment, award, ... being enforced."""

    doc_no: Line
    issuing_court: Name
    kind: BasisKind


class CaseFiled(EventData):
    """立案 a case is filed."""

    event_type: ClassVar[str] = "case.filed"

    case_no: CaseNo
    case_type: CaseType
    court_code: CourtCode
    filed_on: CourtDate
    target_amount: Money
    applicants: list[Party] = Field(min_length=1)
    respondents: list[Party] = Field(min_length=1)
    basis: Basis
    previous_case_no: CaseNo | None = None
    handler: Actor | None = None

    @field_validator("case_type")
    @classmethod
    def _type_matches_case_no(cls, case_type: str, info: ValidationInfo) -> str:
        case_no = info.data.get("case_no")
        if case_no is not None:
            in_case_no = parse_case_no(case_no).case_type
            if in_case_no != case_type:
                raise contract_error("case_type_mismatch", case_type=case_type,
                                     case_no_type=in_case_no, case_no=case_no)
        return case_type

    @field_validator("court_code")
    @classmethod
    def _court_matches_case_no(cls, court_code: str, info: ValidationInfo) -> str:
        case_no = info.data.get("case_no")
        if case_no is not None:
            in_case_no = parse_case_no(case_no).court_code
            if in_case_no != court_code:
                raise contract_error("court_code_mismatch", court_code=court_code,
                                     case_no_court=in_case_no, case_no=case_no)
        return court_code


class NodeCompleted(EventData):
    """流程节点完成 a flow node is done (rules.md §1 codes)."""

    event_type: ClassVar[str] = "node.completed"

    node: NodeCode
    done_at: EventTime
    by: Actor
    ref: Identifier | None = Field(default=None, validate_default=True)
    asset_kind: AssetKind | None = Field(default=None, validate_default=True)
    note: Note | None = None

    @field_validator("ref", "asset_kind")
    @classmethod
    def _present_when_node_needs_it(cls, value: Any, info: ValidationInfo) -> Any:
        node = info.data.get("node")
        if value is None and node in NODE_FIELDS_REQUIRED[info.field_name]:
            raise contract_error("node_ref_required", node=node, field=info.field_name)
        return value


class Asset(ContractModel):
    """A property found by an inquiry (查控结果中的一项财产)."""

    ref: Identifier
    kind: AssetKind
    value: Money
    controllable: StrictBool


class PropertyInquiryResult(EventData):
    """查控结果 the result of a network or traditional property inquiry."""

    event_type: ClassVar[str] = "property.inquiry.result"

    channel: InquiryChannel
    returned_at: EventTime
    assets: list[Asset]

    @field_validator("assets")
    @classmethod
    def _refs_unique(cls, assets: list[Asset]) -> list[Asset]:
        seen: set[str] = set()
        for asset in assets:
            if asset.ref in seen:
                raise contract_error("duplicate_asset_ref", ref=asset.ref)
            seen.add(asset.ref)
        return assets


class PropertyClueRegistered(EventData):
    """财产线索登记 a property clue is registered."""

    event_type: ClassVar[str] = "property.clue.registered"

    clue_id: Identifier
    kind: AssetKind
    description: Note
    reported_by: ClueReporter
    reported_at: EventTime


class CaseTermExtended(EventData):
    """延长执行期限 the case term is extended; `new_deadline` replaces the 6-month term."""

    event_type: ClassVar[str] = "case.term_extended"

    new_deadline: CourtDate
    approved_by: Actor


class CaseClosureProposed(EventData):
    """拟结案 closure is proposed (终本 proposals are reviewed before closing)."""

    event_type: ClassVar[str] = "case.closure_proposed"

    mode: ClosureMode
    proposed_on: CourtDate
    by: Actor


class CaseClosed(EventData):
    """结案 the case is closed; `amount_recovered` is 执行到位金额."""

    event_type: ClassVar[str] = "case.closed"

    mode: ClosureMode
    closed_on: CourtDate
    amount_recovered: Money


class CaseResumed(EventData):
    """恢复执行 enforcement resumes under a new 执恢 case number."""

    event_type: ClassVar[str] = "case.resumed"

    new_case_no: CaseNo
    resumed_on: CourtDate

    @field_validator("new_case_no")
    @classmethod
    def _is_resumed_type(cls, new_case_no: str) -> str:
        case_type = parse_case_no(new_case_no).case_type
        if case_type != "执恢":
            raise contract_error("resumed_case_type", case_no=new_case_no, case_type=case_type)
        return new_case_no


CASE_EVENT_MODELS: tuple[type[EventData], ...] = (
    CaseFiled, NodeCompleted, PropertyInquiryResult, PropertyClueRegistered,
    CaseTermExtended, CaseClosureProposed, CaseClosed, CaseResumed,
)
