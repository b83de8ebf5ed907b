"""Who may do what in ECC: bearer tokens, roles, masking, audit, abuse limits (ADR 0006).

The app factory calls install_security(app, service, settings, mongo_db) once;
routes declare `principal: Principal = Depends(require(Permission.X))`.
"""
from shared.security.audit import audit_case_access, recent_audit
from shared.security.deps import current_principal, ensure_team_access, require
from shared.security.install import SecurityRuntime, install_security
from shared.security.masking import present
from shared.security.principal import Principal, can_see_personal_data
from shared.security.roles import Permission, Role
from shared.security.settings import SecuritySettings
from shared.security.tokens import mint_token

__all__ = [
    "Permission", "Principal", "Role", "SecurityRuntime", "SecuritySettings", "audit_case_access",
    "can_see_personal_data", "current_principal", "ensure_team_access", "install_security", "mint_token",
    "present", "recent_audit", "require",
]
