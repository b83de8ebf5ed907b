"""Every role against every endpoint family over HTTP, and the ADR table equal to the rules file."""
from __future__ import annotations

import re

import pytest
from fastapi import Depends, FastAPI, Request
from fastapi.testclient import TestClient

from shared.config import PROJECT_ROOT
from shared.security import Permission, Principal, Role, ensure_team_access, install_security, require
from shared.security.access import get_policy
from shared.security.testing import auth_header, test_settings

WRITE_SUFFIXES = ("_write", "_approve", "_ack", "_admin")
SETTINGS = test_settings()


def _method(permission: Permission) -> str:
    return "POST" if permission.value.endswith(WRITE_SUFFIXES) else "GET"


def _family_app() -> FastAPI:
    app = FastAPI()
    for permission in Permission:
        async def endpoint(principal: Principal = Depends(require(permission))) -> dict:
            return {"sub": principal.sub}

        app.add_api_route(f"/family/{permission.value}", endpoint, methods=[_method(permission)])

    @app.get("/cases/{case_no}")
    async def read_case(case_no: str, request: Request,
                        principal: Principal = Depends(require(Permission.CASE_READ))) -> dict:
        ensure_team_access(principal, {"A1": "quick", "B2": "hard"}.get(case_no), request=request)
        return {"case_no": case_no}

    @app.get("/both")
    async def both(principal: Principal = Depends(require(Permission.FUNDS_READ, Permission.FUNDS_APPROVE))):
        return {"sub": principal.sub}

    install_security(app, "matrix-test", SETTINGS)
    return app


@pytest.fixture(scope="module")
def client():
    with TestClient(_family_app()) as c:
        yield c


