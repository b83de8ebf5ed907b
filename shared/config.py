"""Configuration from the environment (contract §10).

Every knob has the embedded profile's default, so a developer machine needs no
settings; production sets ECC_KAFKA_BOOTSTRAP and ECC_MONGO_URL and nothing in
the code changes.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Embedded SecantusDB: retryWrites=false, or single writes decay to 30-90/s
# after ~10k writes (runtime.md, measured).
EMBEDDED_MONGO_URL = "mongodb://127.0.0.1:27017/?directConnection=true&retryWrites=false"

# HTTP port per service (contract §10). The ticker has no contract port; 8010 is ours.
SERVICE_PORTS: dict[str, int] = {
    "intake": 8001,
    "triage": 8002,
    "nodewatch": 8003,
    "entrust": 8004,
    "funds": 8005,
    "sentiment": 8006,
    "metrics": 8007,
    "termination": 8008,
    "oncall": 8009,
    "ticker": 8010,
}


class ConfigError(ValueError):
    """A setting that cannot be used; the message names the variable."""


# Kafka client security (docs/deploy.md "Kafka security"). PLAINTEXT is the embedded profile;
# production connects with SASL_SSL + SCRAM-SHA-512, the authentication of the services' KafkaUsers.
KAFKA_SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
KAFKA_SASL_MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


def env_int(name: str, default: int, minimum: int = 1) -> int:
    """A whole number from the environment; a bad value stops start-up naming the variable."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from exc
    if value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float, *, allow_zero: bool = False, maximum: float | None = None) -> float:
    """A positive number from the environment (or 0 when allow_zero); a bad value stops start-up
    with a message that names the variable."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name}={raw!r} is not a number") from exc
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigError(f"{name}={value} must be {'0 or more' if allow_zero else 'positive'}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value} must be at most {maximum:g}")
    return value


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    mongo_url: str = EMBEDDED_MONGO_URL
    # One database per service: each service owns its state (style.md).
    mongo_db_prefix: str = "ecc_"
    topic_prefix: str = "ecc."
    partitions: int = 6
    replication_factor: int = 1
    tick_seconds: float = 60.0
    rules_path: Path | None = None
    rules_dir: Path = field(default=PROJECT_ROOT / "rules")
    http_host: str = "127.0.0.1"
    # Consumer tuning: a 2 s session makes Tansu's JoinGroup wait 1 s instead of 5-30 s.
    session_timeout_ms: int = 2000
    heartbeat_interval_ms: int = 500
    batch_max_records: int = 2000
    batch_timeout_ms: int = 200
    slow_batch_seconds: float = 10.0
    # How long the broker may hold a fetch with no new data. Tansu holds every fetch this long, so
    # it is the floor of a hop's latency (a tick → its alert crosses two hops); replays lower it.
    fetch_max_wait_ms: int = 100
    log_level: str = "INFO"
    # Tests run several services in one process, each on a free port.
    http_port_override: int | None = None
    # Kafka client security: paths only, never the password itself (a dataclass repr gets logged).
    kafka_security_protocol: str = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password_file: Path | None = None
    kafka_ca_file: Path | None = None

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ.get
        rules = env("ECC_RULES")
        return cls(
            kafka_bootstrap=env("ECC_KAFKA_BOOTSTRAP") or cls.kafka_bootstrap,
            mongo_url=env("ECC_MONGO_URL") or EMBEDDED_MONGO_URL,
            mongo_db_prefix=env("ECC_MONGO_DB_PREFIX") or cls.mongo_db_prefix,
            topic_prefix=env("ECC_TOPIC_PREFIX", cls.topic_prefix),
            partitions=env_int("ECC_PARTITIONS", cls.partitions),
            replication_factor=env_int("ECC_REPLICATION_FACTOR", cls.replication_factor),
            tick_seconds=env_float("ECC_TICK_SECONDS", cls.tick_seconds),
            rules_path=Path(rules) if rules else None,
            rules_dir=Path(env("ECC_RULES_DIR") or PROJECT_ROOT / "rules"),
            http_host=env("ECC_HTTP_HOST") or cls.http_host,
            session_timeout_ms=env_int("ECC_SESSION_TIMEOUT_MS", cls.session_timeout_ms),
            heartbeat_interval_ms=env_int("ECC_HEARTBEAT_INTERVAL_MS", cls.heartbeat_interval_ms),
            batch_max_records=env_int("ECC_BATCH_MAX_RECORDS", cls.batch_max_records),
            batch_timeout_ms=env_int("ECC_BATCH_TIMEOUT_MS", cls.batch_timeout_ms),
            slow_batch_seconds=env_float("ECC_SLOW_BATCH_SECONDS", cls.slow_batch_seconds),
            fetch_max_wait_ms=env_int("ECC_FETCH_MAX_WAIT_MS", cls.fetch_max_wait_ms),
            log_level=(env("ECC_LOG_LEVEL") or cls.log_level).upper(),
            **_kafka_security_from_env(),
        )

    def topic(self, suffix: str) -> str:
        """Full topic name for a registry suffix (see shared.topics)."""
        return f"{self.topic_prefix}{suffix}"

    def database(self, service: str) -> str:
        return f"{self.mongo_db_prefix}{service}"

    def http_port(self, service: str) -> int:
        if self.http_port_override is not None:
            return self.http_port_override
        return env_int(f"ECC_{service.upper()}_PORT", SERVICE_PORTS[service])

    def rules_file(self, default_name: str) -> Path:
        """The service's rules file: ECC_RULES when set, else rules/<default_name>."""
        return self.rules_path or self.rules_dir / default_name


