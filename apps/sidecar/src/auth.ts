// Bearer-token authentication for every listener of the sidecar (the gRPC port and the HTTP
// listener), independent of the transport: a listener passes the `authorization` value it received
// and what the request needs, and maps the decision onto its own status (gRPC UNAUTHENTICATED /
// PERMISSION_DENIED, HTTP 401 / 403).
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { AUTHORIZATION_METADATA_KEY, AUTHORIZATION_SCHEME, CONNECTION_ENV } from '@training-callbacks/proto';
import { ConfigError } from './config.ts';

/** What a request needs: `read` (no side effects) or `write`. A write token may also read. */
export type Access = 'read' | 'write';

/** A token's role, from its line in the token file. */
export type Role = Access;

/** The outcome of {@link TokenAuthenticator.authorize}. */
export type AuthDecision =
  | { readonly ok: true; readonly role: Role }
  | {
      readonly ok: false;
      readonly reason: 'unauthenticated' | 'permission-denied';
      readonly message: string;
    };

/** A ConfigError (exit code 2) thrown when the token file cannot be read or holds no usable token. */
export class TokenFileError extends ConfigError {
  override readonly name = 'TokenFileError';
}

/** Shortest accepted token: 16 characters (`openssl rand -hex 32` gives 64). */
export const MIN_TOKEN_LENGTH = 16;

/** How often the token file is checked for a change (a token added or revoked without a restart). */
export const TOKEN_RELOAD_INTERVAL_MS = 1000;

const HOW_TO_SEND =
  `send "${AUTHORIZATION_METADATA_KEY}: ${AUTHORIZATION_SCHEME} <token>" (gRPC metadata or HTTP header; the ` +
  `clients do so from ${CONNECTION_ENV.token} or ${CONNECTION_ENV.tokenFile})`;

const BEARER = new RegExp(`^${AUTHORIZATION_SCHEME}\\s+(\\S+)\\s*$`, 'i');

interface TokenEntry {
  readonly digest: Buffer;
  readonly role: Role;
}

const digestOf = (token: string) => createHash('sha256').update(token, 'utf8').digest();

/**
 * Parses a token file: one token per line, `write <token>` or `read <token>` (a bare `<token>` is a
 * write token); blank lines and lines starting with `#` are ignored.
 */
export function parseTokenFile(text: string, file: string): TokenEntry[] {
  const entries: TokenEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (const [index, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    const where = `${file} line ${index + 1}`;
    let role: Role;
    let token: string;
    if (fields.length === 1) {
      role = 'write';
      token = fields[0]!;
    } else if (fields.length === 2 && (fields[0] === 'read' || fields[0] === 'write')) {
      role = fields[0];
      token = fields[1]!;
    } else {
      throw new TokenFileError(
        `${where}: expected "write <token>", "read <token>" or "<token>", got ${fields.length} fields ` +
          `starting with "${fields[0]}"`,
      );
    }
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new TokenFileError(
        `${where}: the token is ${token.length} characters; use at least ${MIN_TOKEN_LENGTH} ` +
          '(e.g. `openssl rand -hex 32`)',
      );
    }
    entries.push({ digest: digestOf(token), role });
  }
  if (entries.length === 0) {
    throw new TokenFileError(
      `${file} holds no token; write one per line as "write <token>" or "read <token>"`,
    );
  }
  return entries;
}

/** Checks bearer tokens against the token file, which it re-reads when it changes. */
export interface TokenAuthenticator {
  /** Decides on a request carrying `authorization` (undefined: none sent) that needs `access`. */
  authorize(authorization: string | undefined, access: Access, what: string): AuthDecision;
  /** Stops watching the file. */
  close(): void;
}

/**
 * Reads the token file now (throws {@link TokenFileError} with what to fix) and re-reads it every
 * {@link TOKEN_RELOAD_INTERVAL_MS}; a file that became unusable is reported once through `warn` and
 * the previous tokens stay in force.
 */
export function watchTokenFile(
  file: string,
  warn: (line: string) => void,
  intervalMs = TOKEN_RELOAD_INTERVAL_MS,
): TokenAuthenticator {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new TokenFileError(`cannot read --auth-token-file ${file}: ${(error as Error).message}`);
  }
  let entries = parseTokenFile(text, file);
  let lastProblem: string | undefined;
  let checking = false;
  const check = async () => {
    if (checking) return;
    checking = true;
    try {
      const next = await readFile(file, 'utf8');
      if (next === text) return;
      entries = parseTokenFile(next, file);
      text = next;
      lastProblem = undefined;
      warn(`training-callbacks: --auth-token-file changed; ${entries.length} token(s) now accepted`);
    } catch (error) {
      const problem = (error as Error).message;
      if (problem !== lastProblem) {
        warn(
          `training-callbacks: --auth-token-file not reloaded, the previous tokens stay valid: ${problem}`,
        );
        lastProblem = problem;
      }
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();

  return {
    authorize(authorization, access, what) {
      if (authorization === undefined || authorization === '') {
        return {
          ok: false,
          reason: 'unauthenticated',
          message: `${what} needs a token and none was sent: ${HOW_TO_SEND}`,
        };
      }
      const match = BEARER.exec(authorization);
      if (!match) {
        return {
          ok: false,
          reason: 'unauthenticated',
          message: `the authorization sent is not a bearer token: ${HOW_TO_SEND}`,
        };
      }
      const role = roleOf(entries, match[1]!);
      if (role === undefined) {
        return {
          ok: false,
          reason: 'unauthenticated',
          message:
            'the token sent is not one this sidecar accepts (it is not in its --auth-token-file); ' +
            `check ${CONNECTION_ENV.token} / ${CONNECTION_ENV.tokenFile} against that file`,
        };
      }
      if (access === 'write' && role === 'read') {
        return {
          ok: false,
          reason: 'permission-denied',
          message:
            `the token sent is read-only and ${what} writes; use a token with the write role ` +
            '(a "write <token>" line in the sidecar\'s --auth-token-file)',
        };
      }
      return { ok: true, role };
    },
    close: () => clearInterval(timer),
  };
}

/**
 * The role of `token`, or undefined. Compares SHA-256 digests (equal lengths) with timingSafeEqual
 * against every entry without stopping at a match, so the time taken says nothing about the tokens.
 */
function roleOf(entries: readonly TokenEntry[], token: string): Role | undefined {
  const digest = digestOf(token);
  let role: Role | undefined;
  for (const entry of entries) {
    if (timingSafeEqual(entry.digest, digest) && role !== 'write') role = entry.role;
  }
  return role;
}