def _adr_matrix() -> dict[tuple[str, str], str]:
    text = (PROJECT_ROOT / "docs" / "adr" / "0006-security.md").read_text(encoding="utf-8")
    section = text.split("### Roles × endpoint families", 1)[1].split("###", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    roles = [re.sub(r"<br>.*", "", c).strip() for c in lines[0].strip("|").split("|")[1:]]
    cells: dict[tuple[str, str], str] = {}
    for line in lines[2:]:
        parts = [c.strip() for c in line.strip("|").split("|")]
        permission = re.match(r"`([a-z_]+)`", parts[0]).group(1)
        for role, cell in zip(roles, parts[1:], strict=True):
            cells[(role, permission)] = cell
    return cells


def test_adr_table_matches_rules_file():
    policy = get_policy()
    expected = {
        (role.value, perm.value): ("team" if role in policy.team_scoped else "✓") if perm in policy.permissions[role]
        else "·"
        for role in Role for perm in Permission
    }
    assert _adr_matrix() == expected


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_every_role_against_every_family(client, role):
    granted = get_policy().permissions[role]
    headers = auth_header(role, settings=SETTINGS)
    outcome = {}
    for permission in Permission:
        response = client.request(_method(permission), f"/family/{permission.value}", headers=headers)
        outcome[permission.value] = response.status_code
    expected = {p.value: 200 if p in granted else 403 for p in Permission}
    assert outcome == expected


def test_forbidden_body_is_bilingual_json(client):
    response = client.post("/family/funds_approve", headers=auth_header(Role.OPERATOR, settings=SETTINGS))
    assert response.status_code == 403
    assert response.json() == {"error": "forbidden", "message": "your role does not permit this",
                               "message_zh": "您的角色无权执行此操作"}


def test_require_needs_every_listed_permission(client):
    assert client.get("/both", headers=auth_header(Role.BUREAU_CHIEF, settings=SETTINGS)).status_code == 200
    assert client.get("/both", headers=auth_header(Role.FUND_MANAGER, settings=SETTINGS)).status_code == 403
    both = auth_header(Role.FUND_MANAGER, Role.BUREAU_CHIEF, settings=SETTINGS)
    assert client.get("/both", headers=both).status_code == 200


def test_case_handler_sees_only_own_team(client):
    quick = auth_header(Role.CASE_HANDLER, team="quick", settings=SETTINGS)
    assert client.get("/cases/A1", headers=quick).status_code == 200
    assert client.get("/cases/B2", headers=quick).status_code == 403
    assert client.get("/cases/UNASSIGNED", headers=quick).status_code == 403  # no team yet: handlers cannot see it
    operator = auth_header(Role.OPERATOR, settings=SETTINGS)
    assert client.get("/cases/B2", headers=operator).status_code == 200
    assert client.get("/cases/UNASSIGNED", headers=operator).status_code == 200


def test_handler_token_without_team_reaches_no_case():
    principal = Principal("h", [Role.CASE_HANDLER])
    assert not principal.may_access_team(Permission.CASE_READ, "quick")
    assert not principal.may_access_team(Permission.CASE_READ, None)
    assert principal.team_for(Permission.CASE_READ) == ""


def test_team_for_filters_lists_only_for_scoped_grants():
    assert Principal("h", [Role.CASE_HANDLER], "quick").team_for(Permission.ALERTS_READ) == "quick"
    assert Principal("o", [Role.OPERATOR]).team_for(Permission.ALERTS_READ) is None
    # A broader role wins over the scoped one for the permission it grants.
    assert Principal("x", [Role.CASE_HANDLER, Role.OPERATOR], "quick").team_for(Permission.CASE_READ) is None
    # ...but not for a permission only the scoped role holds.
    assert Principal("x", [Role.CASE_HANDLER, Role.OPERATOR], "quick").team_for(Permission.CASE_READ_PERSONAL) == "quick"
    with pytest.raises(PermissionError):
        Principal("t", [Role.TECHNICIAN]).team_for(Permission.CASE_READ)


def test_seed_articles_hold():
    policy = get_policy()
    # art. 10 and 15: only the bureau chief approves sentiment and fund delays.
    assert policy.roles_with(Permission.SENTIMENT_APPROVE) == {Role.BUREAU_CHIEF}
    assert policy.roles_with(Permission.FUNDS_APPROVE) == {Role.BUREAU_CHIEF}
    # art. 5: filing is the window's (and the center's, which the window belongs to).
    assert policy.roles_with(Permission.CASE_WRITE) == {Role.WINDOW_CLERK, Role.OPERATOR}
    # downstream systems are read-only.
    assert all(p.value.endswith("_read") for p in policy.permissions[Role.DOWNSTREAM])
    assert Permission.CASE_READ_PERSONAL not in policy.permissions[Role.DOWNSTREAM]
    # art. 30: double duty — technical staff are on call.
    assert {Role.TECHNICIAN, Role.OPERATOR} <= policy.roles_with(Permission.ONCALL_ACK)


def test_openapi_declares_bearer_and_needs_a_token(client):
    assert client.get("/openapi.json").status_code == 401
    schema = client.get("/openapi.json", headers=auth_header(Role.DOWNSTREAM, settings=SETTINGS)).json()
    assert schema["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"


def test_open_docs_setting_opens_the_schema():
    app = FastAPI()
    install_security(app, "docs-test", test_settings(open_docs=True))
    with TestClient(app) as c:
        assert c.get("/openapi.json").status_code == 200
        assert c.get("/docs").status_code == 200


def test_probes_are_open():
    app = FastAPI()
    for path in ("/healthz", "/readyz", "/metrics"):
        app.add_api_route(path, lambda: {"ok": True}, methods=["GET"])
    app.add_api_route("/unguarded", lambda: {"ok": True}, methods=["GET"])
    install_security(app, "probe-test", SETTINGS)
    with TestClient(app) as c:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert c.get(path).status_code == 200
        # A route that forgot require() is still closed to anonymous callers.
        assert c.get("/unguarded").status_code == 401
        assert c.get("/nowhere").status_code == 401


def test_install_twice_is_refused():
    app = FastAPI()
    install_security(app, "twice", SETTINGS)
    with pytest.raises(RuntimeError):
        install_security(app, "twice", SETTINGS)


def test_auth_off_grants_every_role():
    from structlog.testing import capture_logs

    app = FastAPI()

    @app.post("/approve")
    async def approve(principal: Principal = Depends(require(Permission.FUNDS_APPROVE))):
        return {"sub": principal.sub}

    with capture_logs() as logs:
        install_security(app, "off-test", test_settings(auth_enabled=False, secret=None))
    assert any(e["event"] == "security.AUTHENTICATION_OFF" for e in logs)
    with TestClient(app) as c:
        assert c.post("/approve").json() == {"sub": "auth-off"}


def test_route_without_install_fails_loudly():
    app = FastAPI()

    @app.get("/x")
    async def x(principal: Principal = Depends(require(Permission.CASE_READ))):
        return {}

    with TestClient(app, raise_server_exceptions=True) as c, pytest.raises(RuntimeError, match="install_security"):
        c.get("/x")

