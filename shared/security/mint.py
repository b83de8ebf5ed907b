"""Mint a token for local use, or create the embedded profile's HS256 secret.

    python -m shared.security.mint --init-secret [--secret-file .ecc/jwt-secret]
    python -m shared.security.mint --sub alice --role operator [--role ...] \
        [--team quick] [--ttl 3600] [--secret-file .ecc/jwt-secret] [--out .ecc/token]

Settings come from the environment (ECC_JWT_*), overridden by the flags. The
token goes to stdout (or --out, mode 0600); nothing else is printed there.
"""
from __future__ import annotations

import argparse
import os
import secrets
import sys
from pathlib import Path

from shared.config import ConfigError
from shared.security.roles import Role
from shared.security.settings import DEFAULT_SECRET_FILE, SecuritySettings
from shared.security.tokens import DEFAULT_TTL_SECONDS, mint_token


def init_secret(path: Path) -> bool:
    """Create a random 48-byte (64 url-safe chars) secret file, mode 0600. False if it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_urlsafe(48) + "\n")
    return True


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")


def _parser() -> argparse.ArgumentParser:
    roles = ", ".join(f"{r.value} ({r.zh})" for r in Role)
    p = argparse.ArgumentParser(prog="python -m shared.security.mint", description=__doc__.split("\n")[0])
    p.add_argument("--init-secret", action="store_true", help="create the HS256 secret file if missing, then exit")
    p.add_argument("--sub", help="the caller's subject (user or system id)")
    p.add_argument("--role", action="append", default=[], help=f"repeatable; one of: {roles}")
    p.add_argument("--team", help="execution team (required for case_handler)")
    p.add_argument("--ttl", type=int, default=DEFAULT_TTL_SECONDS, help="lifetime in seconds (default 3600)")
    p.add_argument("--secret-file", type=Path, help=f"HS256 secret (default $ECC_JWT_SECRET_FILE or {DEFAULT_SECRET_FILE})")
    p.add_argument("--private-key-file", type=Path, help="RS256 signing key (PEM), test keys only")
    p.add_argument("--alg", choices=["HS256", "RS256"], help="default $ECC_JWT_ALG or HS256")
    p.add_argument("--audience", help="default $ECC_JWT_AUDIENCE or ecc")
    p.add_argument("--issuer", help="default $ECC_JWT_ISSUER")
    p.add_argument("--out", type=Path, help="write the token to this file (0600) instead of stdout")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.init_secret:
        path = args.secret_file or Path(os.environ.get("ECC_JWT_SECRET_FILE") or DEFAULT_SECRET_FILE)
        created = init_secret(path)
        print(f"{'created' if created else 'kept existing'} {path}", file=sys.stderr)
        return 0
    if not args.sub or not args.role:
        print("--sub and at least one --role are required (or --init-secret)", file=sys.stderr)
        return 2
    env = dict(os.environ)
    overrides = {"ECC_JWT_ALG": args.alg, "ECC_JWT_AUDIENCE": args.audience, "ECC_JWT_ISSUER": args.issuer}
    env.update({k: v for k, v in overrides.items() if v})
    if args.secret_file:
        env.pop("ECC_JWT_SECRET", None)
        env["ECC_JWT_SECRET_FILE"] = str(args.secret_file)
    if args.private_key_file:
        env["ECC_JWT_PRIVATE_KEY_FILE"] = str(args.private_key_file)
    # HS256: full validation (secret present and long enough). RS256: minting needs
    # only the private key, so the verification-side checks are skipped.
    env["ECC_AUTH"] = "on" if (env.get("ECC_JWT_ALG") or "HS256").upper() == "HS256" else "off"
    try:
        settings = SecuritySettings.from_env(env)
        token = mint_token(args.sub, args.role, team=args.team, ttl_seconds=args.ttl, settings=settings)
    except (ConfigError, ValueError) as exc:
        print(f"cannot mint: {exc}", file=sys.stderr)
        return 2
    if args.out:
        _write_private(args.out, token)
        print(f"wrote a {args.ttl}s token for {args.sub} ({', '.join(args.role)}) to {args.out}", file=sys.stderr)
    else:
        print(token)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
