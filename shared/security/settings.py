"""Security settings from the environment (ADR 0006).

Auth is on unless ECC_AUTH=off, and with it on the service refuses to start
without key material: a misconfigured deployment fails at start-up, not at the
first request. HS256 (shared secret) is the embedded profile; production uses
RS256 with the court's public key, and then only RS256 tokens are accepted.
"""
from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from shared.config import PROJECT_ROOT, ConfigError

ALGORITHMS = ("HS256", "RS256")
DEFAULT_SECRET_FILE = PROJECT_ROOT / ".ecc" / "jwt-secret"
MIN_SECRET_BYTES = 32  # RFC 7518 §3.2: an HS256 key at least as long as the hash
MIN_RSA_BITS = 2048
_PERIODS = {"second": 1.0, "minute": 60.0, "hour": 3600.0}
_ON = {"on", "true", "1", "yes"}
_OFF = {"off", "false", "0", "no"}


@dataclass(frozen=True)
class RateLimit:
    """`requests` write requests per `period_seconds`, per caller (token bucket)."""

    requests: int
    period_seconds: float

    @classmethod
    def parse(cls, text: str) -> "RateLimit | None":
        """'120/minute' -> RateLimit(120, 60); 'off' -> None."""
        text = text.strip().lower()
        if text in _OFF:
            return None
        match = re.fullmatch(r"(\d+)\s*/\s*(second|minute|hour)", text)
        if not match or int(match.group(1)) < 1:
            raise ConfigError(
                f"ECC_RATE_LIMIT_WRITES={text!r}: expected '<n>/second|minute|hour' (n >= 1) or 'off'"
            )
        return cls(int(match.group(1)), _PERIODS[match.group(2)])

    @property
    def per_second(self) -> float:
        return self.requests / self.period_seconds

    def __str__(self) -> str:
        unit = {v: k for k, v in _PERIODS.items()}.get(self.period_seconds, f"{self.period_seconds}s")
        return f"{self.requests}/{unit}"


