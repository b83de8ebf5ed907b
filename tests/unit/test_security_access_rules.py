"""rules/access.yaml is validated strictly: mistakes stop the service with a clear message."""
from __future__ import annotations

import copy

import pytest
import yaml

from shared.security.access import DEFAULT_ACCESS_FILE, AccessRulesError, load_access_policy, parse_access_policy
from shared.security.roles import Permission, Role


@pytest.fixture()
def raw():
    return yaml.safe_load(DEFAULT_ACCESS_FILE.read_text(encoding="utf-8"))


def test_the_shipped_file_is_valid():
    policy = load_access_policy()
    assert set(policy.permissions) == set(Role)
    assert policy.team_scoped == {Role.CASE_HANDLER}
    assert "funds.events" not in policy.topic_read[Role.DOWNSTREAM]


@pytest.mark.parametrize("mutate, message", [
    (lambda r: r["roles"].__setitem__("janitor", {"permissions": []}), "unknown role 'janitor'"),
    (lambda r: r["roles"]["operator"]["permissions"].append("case_delete"), "unknown permission 'case_delete'"),
    (lambda r: r["roles"].pop("technician"), "roles missing from the matrix: technician"),
    (lambda r: r["roles"]["operator"]["permissions"].append("case_read"), "listed twice"),
    (lambda r: r["roles"]["operator"].__setitem__("team_scope", True), "unknown keys"),
    (lambda r: r["roles"]["operator"].__setitem__("team_scoped", "yes"), "team_scoped must be true or false"),
    (lambda r: r["roles"]["bureau_chief"]["permissions"].remove("funds_approve"), "no role holds"),
    (lambda r: r["topic_acl"]["downstream"]["read"].append("case.secrets"), "unknown topics"),
    (lambda r: r["topic_acl"].__setitem__("hacker", {"read": []}), "unknown role in topic_acl 'hacker'"),
    (lambda r: r.__setitem__("version", 2), "version must be 1"),
])
def test_mistakes_are_named(raw, mutate, message):
    broken = copy.deepcopy(raw)
    mutate(broken)
    with pytest.raises(AccessRulesError, match=message.replace("(", r"\(")) as caught:
        parse_access_policy(broken, "rules/access.yaml")
    assert "rules/access.yaml" in str(caught.value)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(AccessRulesError, match="cannot be read"):
        load_access_policy(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("roles: [unclosed", encoding="utf-8")
    with pytest.raises(AccessRulesError, match="not valid YAML"):
        load_access_policy(bad)


def test_roles_and_permissions_have_chinese_names():
    assert Role.BUREAU_CHIEF.zh == "执行局长"
    assert all(r.zh for r in Role) and all(p.zh for p in Permission)
