"""Kafka client security settings (ECC_KAFKA_*) and their mapping to aiokafka's arguments."""
from __future__ import annotations

import datetime as dt
import ssl
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.config import ConfigError, Settings
from shared.kafka import client_kwargs, client_kwargs_for

VARIABLES = ("ECC_KAFKA_BOOTSTRAP", "ECC_KAFKA_SECURITY_PROTOCOL", "ECC_KAFKA_SASL_MECHANISM",
             "ECC_KAFKA_SASL_USERNAME", "ECC_KAFKA_SASL_PASSWORD_FILE", "ECC_KAFKA_CA_FILE")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


def write_ca(path: Path) -> Path:
    """A self-signed CA certificate, like Strimzi's <cluster>-cluster-ca-cert `ca.crt`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cluster-ca test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture
def production_env(monkeypatch, tmp_path):
    """What the generated Deployments set (deploy/generate.py)."""
    password = tmp_path / "password"
    password.write_text("s3cret-from-strimzi\n", encoding="utf-8")  # trailing newline as `echo` writes it
    monkeypatch.setenv("ECC_KAFKA_BOOTSTRAP", "ecc-kafka-bootstrap:9094")
    monkeypatch.setenv("ECC_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("ECC_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("ECC_KAFKA_SASL_USERNAME", "ecc-svc-triage")
    monkeypatch.setenv("ECC_KAFKA_SASL_PASSWORD_FILE", str(password))
    monkeypatch.setenv("ECC_KAFKA_CA_FILE", str(write_ca(tmp_path / "ca.crt")))
    return tmp_path


def test_default_is_the_embedded_plaintext_profile():
    settings = Settings.from_env()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert client_kwargs(settings) == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert client_kwargs(Settings()) == client_kwargs(settings)


def test_sasl_ssl_maps_to_scram_with_the_cluster_ca(production_env):
    settings = Settings.from_env()
    kwargs = client_kwargs(settings)
    assert kwargs["bootstrap_servers"] == "ecc-kafka-bootstrap:9094"
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_username"] == "ecc-svc-triage"
    assert kwargs["sasl_plain_password"] == "s3cret-from-strimzi"
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    [ca] = context.get_ca_certs()  # only the cluster CA is trusted, not the system store
    assert ("commonName", "cluster-ca test") in ca["subject"][0]


def test_the_password_never_sits_in_settings(production_env):
    settings = Settings.from_env()
    assert "s3cret" not in repr(settings)


def test_a_rotated_password_is_read_by_the_next_client(production_env):
    settings = Settings.from_env()
    (production_env / "password").write_text("rotated", encoding="utf-8")
    assert client_kwargs(settings)["sasl_plain_password"] == "rotated"


async def test_aiokafka_accepts_the_arguments(production_env):
    """Each client kind ECC builds takes the mapping as it is (constructed, not connected)."""
    kwargs = client_kwargs(Settings.from_env())
    producer = AIOKafkaProducer(**kwargs, acks="all", enable_idempotence=False)
    consumer = AIOKafkaConsumer("ecc.case.events", **kwargs, group_id="ecc-triage", enable_auto_commit=False)
    admin = AIOKafkaAdminClient(**kwargs)
    try:
        for client in (producer.client, consumer._client, admin._client):  # noqa: SLF001
            assert client._security_protocol == "SASL_SSL"  # noqa: SLF001
            assert client._sasl_mechanism == "SCRAM-SHA-512"  # noqa: SLF001
            assert client._sasl_plain_username == "ecc-svc-triage"  # noqa: SLF001
    finally:
        await producer.stop()
        await consumer.stop()
        await admin.close()


def test_ssl_without_sasl(monkeypatch, tmp_path):
    monkeypatch.setenv("ECC_KAFKA_SECURITY_PROTOCOL", "ssl")
    monkeypatch.setenv("ECC_KAFKA_CA_FILE", str(write_ca(tmp_path / "ca.crt")))
    kwargs = client_kwargs(Settings.from_env())
    assert kwargs["security_protocol"] == "SSL"
    assert "ssl_context" in kwargs and "sasl_mechanism" not in kwargs


def test_tools_get_the_same_security_for_another_bootstrap(production_env):
    kwargs = client_kwargs_for("127.0.0.1:19094")
    assert kwargs["bootstrap_servers"] == "127.0.0.1:19094"
    assert kwargs["security_protocol"] == "SASL_SSL" and kwargs["sasl_plain_username"] == "ecc-svc-triage"


@pytest.mark.parametrize("unset, named", [
    ("ECC_KAFKA_SASL_USERNAME", "ECC_KAFKA_SASL_USERNAME"),
    ("ECC_KAFKA_SASL_PASSWORD_FILE", "ECC_KAFKA_SASL_PASSWORD_FILE"),
])
def test_sasl_without_credentials_is_refused(production_env, monkeypatch, unset, named):
    monkeypatch.delenv(unset)
    with pytest.raises(ConfigError, match=named):
        Settings.from_env()


@pytest.mark.parametrize("variable", ["ECC_KAFKA_SASL_PASSWORD_FILE", "ECC_KAFKA_CA_FILE"])
def test_a_missing_file_is_refused_at_start_up_naming_the_variable(production_env, monkeypatch, variable):
    monkeypatch.setenv(variable, str(production_env / "not-mounted"))
    with pytest.raises(ConfigError, match=f"{variable}=.*not-mounted.*cannot be read"):
        Settings.from_env()


def test_an_empty_password_file_is_refused(production_env):
    (production_env / "password").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="ECC_KAFKA_SASL_PASSWORD_FILE=.*is empty"):
        Settings.from_env()


def test_a_password_file_removed_after_start_up_is_named(production_env):
    settings = Settings.from_env()
    (production_env / "password").unlink()
    with pytest.raises(ConfigError, match="ECC_KAFKA_SASL_PASSWORD_FILE=.*cannot be read"):
        client_kwargs(settings)


def test_a_ca_file_that_is_not_a_certificate_is_named(production_env):
    (production_env / "ca.crt").write_text("not a certificate\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="ECC_KAFKA_CA_FILE=.*not a usable CA certificate"):
        client_kwargs(Settings.from_env())


@pytest.mark.parametrize("variable, value", [
    ("ECC_KAFKA_SECURITY_PROTOCOL", "SASL_TLS"),
    ("ECC_KAFKA_SASL_MECHANISM", "GSSAPI"),
])
def test_unknown_protocol_or_mechanism_is_refused(production_env, monkeypatch, variable, value):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"{variable}='{value}': expected one of"):
        Settings.from_env()


def test_credentials_that_would_go_unused_are_refused(production_env, monkeypatch):
    monkeypatch.setenv("ECC_KAFKA_SECURITY_PROTOCOL", "SSL")
    with pytest.raises(ConfigError, match="ECC_KAFKA_SASL_USERNAME/ECC_KAFKA_SASL_PASSWORD_FILE are set"):
        Settings.from_env()


def test_a_ca_file_without_tls_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("ECC_KAFKA_CA_FILE", str(write_ca(tmp_path / "ca.crt")))
    with pytest.raises(ConfigError, match="ECC_KAFKA_CA_FILE is set but ECC_KAFKA_SECURITY_PROTOCOL=PLAINTEXT"):
        Settings.from_env()


def test_every_kafka_client_goes_through_client_kwargs():
    """A client built with its own bootstrap_servers= would skip TLS/SASL in production."""
    root = Path(__file__).resolve().parents[2]
    offenders = [str(path.relative_to(root)) for folder in ("shared", "services", "tools")
                 for path in (root / folder).rglob("*.py")
                 if "bootstrap_servers=" in path.read_text(encoding="utf-8") and path.name != "kafka.py"]
    assert not offenders, f"build aiokafka clients with **client_kwargs(settings): {offenders}"
