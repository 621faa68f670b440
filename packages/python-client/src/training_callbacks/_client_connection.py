"""Generated from proto/client-connection.json by packages/proto/scripts/generate-client-connection.ts; do not edit.

How a client finds and authenticates to its sidecar (see docs/security.md).
"""

from __future__ import annotations

from typing import Final

#: The environment variable of each setting (keyword argument name → variable).
#: An argument wins over every environment variable; among arguments, then among variables, a token wins over a token file.
CONNECTION_ENV: Final[dict[str, str]] = {
    "address": "TRAINING_CALLBACKS_ADDRESS",  # the sidecar: host:port or unix:/path/to.sock
    "token": "TRAINING_CALLBACKS_TOKEN",  # bearer token sent with every call (metadata `authorization: Bearer <token>`)
    "token_file": "TRAINING_CALLBACKS_TOKEN_FILE",  # file holding the bearer token (surrounding whitespace ignored), e.g. a mounted Secret; read when the client is created
    "ca_file": "TRAINING_CALLBACKS_CA_FILE",  # PEM CA bundle the sidecar's certificate is checked against; setting it turns TLS on
    "client_cert_file": "TRAINING_CALLBACKS_CLIENT_CERT_FILE",  # PEM client certificate for mutual TLS (with its key file; needs the CA file)
    "client_key_file": "TRAINING_CALLBACKS_CLIENT_KEY_FILE",  # PEM private key of the client certificate
}

#: The sidecar address used when neither an argument nor $TRAINING_CALLBACKS_ADDRESS gives one.
DEFAULT_ADDRESS: Final = "127.0.0.1:50051"

#: Where the bearer token comes from, first match wins: ("argument" | "environment", setting).
TOKEN_SOURCES: Final[tuple[tuple[str, str], ...]] = (
    ("argument", "token"),
    ("argument", "token_file"),
    ("environment", "token"),
    ("environment", "token_file"),
)

#: The metadata key and scheme of the token: ``authorization: Bearer <token>``.
AUTHORIZATION_METADATA_KEY: Final = "authorization"
AUTHORIZATION_SCHEME: Final = "Bearer"
