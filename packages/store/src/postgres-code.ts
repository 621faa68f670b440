// What a PostgreSQL failure is, read off node-postgres' errors: the one place that knows their shape,
// so the sidecar's failure table (apps/sidecar/src/failure-status.ts) classifies PostgreSQL and SQLite
// errors alike, by a code.

/**
 * The SQLSTATE of a node-postgres server error ('57P01', '53100', …) found through the error's causes
 * (MikroORM keeps the driver error as a cause), or undefined. node-postgres' `DatabaseError` carries
 * the SQLSTATE as `code` next to a `severity`; the severity tells it apart from an errno code such as
 * 'EPERM', which has five letters too.
 */
export function postgresCode(error: unknown): string | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    const { code, severity } = e as { code?: unknown; severity?: unknown };
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) && typeof severity === 'string') return code;
    if (CONNECTION_LOST.test(e.message)) return CONNECTION_FAILURE;
  }
  return undefined;
}

/** SQLSTATE connection_failure. */
const CONNECTION_FAILURE = '08006';

/**
 * node-postgres' own errors when the connection goes away or cannot be had — they carry no code:
 * the server closed the socket (a restart, a failover, a pooler), the pool's connect timeout ran out,
 * or a client that met such an error is used again. They are what SQLSTATE calls connection_failure.
 */
const CONNECTION_LOST =
  /^(Connection terminated( unexpectedly| due to connection timeout)?|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable|Client was closed and is not queryable)$/;

/** A PostgreSQL connection URL with its password taken out, to name the database in a message. */
export function redactedDatabaseUrl(url: string): string {
  if (!/^postgres(ql)?:\/\//.test(url)) return url;
  try {
    const parsed = new URL(url);
    if (parsed.password !== '') parsed.password = '***';
    return parsed.toString();
  } catch {
    return 'the PostgreSQL database';
  }
}
