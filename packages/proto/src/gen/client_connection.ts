// Generated from proto/client-connection.json by packages/proto/scripts/generate-client-connection.ts; do not edit.
// How a client finds and authenticates to its sidecar (see docs/security.md).

/** A connection setting: a client option of this name, and an environment variable. */
export type ConnectionSettingName = 'address' | 'token' | 'tokenFile' | 'caFile' | 'clientCertFile' | 'clientKeyFile';

/** The environment variable of each setting. An argument wins over every environment variable; among arguments, then among variables, a token wins over a token file. */
export const CONNECTION_ENV: Readonly<Record<ConnectionSettingName, string>> = Object.freeze({
  /** the sidecar: host:port or unix:/path/to.sock */
  address: "TRAINING_CALLBACKS_ADDRESS",
  /** bearer token sent with every call (metadata `authorization: Bearer <token>`) */
  token: "TRAINING_CALLBACKS_TOKEN",
  /** file holding the bearer token (surrounding whitespace ignored), e.g. a mounted Secret; read when the client is created */
  tokenFile: "TRAINING_CALLBACKS_TOKEN_FILE",
  /** PEM CA bundle the sidecar's certificate is checked against; setting it turns TLS on */
  caFile: "TRAINING_CALLBACKS_CA_FILE",
  /** PEM client certificate for mutual TLS (with its key file; needs the CA file) */
  clientCertFile: "TRAINING_CALLBACKS_CLIENT_CERT_FILE",
  /** PEM private key of the client certificate */
  clientKeyFile: "TRAINING_CALLBACKS_CLIENT_KEY_FILE",
});

/** What each setting is, in a few words (for help texts such as the CLI's). */
export const CONNECTION_MEANING: Readonly<Record<ConnectionSettingName, string>> = Object.freeze({
  address: "the sidecar: host:port or unix:/path/to.sock",
  token: "bearer token sent with every call (metadata `authorization: Bearer <token>`)",
  tokenFile: "file holding the bearer token (surrounding whitespace ignored), e.g. a mounted Secret; read when the client is created",
  caFile: "PEM CA bundle the sidecar's certificate is checked against; setting it turns TLS on",
  clientCertFile: "PEM client certificate for mutual TLS (with its key file; needs the CA file)",
  clientKeyFile: "PEM private key of the client certificate",
});

/** The sidecar address used when neither an argument nor TRAINING_CALLBACKS_ADDRESS gives one. */
export const DEFAULT_SIDECAR_ADDRESS = "127.0.0.1:50051";

/** Where the bearer token comes from, first match wins. */
export const TOKEN_SOURCES: readonly { readonly from: 'argument' | 'environment'; readonly setting: 'token' | 'tokenFile' }[] =
  Object.freeze([
    { from: 'argument', setting: 'token' },
    { from: 'argument', setting: 'tokenFile' },
    { from: 'environment', setting: 'token' },
    { from: 'environment', setting: 'tokenFile' },
  ]);

/** The metadata key and scheme of the token: `authorization: Bearer <token>`. */
export const AUTHORIZATION_METADATA_KEY = "authorization";
export const AUTHORIZATION_SCHEME = "Bearer";
