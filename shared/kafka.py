"""The connection settings of every Kafka client ECC builds (producer, consumers, admin, tools).

    AIOKafkaConsumer(*topics, **client_kwargs(settings), group_id=...)

One place turns Settings' ECC_KAFKA_* values into aiokafka's keyword arguments, so a client
built anywhere speaks the same security protocol: PLAINTEXT against the embedded broker,
SASL_SSL with SCRAM-SHA-512 against the production cluster (docs/deploy.md "Kafka security").
"""
from __future__ import annotations

import ssl
from dataclasses import replace
from typing import Any

from aiokafka.helpers import create_ssl_context

from shared.config import ConfigError, Settings


def client_kwargs(settings: Settings) -> dict[str, Any]:
    """bootstrap_servers plus, when the protocol asks for them, the TLS context and SASL login.

    The password file is read here, on every client built, so a client made after a
    credential rotation uses the new password (Settings holds only the path).
    """
    protocol = settings.kafka_security_protocol
    kwargs: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap, "security_protocol": protocol}
    if protocol.endswith("SSL"):
        kwargs["ssl_context"] = _ssl_context(settings)
    if protocol.startswith("SASL_"):
        kwargs["sasl_mechanism"] = settings.kafka_sasl_mechanism
        kwargs["sasl_plain_username"] = settings.kafka_sasl_username
        kwargs["sasl_plain_password"] = _password(settings)
    return kwargs


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    # No CA file: the system trust store (aiokafka's default). Strimzi's cluster CA is private,
    # so production always mounts <cluster>-cluster-ca-cert and sets ECC_KAFKA_CA_FILE.
    cafile = str(settings.kafka_ca_file) if settings.kafka_ca_file else None
    try:
        return create_ssl_context(cafile=cafile)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"ECC_KAFKA_CA_FILE={cafile!r} is not a usable CA certificate: {exc}") from exc


def _password(settings: Settings) -> str:
    path = settings.kafka_sasl_password_file
    if path is None:
        raise ConfigError(f"ECC_KAFKA_SECURITY_PROTOCOL={settings.kafka_security_protocol} "
                          "needs ECC_KAFKA_SASL_PASSWORD_FILE")
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"ECC_KAFKA_SASL_PASSWORD_FILE={str(path)!r} cannot be read: {exc}") from exc
    # A file written by `echo` ends in a newline the password does not contain.
    password = raw.rstrip("\r\n")
    if not password:
        raise ConfigError(f"ECC_KAFKA_SASL_PASSWORD_FILE={str(path)!r} is empty")
    return password


def client_kwargs_for(bootstrap: str) -> dict[str, Any]:
    """client_kwargs for a tool that is handed only a bootstrap address (tools.stack's topic
    creation): the security settings come from the environment, as the services' do."""
    return client_kwargs(replace(Settings.from_env(), kafka_bootstrap=bootstrap))