def _readable_file(name: str, raw: str | None) -> Path | None:
    """The file a *_FILE variable names; a missing or unreadable one stops start-up here."""
    if not raw:
        return None
    path = Path(raw).expanduser()
    try:
        with path.open("rb") as handle:
            if not handle.read(1):
                raise ConfigError(f"{name}={raw!r} is empty")
    except OSError as exc:
        raise ConfigError(f"{name}={raw!r} cannot be read: {exc.strerror}") from exc
    return path


def _kafka_security_from_env() -> dict[str, object]:
    """ECC_KAFKA_SECURITY_PROTOCOL and its companions, checked together so a half-configured
    client fails at start-up with the variable's name instead of at the broker's handshake."""
    env = os.environ.get
    protocol = (env("ECC_KAFKA_SECURITY_PROTOCOL") or "PLAINTEXT").upper()
    if protocol not in KAFKA_SECURITY_PROTOCOLS:
        raise ConfigError(f"ECC_KAFKA_SECURITY_PROTOCOL={protocol!r}: expected one of "
                          f"{', '.join(KAFKA_SECURITY_PROTOCOLS)}")
    mechanism = (env("ECC_KAFKA_SASL_MECHANISM") or "SCRAM-SHA-512").upper()
    if mechanism not in KAFKA_SASL_MECHANISMS:
        raise ConfigError(f"ECC_KAFKA_SASL_MECHANISM={mechanism!r}: expected one of "
                          f"{', '.join(KAFKA_SASL_MECHANISMS)}")
    username = env("ECC_KAFKA_SASL_USERNAME") or None
    password_file = env("ECC_KAFKA_SASL_PASSWORD_FILE") or None
    if protocol.startswith("SASL_"):
        if not username:
            raise ConfigError(f"ECC_KAFKA_SECURITY_PROTOCOL={protocol} needs ECC_KAFKA_SASL_USERNAME")
        if not password_file:
            raise ConfigError(f"ECC_KAFKA_SECURITY_PROTOCOL={protocol} needs ECC_KAFKA_SASL_PASSWORD_FILE")
    elif username or password_file:
        # Credentials that would silently go unused are a misconfiguration, not a default.
        raise ConfigError(f"ECC_KAFKA_SASL_USERNAME/ECC_KAFKA_SASL_PASSWORD_FILE are set but "
                          f"ECC_KAFKA_SECURITY_PROTOCOL={protocol} does not use SASL")
    ca_raw = env("ECC_KAFKA_CA_FILE") or None
    if ca_raw and not protocol.endswith("SSL"):
        raise ConfigError(f"ECC_KAFKA_CA_FILE is set but ECC_KAFKA_SECURITY_PROTOCOL={protocol} does not use TLS")
    return {
        "kafka_security_protocol": protocol,
        "kafka_sasl_mechanism": mechanism,
        "kafka_sasl_username": username,
        "kafka_sasl_password_file": _readable_file("ECC_KAFKA_SASL_PASSWORD_FILE", password_file),
        "kafka_ca_file": _readable_file("ECC_KAFKA_CA_FILE", ca_raw),
    }
