"""The role -> permission matrix and the topic ACL intent, from rules/access.yaml.

Loaded once and validated strictly: an unknown role, permission, key or topic
raises AccessRulesError naming the file and the entry, so a bad file stops the
service at start-up instead of silently granting or denying.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from shared.config import PROJECT_ROOT, ConfigError
from shared.rulesfile import read_rules_yaml
from shared.security.roles import Permission, Role
from shared.topics import ALL_TOPICS

DEFAULT_ACCESS_FILE = PROJECT_ROOT / "rules" / "access.yaml"


class AccessRulesError(ConfigError):
    """rules/access.yaml is not valid; the message says where."""


@dataclass(frozen=True)
class AccessPolicy:
    permissions: Mapping[Role, frozenset[Permission]]
    team_scoped: frozenset[Role]
    topic_read: Mapping[Role, frozenset[str]]

    def granted(self, roles: frozenset[Role]) -> frozenset[Permission]:
        return frozenset().union(*(self.permissions[r] for r in roles)) if roles else frozenset()

    def granted_unscoped(self, roles: frozenset[Role]) -> frozenset[Permission]:
        """Permissions that reach every team's cases (from roles that are not team-scoped)."""
        return self.granted(frozenset(r for r in roles if r not in self.team_scoped))

    def roles_with(self, permission: Permission) -> frozenset[Role]:
        return frozenset(r for r, perms in self.permissions.items() if permission in perms)


def load_access_policy(path: Path | str = DEFAULT_ACCESS_FILE) -> AccessPolicy:
    return parse_access_policy(read_rules_yaml(path, AccessRulesError), str(path))


def parse_access_policy(raw: Any, where: str = "access rules") -> AccessPolicy:
    def fail(message: str) -> AccessRulesError:
        return AccessRulesError(f"{where}: {message}")

    if not isinstance(raw, dict):
        raise fail("expected a mapping with 'version', 'roles' and 'topic_acl'")
    _only_keys(raw, {"version", "roles", "topic_acl"}, "top level", fail)
    if raw.get("version") != 1:
        raise fail(f"version must be 1, got {raw.get('version')!r}")
    roles_raw = raw.get("roles")
    if not isinstance(roles_raw, dict):
        raise fail("'roles' must be a mapping of role -> {team_scoped, permissions}")

    permissions: dict[Role, frozenset[Permission]] = {}
    team_scoped: set[Role] = set()
    for name, entry in roles_raw.items():
        role = _member(Role, name, "role", fail)
        if not isinstance(entry, dict):
            raise fail(f"role {name!r}: expected a mapping")
        _only_keys(entry, {"team_scoped", "permissions"}, f"role {name!r}", fail)
        scoped = entry.get("team_scoped", False)
        if not isinstance(scoped, bool):
            raise fail(f"role {name!r}: team_scoped must be true or false")
        if scoped:
            team_scoped.add(role)
        permissions[role] = _member_set(Permission, entry.get("permissions"), "permission", f"role {name!r}", fail)

    missing_roles = sorted(r.value for r in Role if r not in permissions)
    if missing_roles:
        raise fail(f"roles missing from the matrix: {', '.join(missing_roles)}")
    held = frozenset().union(*permissions.values())
    unheld = sorted(p.value for p in Permission if p not in held)
    if unheld:
        raise fail(f"permissions no role holds (typo or dead endpoint family?): {', '.join(unheld)}")

    topic_read: dict[Role, frozenset[str]] = {}
    known_topics = {t.suffix for t in ALL_TOPICS}
    acl_raw = raw.get("topic_acl") or {}
    if not isinstance(acl_raw, dict):
        raise fail("'topic_acl' must be a mapping of role -> {read: [topics]}")
    for name, entry in acl_raw.items():
        role = _member(Role, name, "role in topic_acl", fail)
        if not isinstance(entry, dict):
            raise fail(f"topic_acl {name!r}: expected a mapping with 'read'")
        _only_keys(entry, {"read"}, f"topic_acl {name!r}", fail)
        topics = entry.get("read")
        if not isinstance(topics, list) or not all(isinstance(t, str) for t in topics):
            raise fail(f"topic_acl {name!r}: 'read' must be a list of topic suffixes")
        unknown = sorted(set(topics) - known_topics)
        if unknown:
            raise fail(f"topic_acl {name!r}: unknown topics {unknown} (known: {sorted(known_topics)})")
        if len(set(topics)) != len(topics):
            raise fail(f"topic_acl {name!r}: a topic is listed twice")
        topic_read[role] = frozenset(topics)

    return AccessPolicy(permissions, frozenset(team_scoped), topic_read)


def _only_keys(mapping: dict, allowed: set[str], where: str, fail) -> None:
    extra = sorted(str(k) for k in mapping if k not in allowed)
    if extra:
        raise fail(f"{where}: unknown keys {extra} (allowed: {sorted(allowed)})")


def _member(enum, name: Any, what: str, fail):
    try:
        return enum(name)
    except ValueError:
        known = ", ".join(m.value for m in enum)
        raise fail(f"unknown {what} {name!r} (known: {known})") from None


def _member_set(enum, values: Any, what: str, where: str, fail) -> frozenset:
    if not isinstance(values, list):
        raise fail(f"{where}: 'permissions' must be a list")
    members = [_member(enum, v, what, fail) for v in values]
    if len(set(members)) != len(members):
        raise fail(f"{where}: a {what} is listed twice")
    return frozenset(members)


@lru_cache(maxsize=1)
def get_policy() -> AccessPolicy:
    """The deployment's policy: ECC_ACCESS_RULES or rules/access.yaml, loaded once."""
    return load_access_policy(os.environ.get("ECC_ACCESS_RULES") or DEFAULT_ACCESS_FILE)
