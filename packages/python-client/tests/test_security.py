"""TLS and bearer tokens from the client's side, against the REAL sidecar started with --tls-cert,
--tls-key, --tls-client-ca and --auth-token-file. Certificates are real PEM files made by the
openssl CLI through the sidecar's own test helper (apps/sidecar/src/testing-certificates.ts)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from sidecar import REPO, Sidecar, sidecar_command

from training_callbacks import ConfigurationError, SidecarClient, SidecarRejectedError, TrainingCallbacks, pb
from training_callbacks._client_connection import CONNECTION_ENV
from training_callbacks._connection import resolve_connection

WRITE_TOKEN = "py-write-0123456789abcdef"
READ_TOKEN = "py-read-0123456789abcdef"
HELPER = REPO / "apps" / "sidecar" / "src" / "testing-certificates.ts"


def make_certificates(directory: Path) -> dict[str, dict[str, str]]:
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, as PEM files."""
    script = (
        f"const m = await import({json.dumps(str(HELPER))});"
        f"const ca = m.createCertificateAuthority({json.dumps(str(directory))}, 'ca');"
        "console.log(JSON.stringify({ ca,"
        f" server: m.issueCertificate(ca, {json.dumps(str(directory))}, 'server', 'server'),"
        f" client: m.issueCertificate(ca, {json.dumps(str(directory))}, 'trainer', 'client') }}));"
    )
    node = sidecar_command()[0]
    out = subprocess.run([node, "--input-type=module", "-e", script], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, str]]:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def token_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("tokens")
    (directory / "tokens").write_text(f"write {WRITE_TOKEN}\nread {READ_TOKEN}\n")
    (directory / "trainer-token").write_text(f"{WRITE_TOKEN}\n")
    return {"sidecar": directory / "tokens", "trainer": directory / "trainer-token"}


@pytest.fixture(scope="module")
def secure_sidecar(
    tmp_path_factory: pytest.TempPathFactory, certificates: dict[str, dict[str, str]], token_files: dict[str, Path]
) -> Iterator[Sidecar]:
    args = [
        "--tls-cert", certificates["server"]["certFile"],
        "--tls-key", certificates["server"]["keyFile"],
        "--tls-client-ca", certificates["ca"]["certFile"],
        "--auth-token-file", str(token_files["sidecar"]),
    ]  # fmt: skip
    with Sidecar(tmp_path_factory.mktemp("secure"), extra_args=args) as process:
        yield process


@pytest.fixture
def secure_env(
    monkeypatch: pytest.MonkeyPatch,
    secure_sidecar: Sidecar,
    certificates: dict[str, dict[str, str]],
    token_files: dict[str, Path],
) -> None:
    """The environment a pod gives the trainer: address, CA, client certificate and the token file."""
    for name in CONNECTION_ENV.values():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(CONNECTION_ENV["address"], secure_sidecar.address)
    monkeypatch.setenv(CONNECTION_ENV["ca_file"], certificates["ca"]["certFile"])
    monkeypatch.setenv(CONNECTION_ENV["client_cert_file"], certificates["client"]["certFile"])
    monkeypatch.setenv(CONNECTION_ENV["client_key_file"], certificates["client"]["keyFile"])
    monkeypatch.setenv(CONNECTION_ENV["token_file"], str(token_files["trainer"]))


def test_reports_over_tls_with_the_token_from_the_environment(secure_env: None, job_id: str) -> None:
    callbacks = TrainingCallbacks(job_id, "image_classification", strict=True)
    assert callbacks.connection.tls
    with callbacks:
        callbacks.on_epoch_begin(0)
        callbacks.on_batch_end(0, {"loss": 0.5})
        callbacks.on_epoch_end(0, {"accuracy": 0.75})
    with SidecarClient() as reader:
        job = reader.get_job(job_id)
        assert job.status == pb.JOB_STATUS_COMPLETED
        assert [e.metrics["accuracy"] for e in reader.list_epochs(job_id)] == [0.75]


def test_no_token_wrong_token_and_read_token(
    secure_env: None, monkeypatch: pytest.MonkeyPatch, job_id: str
) -> None:
    monkeypatch.delenv(CONNECTION_ENV["token_file"])
    with SidecarClient() as anonymous, pytest.raises(SidecarRejectedError) as refused:
        anonymous.list_jobs()
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED
    assert "TRAINING_CALLBACKS_TOKEN" in refused.value.details

    with SidecarClient(token="not-a-token-of-this-sidecar") as wrong, pytest.raises(SidecarRejectedError) as refused:
        wrong.list_jobs()
    assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED

    # A read token from the environment reads, and its writes are refused with PERMISSION_DENIED.
    monkeypatch.setenv(CONNECTION_ENV["token"], READ_TOKEN)
    with SidecarClient() as reader:
        reader.list_jobs()
    with pytest.raises(SidecarRejectedError) as refused:
        TrainingCallbacks(job_id, "image_classification", strict=True).on_train_begin()
    assert refused.value.code == grpc.StatusCode.PERMISSION_DENIED
    # An argument wins over the environment.
    with TrainingCallbacks(job_id, "image_classification", strict=True, token=WRITE_TOKEN) as callbacks:
        callbacks.on_epoch_end(0, {"accuracy": 0.5})
    with SidecarClient() as reader:
        assert reader.get_job(job_id).status == pb.JOB_STATUS_COMPLETED


def test_mutual_tls_without_a_client_certificate_is_refused(secure_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(CONNECTION_ENV["client_cert_file"])
    monkeypatch.delenv(CONNECTION_ENV["client_key_file"])
    with SidecarClient(timeout=15) as client, pytest.raises(Exception) as refused:
        client.list_jobs()
    assert getattr(refused.value, "code", None) == grpc.StatusCode.UNAVAILABLE


def test_connection_settings_precedence_and_errors(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("  from-file-0123456789abcdef \n")
    env = {
        CONNECTION_ENV["address"]: "sidecar:1",
        CONNECTION_ENV["token"]: "from-env",
        CONNECTION_ENV["token_file"]: str(token_file),
    }
    assert resolve_connection(environ=env).token == "from-env"
    assert resolve_connection(environ=env).address == "sidecar:1"
    assert resolve_connection(token_file=str(token_file), environ=env).token == "from-file-0123456789abcdef"
    assert resolve_connection("other:2", token="arg", environ=env).address == "other:2"
    del env[CONNECTION_ENV["token"]]
    assert resolve_connection(environ=env).token == "from-file-0123456789abcdef"
    assert resolve_connection(environ={}).token is None
    assert not resolve_connection(environ={}).tls
    assert "from-file" not in repr(resolve_connection(environ=env))  # the token stays out of logs

    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ConfigurationError, match="is empty"):
        resolve_connection(token_file=str(tmp_path / "empty"), environ={})
    with pytest.raises(ConfigurationError, match=r"cannot read the CA file \(\$TRAINING_CALLBACKS_CA_FILE\)"):
        resolve_connection(environ={CONNECTION_ENV["ca_file"]: str(tmp_path / "missing.crt")})
    with pytest.raises(ConfigurationError, match="needs its key"):
        resolve_connection(client_cert_file=str(token_file), ca_file=str(token_file), environ={})
    with pytest.raises(ConfigurationError, match="needs the sidecar's CA"):
        resolve_connection(client_cert_file=str(token_file), client_key_file=str(token_file), environ={})
