// Where the sidecar is and how to authenticate to it: options and environment → channel credentials
// and a bearer-token interceptor. The setting names, their environment variables and which source
// wins come from proto/client-connection.json (generated into @training-callbacks/proto); this module
// only applies them.
import { readFileSync } from 'node:fs';
import {
  type ChannelCredentials,
  credentials as grpcCredentials,
  InterceptingCall,
  type Interceptor,
} from '@grpc/grpc-js';
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import {
  AUTHORIZATION_METADATA_KEY,
  AUTHORIZATION_SCHEME,
  CONNECTION_ENV,
  type ConnectionSettingName,
  DEFAULT_SIDECAR_ADDRESS,
  TOKEN_SOURCES,
} from '@training-callbacks/proto';

/** Connection options; each defaults to its environment variable (see docs/security.md). */
export type ConnectionOptions = { readonly [K in ConnectionSettingName]?: string };

/** A resolved connection. */
export interface Connection {
  readonly address: string;
  /** TLS (a CA file was given) or plaintext; with a client certificate for mutual TLS. */
  readonly credentials: ChannelCredentials;
  readonly tls: boolean;
  /** Adds the bearer token to every call; undefined without a token. */
  readonly interceptor?: Interceptor;
  /** The token's metadata entry, for calls made without the interceptor (the exit path's child process). */
  readonly authorization?: { readonly key: string; readonly value: string };
  /** The PEM files read for TLS, for the same. */
  readonly tlsFiles?: { readonly ca: Buffer; readonly key?: Buffer; readonly cert?: Buffer };
}

type Source = 'argument' | 'environment';

function describe(source: Source, name: ConnectionSettingName): string {
  return source === 'argument' ? `the ${name} option` : `$${CONNECTION_ENV[name]}`;
}

function pick(
  options: ConnectionOptions,
  env: NodeJS.ProcessEnv,
  name: ConnectionSettingName,
): { value: string; source: Source } | undefined {
  const argument = options[name];
  if (argument) return { value: argument, source: 'argument' };
  const variable = env[CONNECTION_ENV[name]]?.trim();
  return variable ? { value: variable, source: 'environment' } : undefined;
}

function read(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (error) {
    throw new RpcError(Status.INVALID_ARGUMENT, `cannot read ${what} ${file}: ${(error as Error).message}`);
  }
}

function resolveToken(options: ConnectionOptions, env: NodeJS.ProcessEnv): string | undefined {
  for (const { from, setting } of TOKEN_SOURCES) {
    const value = from === 'argument' ? options[setting] : env[CONNECTION_ENV[setting]]?.trim();
    if (!value) continue;
    if (setting === 'token') return value.trim();
    const token = read(value, `the token file (${describe(from, setting)})`)
      .toString('utf8')
      .trim();
    if (!token) {
      throw new RpcError(
        Status.INVALID_ARGUMENT,
        `the token file ${value} (${describe(from, setting)}) is empty`,
      );
    }
    return token;
  }
  return undefined;
}

/** A client interceptor adding `authorization: Bearer <token>` (also on plaintext channels). */
export function bearerTokenInterceptor(token: string): Interceptor {
  const value = `${AUTHORIZATION_SCHEME} ${token}`;
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        metadata.set(AUTHORIZATION_METADATA_KEY, value);
        next(metadata, listener);
      },
    });
}

/**
 * Resolves the connection: each option, else its environment variable, else the default; files are
 * read now. Throws {@link RpcError} INVALID_ARGUMENT for an unreadable file, a client certificate
 * without its key, or one without a CA file.
 */
export function resolveConnection(options: ConnectionOptions = {}, env = process.env): Connection {
  const address = pick(options, env, 'address')?.value ?? DEFAULT_SIDECAR_ADDRESS;
  const ca = pick(options, env, 'caFile');
  const cert = pick(options, env, 'clientCertFile');
  const key = pick(options, env, 'clientKeyFile');
  if ((cert === undefined) !== (key === undefined)) {
    throw new RpcError(
      Status.INVALID_ARGUMENT,
      'a client certificate needs its key and the key its certificate: give both clientCertFile and ' +
        `clientKeyFile (or $${CONNECTION_ENV.clientCertFile} and $${CONNECTION_ENV.clientKeyFile})`,
    );
  }
  if (cert && !ca) {
    throw new RpcError(
      Status.INVALID_ARGUMENT,
      `a client certificate is for mutual TLS, which needs the sidecar's CA: give caFile (or $${CONNECTION_ENV.caFile})`,
    );
  }
  const load = (p: { value: string; source: Source }, name: ConnectionSettingName, what: string) =>
    read(p.value, `${what} (${describe(p.source, name)})`);
  const tlsFiles = ca
    ? {
        ca: load(ca, 'caFile', 'the CA file'),
        ...(key && { key: load(key, 'clientKeyFile', 'the client key') }),
        ...(cert && { cert: load(cert, 'clientCertFile', 'the client certificate') }),
      }
    : undefined;
  const credentials = tlsFiles
    ? grpcCredentials.createSsl(tlsFiles.ca, tlsFiles.key ?? null, tlsFiles.cert ?? null)
    : grpcCredentials.createInsecure();
  const token = resolveToken(options, env);
  return {
    address,
    credentials,
    tls: ca !== undefined,
    ...(tlsFiles && { tlsFiles }),
    ...(token !== undefined && {
      interceptor: bearerTokenInterceptor(token),
      authorization: { key: AUTHORIZATION_METADATA_KEY, value: `${AUTHORIZATION_SCHEME} ${token}` },
    }),
  };
}
