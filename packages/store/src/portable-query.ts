// A compiled query as plain data: its SQL text, where each parameter comes from, and how each result
// column is read back. The store compiles it from its Kysely builders (`precompiled.ts`, with a
// self-check against the builder path) and hands it to code that must not load MikroORM or Kysely,
// such as the outbox reader of the sidecar's MLflow sync thread; it survives structured cloning
// (`workerData`), so it can cross a thread boundary. Nothing here imports anything.

/** How a named value is bound: as given, or as its decimal text (MikroORM's bigint columns). */
export type PortableBinding = 'value' | 'string';

/** One parameter of the SQL: a named value of the call, or a constant the builder put there. */
export type PortableParam =
  | { readonly slot: string; readonly bind: PortableBinding }
  | { readonly constant: string | number | null };

/**
 * How a column's raw SQLite value becomes the property's value, as MikroORM's Kysely plugin converts
 * it: `as-is`; `json` (parsed when it is text); `number` (bigint and double properties read as
 * numbers); `buffer` (blobs). `unsupported`: the plugin does more (dates, booleans, custom types),
 * so a query of the plan must not return that column (checked when its statement is prepared).
 */
export type ColumnDecoding = 'as-is' | 'json' | 'number' | 'buffer' | 'unsupported';

/** A result column the plugin renames or converts: its property name and its decoding. */
export interface PortableColumn {
  readonly property: string;
  readonly decode: ColumnDecoding;
}

/** A query compiled once, as data. */
export interface PortableQuery {
  readonly name: string;
  readonly sql: string;
  readonly params: readonly PortableParam[];
  /** By result column name (a field name or a property name of the entity read); others pass as-is. */
  readonly columns: Readonly<Record<string, PortableColumn>>;
}

/** The parameters of `query` for `values`, in the SQL's order. */
export function bindParams(query: PortableQuery, values: Readonly<Record<string, unknown>>): unknown[] {
  return query.params.map((param) => {
    if ('constant' in param) return param.constant;
    const value = values[param.slot];
    return param.bind === 'string' && value != null ? String(value) : value;
  });
}

/** MikroORM's `parseJsonSafe`: text is parsed when it is JSON, anything else is kept. */
function parseJsonSafe(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

/** Converts one raw column value (not null) the way `decode` says. */
export function decodeValue(decode: ColumnDecoding, value: unknown, name = '?'): unknown {
  switch (decode) {
    case 'as-is':
      return value;
    case 'json':
      return parseJsonSafe(value);
    case 'number':
      return Number(value);
    case 'buffer':
      return Buffer.isBuffer(value) ? value : Buffer.from(value as Uint8Array);
    case 'unsupported':
      throw new Error(`portable query: column ${name} cannot be read without MikroORM`);
  }
}

/** A raw row as MikroORM's Kysely plugin returns it: columns renamed to properties and converted. */
export function decodeRow(query: PortableQuery, row: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(row)) {
    const value = row[key];
    const column = query.columns[key];
    if (column === undefined) {
      out[key] = value;
    } else {
      out[column.property] = value == null ? value : decodeValue(column.decode, value, key);
    }
  }
  return out;
}

/** Throws unless every result column of `query` (as SQLite names them) can be decoded here. */
export function checkColumns(query: PortableQuery, resultColumns: readonly string[]): void {
  for (const name of resultColumns) {
    if (query.columns[name]?.decode === 'unsupported') {
      throw new Error(`portable query ${query.name}: column ${name} cannot be read without MikroORM`);
    }
  }
}

/**
 * The outbox reader's queries, compiled by the store (`Store.outboxReaderPlan()`). Plain data: pass it
 * to another thread in `workerData`.
 */
export interface OutboxReaderPlan {
  readonly dueJobs: PortableQuery;
  readonly nextDueAtMs: PortableQuery;
  readonly peek: PortableQuery;
  readonly block: PortableQuery;
  readonly statusCounts: PortableQuery;
  readonly statusHead: PortableQuery;
  readonly mirrorState: PortableQuery;
}
