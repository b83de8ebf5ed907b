"""Authentication: what gets a 401, RS256, key confusion, settings, the mint CLI, and no token in logs."""
from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import time
from contextlib import redirect_stdout

import jwt
import pytest
import structlog
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient
from structlog.testing import capture_logs

from shared.config import ConfigError
from shared.security import Permission, Principal, Role, SecuritySettings, install_security, mint_token, require
from shared.security.mint import main as mint_main
from shared.security.testing import TEST_SECRET, test_settings
from shared.security.tokens import TokenError, TokenVerifier

SETTINGS = test_settings()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hand_made(header: dict, payload: dict, key: bytes | None) -> str:
    """A token built without pyjwt, for algorithms pyjwt refuses to produce."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = _b64(hmac.new(key, signing_input.encode(), hashlib.sha256).digest()) if key else ""
    return f"{signing_input}.{signature}"


def _claims(**overrides) -> dict:
    now = int(time.time())
    claims = {"sub": "mallory", "roles": ["bureau_chief"], "aud": "ecc", "iat": now, "exp": now + 600}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _app(settings: SecuritySettings) -> FastAPI:
    app = FastAPI()

    @app.get("/cases/{case_no}")
    async def read_case(case_no: str, principal: Principal = Depends(require(Permission.CASE_READ))):
        return {"sub": principal.sub}

    install_security(app, "token-test", settings)
    return app


@pytest.fixture(scope="module")
def client():
    with TestClient(_app(SETTINGS)) as c:
        yield c


@pytest.fixture(scope="module")
def rsa_keys():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, public


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


BAD_TOKENS = {
    "forged_signature": lambda: jwt.encode(_claims(), b"some-other-secret-of-32-bytes-or-more!", "HS256"),
    "wrong_audience": lambda: jwt.encode(_claims(aud="another-app"), TEST_SECRET, "HS256"),
    "expired": lambda: jwt.encode(_claims(exp=int(time.time()) - 3600), TEST_SECRET, "HS256"),
    "no_exp": lambda: jwt.encode(_claims(exp=None), TEST_SECRET, "HS256"),
    "no_aud": lambda: jwt.encode(_claims(aud=None), TEST_SECRET, "HS256"),
    "not_yet_valid": lambda: jwt.encode(_claims(nbf=int(time.time()) + 3600), TEST_SECRET, "HS256"),
    "alg_none": lambda: _hand_made({"alg": "none", "typ": "JWT"}, _claims(), None),
    "alg_none_with_signature": lambda: _hand_made({"alg": "none", "typ": "JWT"}, _claims(), TEST_SECRET),
    "hs512": lambda: jwt.encode(_claims(), TEST_SECRET + TEST_SECRET, "HS512"),
    "garbage": lambda: "not.a.jwt",
    "roles_not_a_list": lambda: jwt.encode(_claims(roles="bureau_chief"), TEST_SECRET, "HS256"),
}


@pytest.mark.parametrize("name", list(BAD_TOKENS))
def test_bad_tokens_get_401(client, name):
    response = client.get("/cases/A1", headers=_bearer(BAD_TOKENS[name]()))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="ecc", error="invalid_token"'
    assert response.json()["error"] == "unauthorized"
    assert response.json()["message_zh"]


def test_missing_token_gets_401_with_plain_challenge(client):
    response = client.get("/cases/A1")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="ecc"'
    assert client.get("/cases/A1", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"}).status_code == 401
    assert client.get("/cases/A1", headers={"Authorization": "Bearer "}).status_code == 401


def test_valid_token_passes(client):
    token = mint_token("alice", [Role.OPERATOR], settings=SETTINGS)
    assert client.get("/cases/A1", headers=_bearer(token)).json() == {"sub": "alice"}
    # Scheme is case-insensitive (RFC 7235).
    assert client.get("/cases/A1", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_unknown_roles_grant_nothing(client):
    token = jwt.encode(_claims(roles=["superuser"]), TEST_SECRET, "HS256")
    assert client.get("/cases/A1", headers=_bearer(token)).status_code == 403


def test_issuer_is_required_when_configured():
    settings = test_settings(issuer="https://idp.court.example")
    verifier = TokenVerifier(settings)
    assert verifier.verify(mint_token("a", ["operator"], settings=settings)).sub == "a"
    for claims in (_claims(), _claims(iss="https://evil.example")):
        with pytest.raises(TokenError):
            verifier.verify(jwt.encode(claims, TEST_SECRET, "HS256"))


def test_failure_reasons_are_fixed_codes():
    verifier = TokenVerifier(SETTINGS)
    expired = jwt.encode(_claims(exp=int(time.time()) - 3600), TEST_SECRET, "HS256")
    with pytest.raises(TokenError) as caught:
        verifier.verify(expired)
    assert (caught.value.reason, caught.value.claimed_sub) == ("expired", "mallory")
    with pytest.raises(TokenError) as caught:
        verifier.verify(BAD_TOKENS["alg_none"]())
    assert caught.value.reason == "algorithm_not_allowed"
    with pytest.raises(TokenError) as caught:
        verifier.verify(BAD_TOKENS["forged_signature"]())
    assert caught.value.reason == "bad_signature"


def test_rs256_accepts_the_courts_key_and_refuses_hs256_key_confusion(rsa_keys):
    private, public = rsa_keys
    settings = SecuritySettings(algorithm="RS256", public_key=public, private_key=private, rate_limit_writes=None)
    with TestClient(_app(settings)) as c:
        good = mint_token("chief", [Role.BUREAU_CHIEF], settings=settings)
        assert jwt.get_unverified_header(good)["alg"] == "RS256"
        assert c.get("/cases/A1", headers=_bearer(good)).status_code == 200
        # The classic attack: HS256 "signed" with the public key as the HMAC secret.
        confused = _hand_made({"alg": "HS256", "typ": "JWT"}, _claims(), public)
        assert c.get("/cases/A1", headers=_bearer(confused)).status_code == 401
        # An HS256 token with the embedded secret is worthless in production.
        hs = jwt.encode(_claims(), TEST_SECRET, "HS256")
        assert c.get("/cases/A1", headers=_bearer(hs)).status_code == 401
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(_claims(), other, "RS256")
        assert c.get("/cases/A1", headers=_bearer(forged)).status_code == 401


def test_token_never_reaches_the_logs(client):
    tokens = [mint_token("alice", [Role.TECHNICIAN], settings=SETTINGS)]  # 403
    tokens += [make() for make in BAD_TOKENS.values()]  # 401
    with capture_logs() as logs:
        for token in tokens:
            client.get("/cases/A1", headers=_bearer(token))
    assert {e["event"] for e in logs} >= {"auth.unauthenticated", "auth.forbidden", "http.request"}
    dumped = json.dumps(logs, default=str)
    for token in tokens:
        for part in token.split("."):
            if len(part) > 8:  # header/payload/signature segments
                assert part not in dumped
    denied = [e for e in logs if e["event"] == "auth.unauthenticated"]
    assert all(e["path"] == "/cases/A1" and e["reason"] for e in denied)
    assert any(e.get("claimed_sub") == "mallory" and e["reason"] == "expired" for e in denied)
    forbidden = [e for e in logs if e["event"] == "auth.forbidden"]
    assert forbidden and forbidden[0]["sub"] == "alice" and forbidden[0]["status"] == 403


def test_token_never_reaches_rendered_output(client):
    """The same through a JSON renderer, token also in the query string.

    The processor list is swapped in place (as capture_logs does) so loggers
    cached by an earlier configure_logging() see it too.
    """
    token = BAD_TOKENS["expired"]()
    out = io.StringIO()
    render = structlog.processors.JSONRenderer()

    def to_buffer(logger, method, event_dict):
        out.write(render(logger, method, dict(event_dict)) + "\n")
        raise structlog.DropEvent

    processors = structlog.get_config()["processors"]
    previous = processors.copy()
    processors[:] = [to_buffer]
    structlog.configure(processors=processors)
    try:
        client.get("/cases/A1?token=" + token, headers=_bearer(token))
    finally:
        processors[:] = previous
        structlog.configure(processors=processors)
    text = out.getvalue()
    assert "auth.unauthenticated" in text and "/cases/A1" in text
    assert token.split(".")[1] not in text and token.split(".")[2] not in text


# --- settings -------------------------------------------------------------------------------


def test_settings_from_env_defaults_and_errors(tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text("s" * 40 + "\n")
    settings = SecuritySettings.from_env({"ECC_JWT_SECRET_FILE": str(secret_file)})
    assert settings.auth_enabled and settings.algorithm == "HS256" and settings.audience == "ecc"
    assert settings.secret == b"s" * 40  # the newline is not part of the key
    assert settings.max_body_bytes == 1024 * 1024 and str(settings.rate_limit_writes) == "120/minute"
    assert "s" * 40 not in repr(settings)

    with pytest.raises(ConfigError, match="not both"):
        SecuritySettings.from_env({"ECC_JWT_SECRET": "x" * 40, "ECC_JWT_SECRET_FILE": str(secret_file)})
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        SecuritySettings.from_env({"ECC_JWT_SECRET": "short"})
    with pytest.raises(ConfigError, match="ECC_JWT_PUBLIC_KEY_FILE"):
        SecuritySettings.from_env({"ECC_JWT_ALG": "RS256"})
    with pytest.raises(ConfigError, match="not a PEM public key"):
        SecuritySettings.from_env({"ECC_JWT_ALG": "RS256", "ECC_JWT_PUBLIC_KEY_FILE": str(secret_file)})
    with pytest.raises(ConfigError, match="cannot be read"):
        SecuritySettings.from_env({"ECC_JWT_SECRET_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="only HS256 or RS256"):
        SecuritySettings.from_env({"ECC_JWT_ALG": "none", "ECC_JWT_SECRET": "x" * 40})
    with pytest.raises(ConfigError, match="ECC_AUTH"):
        SecuritySettings.from_env({"ECC_AUTH": "maybe"})
    with pytest.raises(ConfigError, match="ECC_RATE_LIMIT_WRITES"):
        SecuritySettings.from_env({"ECC_JWT_SECRET": "x" * 40, "ECC_RATE_LIMIT_WRITES": "lots"})
    off = SecuritySettings.from_env({"ECC_AUTH": "off", "ECC_RATE_LIMIT_WRITES": "off"})
    assert not off.auth_enabled and off.rate_limit_writes is None
    limited = SecuritySettings.from_env({"ECC_JWT_SECRET": "x" * 40, "ECC_RATE_LIMIT_WRITES": "5/second",
                                         "ECC_MAX_BODY_BYTES": "2048", "ECC_JWT_ISSUER": "idp"})
    assert (limited.rate_limit_writes.per_second, limited.max_body_bytes, limited.issuer) == (5.0, 2048, "idp")


def test_missing_secret_names_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr("shared.security.settings.DEFAULT_SECRET_FILE", tmp_path / "absent")
    with pytest.raises(ConfigError, match="ECC_JWT_SECRET.*--init-secret"):
        SecuritySettings.from_env({})


def test_rs256_public_key_file(tmp_path, rsa_keys):
    private, public = rsa_keys
    (tmp_path / "pub.pem").write_bytes(public)
    settings = SecuritySettings.from_env({"ECC_JWT_ALG": "RS256", "ECC_JWT_PUBLIC_KEY_FILE": str(tmp_path / "pub.pem")})
    assert settings.verifying_key == public
    with pytest.raises(ConfigError, match="ECC_JWT_PRIVATE_KEY_FILE"):
        mint_token("a", ["operator"], settings=settings)


# --- minting --------------------------------------------------------------------------------


def test_mint_rules():
    with pytest.raises(ValueError, match="team"):
        mint_token("h", [Role.CASE_HANDLER], settings=SETTINGS)
    with pytest.raises(ValueError):
        mint_token("x", ["no_such_role"], settings=SETTINGS)
    with pytest.raises(ValueError):
        mint_token("x", [], settings=SETTINGS)
    claims = TokenVerifier(SETTINGS).verify(mint_token("h", ["case_handler"], team="quick", settings=SETTINGS))
    assert (claims.sub, claims.roles, claims.team) == ("h", frozenset({Role.CASE_HANDLER}), "quick")


def test_mint_cli(tmp_path, monkeypatch):
    for name in ("ECC_JWT_SECRET", "ECC_JWT_SECRET_FILE", "ECC_JWT_ALG", "ECC_JWT_AUDIENCE", "ECC_JWT_ISSUER"):
        monkeypatch.delenv(name, raising=False)
    secret = tmp_path / ".ecc" / "jwt-secret"
    assert mint_main(["--init-secret", "--secret-file", str(secret)]) == 0
    assert secret.stat().st_mode & 0o777 == 0o600
    first = secret.read_bytes()
    assert mint_main(["--init-secret", "--secret-file", str(secret)]) == 0
    assert secret.read_bytes() == first  # never overwritten

    out = io.StringIO()
    with redirect_stdout(out):
        assert mint_main(["--sub", "alice", "--role", "operator", "--ttl", "60", "--secret-file", str(secret)]) == 0
    token = out.getvalue().strip()
    settings = SecuritySettings(secret=first.strip(), rate_limit_writes=None)
    assert TokenVerifier(settings).verify(token).roles == {Role.OPERATOR}
    assert jwt.decode(token, options={"verify_signature": False})["exp"] - time.time() <= 61

    token_file = tmp_path / ".ecc" / "token"
    assert mint_main(["--sub", "h", "--role", "case_handler", "--team", "quick", "--secret-file", str(secret),
                      "--out", str(token_file)]) == 0
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert TokenVerifier(settings).verify(token_file.read_text().strip()).team == "quick"
    assert mint_main(["--sub", "h", "--role", "case_handler", "--secret-file", str(secret)]) == 2  # no team
    assert mint_main(["--sub", "x", "--role", "operator", "--secret-file", str(tmp_path / "nope")]) == 2
