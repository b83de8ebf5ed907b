"""API answers mask ID and phone numbers for roles without case_read_personal."""
from __future__ import annotations

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from shared.security import Permission, Principal, Role, install_security, present, require
from shared.security.access import get_policy
from shared.security.testing import auth_header, test_settings

RESIDENT_ID = "11010519491231002X"
MOBILE = "13812345678"
SETTINGS = test_settings()


class Party(BaseModel):
    name: str
    id_no: str
    phone: str


CASE = {
    "case_no": "(2024)豫0481执1234号",
    "amount": "13812345678.00",
    "parties": [{"name": "张三", "id_no": RESIDENT_ID, "phone": MOBILE}],
    "note": f"申请人电话 {MOBILE}，身份证 {RESIDENT_ID}",
}


@pytest.fixture(scope="module")
def client():
    app = FastAPI()

    @app.get("/cases/{case_no}")
    async def read_case(case_no: str, principal: Principal = Depends(require(Permission.CASE_READ))):
        return present(principal, CASE)

    install_security(app, "masking-test", SETTINGS)
    with TestClient(app) as c:
        yield c


READERS = sorted(get_policy().roles_with(Permission.CASE_READ), key=lambda r: r.value)


@pytest.mark.parametrize("role", READERS, ids=lambda r: r.value)
def test_masking_by_role(client, role):
    body = client.get("/cases/x", headers=auth_header(role, team="quick", settings=SETTINGS)).text
    personal = Permission.CASE_READ_PERSONAL in get_policy().permissions[role]
    assert (RESIDENT_ID in body) is personal
    assert (MOBILE in body.replace("13812345678.00", "")) is personal
    if not personal:
        assert "110***********002X" in body and "138****5678" in body
    assert "13812345678.00" in body and "执1234号" in body  # amounts and case numbers stay readable


def test_who_sees_personal_numbers():
    assert get_policy().roles_with(Permission.CASE_READ_PERSONAL) == {
        Role.WINDOW_CLERK, Role.CASE_HANDLER, Role.BUREAU_CHIEF}


def test_present_accepts_models_and_leaves_the_original_alone():
    party = Party(name="张三", id_no=RESIDENT_ID, phone=MOBILE)
    masked = present(Principal("o", [Role.OPERATOR]), party)
    assert masked == {"name": "张三", "id_no": "110***********002X", "phone": "138****5678"}
    assert party.id_no == RESIDENT_ID
    assert present(Principal("c", [Role.BUREAU_CHIEF]), party)["id_no"] == RESIDENT_ID
    assert CASE["parties"][0]["id_no"] == RESIDENT_ID
