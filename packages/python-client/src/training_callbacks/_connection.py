"""Where the sidecar is and how to authenticate to it: arguments and environment → a gRPC channel.

The setting names, their environment variables and which source wins come from
``proto/client-connection.json`` (generated into ``_client_connection.py``); this module only applies
them. A bad setting raises :class:`ConfigurationError` when the client is created, not on the first call.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from ._client_connection import AUTHORIZATION_METADATA_KEY, AUTHORIZATION_SCHEME, CONNECTION_ENV, TOKEN_SOURCES
from ._config import CHANNEL_OPTIONS, resolve_address
from .errors import ConfigurationError


@dataclasses.dataclass(frozen=True)
class Connection:
    """A resolved connection: the address, the bearer token (if any) and the TLS material (if any),
    read when it was resolved so that creating a channel later (in the background thread, after a
    fork) cannot fail."""

    address: str
    token: str | None = dataclasses.field(default=None, repr=False)
    ca_file: str | None = None
    client_cert_file: str | None = None
    client_key_file: str | None = None
    ca_pem: bytes | None = dataclasses.field(default=None, repr=False)
    client_cert_pem: bytes | None = dataclasses.field(default=None, repr=False)
    client_key_pem: bytes | None = dataclasses.field(default=None, repr=False)

    @property
    def tls(self) -> bool:
        """Whether the channel uses TLS (a CA file was given)."""
        return self.ca_file is not None


def _env(name: str, environ: Mapping[str, str]) -> str | None:
    value = environ.get(CONNECTION_ENV[name], "").strip()
    return value or None


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise ConfigurationError(f"cannot read {what} {path}: {e.strerror or e}") from None


def _describe(source: str, name: str) -> str:
    return f"the {name}= argument" if source == "argument" else f"${CONNECTION_ENV[name]}"


def _resolve_token(arguments: Mapping[str, str | None], environ: Mapping[str, str]) -> str | None:
    for source, name in TOKEN_SOURCES:
        value = arguments.get(name) if source == "argument" else _env(name, environ)
        if not value:
            continue
        if name == "token_file":
            token = _read(value, f"the token file ({_describe(source, name)})").decode("utf-8").strip()
            if not token:
                raise ConfigurationError(f"the token file {value} ({_describe(source, name)}) is empty")
            return token
        return value.strip()
    return None


def resolve_connection(
    address: str | None = None,
    *,
    token: str | None = None,
    token_file: str | None = None,
    ca_file: str | None = None,
    client_cert_file: str | None = None,
    client_key_file: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Connection:
    """Resolves the connection settings: each argument, else its environment variable (see the table in
    docs/security.md), else the default. A token file is read now.

    Raises:
        ConfigurationError: a file cannot be read, or a client certificate comes without its key or
            without a CA file.
    """
    env = os.environ if environ is None else environ
    arguments = {
        "token": token,
        "token_file": token_file,
        "ca_file": ca_file,
        "client_cert_file": client_cert_file,
        "client_key_file": client_key_file,
    }
    files: dict[str, str] = {}
    pems: dict[str, bytes] = {}
    for name in ("ca_file", "client_cert_file", "client_key_file"):
        source = "argument" if arguments[name] else "environment"
        path = arguments[name] or _env(name, env)
        if path is not None:
            files[name] = path
            pems[name.replace("_file", "_pem")] = _read(path, f"{_FILE_WHAT[name]} ({_describe(source, name)})")
    if ("client_cert_file" in files) != ("client_key_file" in files):
        raise ConfigurationError(
            "a client certificate needs its key and the key its certificate: give both client_cert_file and "
            f"client_key_file (or ${CONNECTION_ENV['client_cert_file']} and ${CONNECTION_ENV['client_key_file']})"
        )
    if "client_cert_file" in files and "ca_file" not in files:
        raise ConfigurationError(
            "a client certificate is for mutual TLS, which needs the sidecar's CA: give ca_file "
            f"(or ${CONNECTION_ENV['ca_file']})"
        )
    return Connection(
        address=resolve_address(address, env),
        token=_resolve_token(arguments, env),
        **files,
        **pems,
    )


_FILE_WHAT = {
    "ca_file": "the CA file",
    "client_cert_file": "the client certificate",
    "client_key_file": "the client key",
}


class _BearerToken(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds ``authorization: Bearer <token>`` to every call (on plaintext channels too, where grpc's
    call credentials are refused)."""

    def __init__(self, token: str) -> None:
        self._header = (AUTHORIZATION_METADATA_KEY, f"{AUTHORIZATION_SCHEME} {token}")

    def _details(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        metadata = list(details.metadata or ())
        metadata.append(self._header)
        return _CallDetails(
            details.method,
            details.timeout,
            metadata,
            details.credentials,
            getattr(details, "wait_for_ready", None),
            getattr(details, "compression", None),
        )

    def _intercept(self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any) -> Any:
        return continuation(self._details(details), request)

    intercept_unary_unary = _intercept
    intercept_unary_stream = _intercept
    intercept_stream_unary = _intercept
    intercept_stream_stream = _intercept


class _CallDetails(grpc.ClientCallDetails):  # grpc's own class is abstract; this carries the fields
    def __init__(
        self,
        method: str,
        timeout: float | None,
        metadata: Any,
        credentials: Any,
        wait_for_ready: bool | None,
        compression: Any,
    ) -> None:
        self.method = method
        self.timeout = timeout
        self.metadata = metadata
        self.credentials = credentials
        self.wait_for_ready = wait_for_ready
        self.compression = compression


def create_channel(connection: Connection, options: list[tuple[str, Any]] = CHANNEL_OPTIONS) -> grpc.Channel:
    """The one channel factory: TLS when a CA file is set (with a client certificate for mutual TLS),
    plaintext otherwise (the sidecar next to the trainer), and the bearer token on every call when one
    is set."""
    if connection.ca_pem is not None:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=connection.ca_pem,
            private_key=connection.client_key_pem,
            certificate_chain=connection.client_cert_pem,
        )
        channel = grpc.secure_channel(connection.address, credentials, options=options)
    else:
        channel = grpc.insecure_channel(connection.address, options=options)
    if connection.token is not None:
        channel = grpc.intercept_channel(channel, _BearerToken(connection.token))
    return channel