@dataclass(frozen=True)
class SecuritySettings:
    auth_enabled: bool = True
    algorithm: str = "HS256"
    secret: bytes | None = field(default=None, repr=False)  # HS256 signing and verifying key
    public_key: bytes | None = field(default=None, repr=False)  # RS256 verifying key (PEM)
    private_key: bytes | None = field(default=None, repr=False)  # RS256 signing key, mint only
    audience: str = "ecc"
    issuer: str | None = None
    leeway_seconds: int = 10  # clock skew between the court's token issuer and us
    max_body_bytes: int = 1024 * 1024
    rate_limit_writes: RateLimit | None = RateLimit(120, 60.0)
    open_docs: bool = False  # /docs, /redoc, /openapi.json without a token (developer machines)

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise ConfigError(f"ECC_JWT_ALG={self.algorithm!r}: only {' or '.join(ALGORITHMS)} are accepted")
        if not self.audience:
            raise ConfigError("ECC_JWT_AUDIENCE must not be empty")
        if self.max_body_bytes < 1:
            raise ConfigError("ECC_MAX_BODY_BYTES must be at least 1")
        if not self.auth_enabled:
            return
        if self.algorithm == "HS256":
            if not self.secret:
                raise ConfigError(
                    "ECC_AUTH is on and ECC_JWT_ALG=HS256 but there is no secret: set ECC_JWT_SECRET or "
                    f"ECC_JWT_SECRET_FILE, or create {DEFAULT_SECRET_FILE} with "
                    "`python -m shared.security.mint --init-secret`"
                )
            if len(self.secret) < MIN_SECRET_BYTES:
                raise ConfigError(f"the HS256 secret must be at least {MIN_SECRET_BYTES} bytes")
        else:
            if not self.public_key:
                raise ConfigError(
                    "ECC_AUTH is on and ECC_JWT_ALG=RS256 but ECC_JWT_PUBLIC_KEY_FILE is not set "
                    "(the court's token-signing public key, PEM)"
                )
            _check_rsa_public_key(self.public_key)

    @property
    def verifying_key(self) -> bytes:
        key = self.secret if self.algorithm == "HS256" else self.public_key
        if key is None:
            raise ConfigError(f"no {self.algorithm} verifying key configured")
        return key

    @property
    def signing_key(self) -> bytes:
        key = self.secret if self.algorithm == "HS256" else self.private_key
        if key is None:
            hint = "ECC_JWT_SECRET(_FILE)" if self.algorithm == "HS256" else "ECC_JWT_PRIVATE_KEY_FILE"
            raise ConfigError(f"minting {self.algorithm} tokens needs a signing key: set {hint}")
        return key

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "SecuritySettings":
        env = os.environ if env is None else env
        get = lambda name: (env.get(name) or "").strip()  # noqa: E731
        auth_enabled = _on_off(get("ECC_AUTH") or "on", "ECC_AUTH")
        algorithm = (get("ECC_JWT_ALG") or "HS256").upper()
        secret = public_key = private_key = None
        if algorithm == "HS256":
            secret = _hs_secret(get("ECC_JWT_SECRET"), get("ECC_JWT_SECRET_FILE"))
        if get("ECC_JWT_PUBLIC_KEY_FILE"):
            public_key = _read_file("ECC_JWT_PUBLIC_KEY_FILE", get("ECC_JWT_PUBLIC_KEY_FILE"))
        if get("ECC_JWT_PRIVATE_KEY_FILE"):
            private_key = _read_file("ECC_JWT_PRIVATE_KEY_FILE", get("ECC_JWT_PRIVATE_KEY_FILE"))
        return cls(
            auth_enabled=auth_enabled,
            algorithm=algorithm,
            secret=secret,
            public_key=public_key,
            private_key=private_key,
            audience=get("ECC_JWT_AUDIENCE") or cls.audience,
            issuer=get("ECC_JWT_ISSUER") or None,
            leeway_seconds=_int(get("ECC_JWT_LEEWAY_SECONDS"), "ECC_JWT_LEEWAY_SECONDS", cls.leeway_seconds, 0),
            max_body_bytes=_int(get("ECC_MAX_BODY_BYTES"), "ECC_MAX_BODY_BYTES", cls.max_body_bytes, 1),
            rate_limit_writes=RateLimit.parse(get("ECC_RATE_LIMIT_WRITES") or "120/minute"),
            open_docs=_on_off(get("ECC_OPEN_DOCS") or "off", "ECC_OPEN_DOCS"),
        )


def _on_off(value: str, name: str) -> bool:
    value = value.lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ConfigError(f"{name}={value!r}: expected on or off")


def _int(raw: str, name: str, default: int, minimum: int) -> int:
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from exc
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def _read_file(name: str, path: str) -> bytes:
    try:
        return Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}={path!r} cannot be read: {exc.strerror}") from exc


def _hs_secret(value: str, path: str) -> bytes | None:
    if value and path:
        raise ConfigError("set ECC_JWT_SECRET or ECC_JWT_SECRET_FILE, not both")
    if value:
        return value.encode()
    if path:
        return _read_file("ECC_JWT_SECRET_FILE", path).strip()
    if DEFAULT_SECRET_FILE.is_file():
        return DEFAULT_SECRET_FILE.read_bytes().strip()
    return None  # __post_init__ explains what to set when auth is on


def _check_rsa_public_key(pem: bytes) -> None:
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise ConfigError("ECC_JWT_PUBLIC_KEY_FILE is not a PEM public key") from exc
    if not isinstance(key, RSAPublicKey):
        raise ConfigError("ECC_JWT_PUBLIC_KEY_FILE holds a public key that is not RSA")
    if key.key_size < MIN_RSA_BITS:
        raise ConfigError(f"ECC_JWT_PUBLIC_KEY_FILE: RSA key of {key.key_size} bits, need {MIN_RSA_BITS}+")

