"""The authenticated caller: subject, roles, team, and what those grant."""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.security.access import AccessPolicy, get_policy
from shared.security.roles import Permission, Role


@dataclass(frozen=True)
class Principal:
    sub: str
    roles: frozenset[Role]
    team: str | None = None
    # Derived from the access policy; not part of identity or equality.
    permissions: frozenset[Permission] = field(init=False, compare=False, repr=False)
    unscoped_permissions: frozenset[Permission] = field(init=False, compare=False, repr=False)

    def __init__(self, sub: str, roles: Iterable[Role | str], team: str | None = None,
                 policy: AccessPolicy | None = None):
        policy = policy or get_policy()
        role_set = frozenset(Role(r) for r in roles)
        object.__setattr__(self, "sub", sub)
        object.__setattr__(self, "roles", role_set)
        object.__setattr__(self, "team", team or None)
        object.__setattr__(self, "permissions", policy.granted(role_set))
        object.__setattr__(self, "unscoped_permissions", policy.granted_unscoped(role_set))

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    def missing(self, permissions: Iterable[Permission]) -> frozenset[Permission]:
        return frozenset(permissions) - self.permissions

    def team_for(self, permission: Permission) -> str | None:
        """The one team this permission is limited to, or None when it reaches every team.

        For list endpoints: filter by the returned team when it is not None.
        A principal without the permission at all gets PermissionError.
        """
        if permission in self.unscoped_permissions:
            return None
        if permission in self.permissions:
            # A team-scoped grant without a team claim reaches no case at all.
            return self.team or ""
        raise PermissionError(f"{self.sub} lacks {permission.value}")

    def may_access_team(self, permission: Permission, case_team: str | None) -> bool:
        if permission in self.unscoped_permissions:
            return True
        return permission in self.permissions and bool(self.team) and case_team == self.team


def can_see_personal_data(principal: Principal) -> bool:
    """Unmasked ID and phone numbers only with CASE_READ_PERSONAL."""
    return principal.can(Permission.CASE_READ_PERSONAL)


AUTH_OFF_PRINCIPAL_SUB = "auth-off"


def auth_off_principal() -> Principal:
    """The caller when ECC_AUTH=off (unit tests of other modules only): every role."""
    return Principal(AUTH_OFF_PRINCIPAL_SUB, frozenset(Role))
