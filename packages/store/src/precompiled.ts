// Hot-path queries compiled once. Building and compiling a Kysely query through MikroORM's plugin
// (operation-node transforms, metadata lookups, value conversion) costs far more CPU than SQLite
// spends running it, and the SQL text of a hot-path query never changes. So each hot query is
// written once as an ordinary Kysely builder and compiled once: its SQL text through the full builder
// path, and the order of its parameters by compiling it again with a marker object in place of every
// value. From then on only its parameters are built, in that order, each converted exactly as the
// MikroORM plugin converts that property (Date, JSON, blob, …).
//
// The SQL text, the table and column names and the dialect's syntax still come from Kysely and
// MikroORM: nothing here is written by hand. A self-check compiles every query through the full
// builder path (the plugin with `convertValues`) for sample values and requires exactly the same SQL
// and parameters, so an upgrade of MikroORM or Kysely that changes either fails loudly at open
// instead of silently writing something else.
import { isDeepStrictEqual } from 'node:util';
import type { EntityName, EntityProperty, MikroORM, Platform } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/sql';
import { KYSELY_OPTIONS, type StoreDB } from './kysely-db.ts';

/** The Kysely instance a hot query is built with (MikroORM's, with the naming plugin). */
export type TypedKysely = ReturnType<typeof typedKysely>;
function typedKysely(em: EntityManager, convertValues: boolean) {
  return em.getKysely<StoreDB>({ ...KYSELY_OPTIONS, convertValues });
}

/** Anything Kysely can compile (a query builder). */
interface Compilable {
  compile(): { readonly sql: string; readonly parameters: readonly unknown[] };
}

/**
 * Where a value goes: `[entity, property name]`, whose type converts it; `null` for a value that
 * belongs to no column and is bound as given (a LIMIT).
 */
export type SlotTarget = readonly [entity: EntityName, property: string] | null;

/** A hot query: a builder over named values, what each value is, and samples for the self-check. */
export interface HotQueryDefinition<V extends Record<string, unknown>> {
  readonly name: string;
  readonly slots: { readonly [K in keyof V]: SlotTarget };
  readonly build: (db: TypedKysely, values: V) => Compilable;
  /** Values for the self-check: use distinct values per slot, and null for nullable slots once. */
  readonly samples: readonly V[];
}

/** A compiled hot query: its SQL, and how to lay out its parameters. */
export interface HotQuery<V extends Record<string, unknown>> {
  readonly sql: string;
  /** The parameters for `values`, in the SQL's order and converted as the MikroORM plugin would. */
  params(values: V): unknown[];
}

/** Stands for one named value while the query is compiled; found again among the parameters. */
class Marker {
  readonly slot: string;
  constructor(slot: string) {
    this.slot = slot;
  }
}

type Convert = (value: unknown) => unknown;

/** Mirrors MikroORM's `MikroTransformer.prepareInputValue` (the self-check holds us to it). */
function converterFor(prop: EntityProperty, platform: Platform): Convert {
  const customType = prop.customType;
  if (customType) {
    const context = { fromQuery: true, key: prop.name, mode: 'query-data' } as const;
    return (value) =>
      value == null ? value : customType.convertToDatabaseValue(value, platform, context as never);
  }
  return (value) => (value instanceof Date ? platform.processDateProperty(value) : value);
}

/** Mirrors the plugin's `prepareOutputValue` for reading one column of a raw row. */
export function columnReader(orm: MikroORM, entity: EntityName, property: string) {
  const prop = propertyOf(orm, entity, property);
  const platform = orm.em.getPlatform();
  const field = prop.fieldNames[0]!;
  const customType = prop.customType;
  return (row: Record<string, unknown>): unknown => {
    const value = row[field];
    if (value == null || !customType) return value;
    return customType.convertToJSValue(value, platform);
  };
}

function propertyOf(orm: MikroORM, entity: EntityName, property: string): EntityProperty {
  const meta = orm.getMetadata().find(entity);
  const prop = meta?.properties[property as never] as EntityProperty | undefined;
  if (!prop) throw new Error(`hot query: unknown property ${meta?.className ?? '?'}.${property}`);
  return prop;
}

/** Compiles hot queries once per store; see the file comment. */
export class HotQueryCompiler {
  readonly #orm: MikroORM;
  readonly #raw: TypedKysely;
  readonly #checked: TypedKysely;
  readonly #platform: Platform;

  constructor(orm: MikroORM) {
    const em = orm.em.fork() as EntityManager;
    this.#orm = orm;
    // Markers must reach the compiled parameters untouched: compile without value conversion, and
    // check against the builder path with it.
    this.#raw = typedKysely(em, false);
    this.#checked = typedKysely(em, true);
    this.#platform = em.getPlatform();
  }

  compile<V extends Record<string, unknown>>(definition: HotQueryDefinition<V>): HotQuery<V> {
    const { sql, layout } = this.#layout(definition);
    const query: HotQuery<V> = {
      sql,
      params: (values) => {
        const out = new Array<unknown>(layout.length);
        for (let i = 0; i < layout.length; i++) {
          const step = layout[i]!;
          out[i] = step.convert ? step.convert(values[step.slot!]) : step.constant;
        }
        return out;
      },
    };
    this.#selfCheck(definition, query.sql, query.params);
    return query;
  }

  /** The SQL text, and where each parameter comes from (a named value and its conversion, or a constant). */
  #layout<V extends Record<string, unknown>>(definition: HotQueryDefinition<V>) {
    const slotNames = Object.keys(definition.slots) as (keyof V & string)[];
    const markers = Object.fromEntries(slotNames.map((name) => [name, new Marker(name)])) as unknown as V;
    const compiled = definition.build(this.#raw, markers).compile();
    const converters = new Map<string, Convert>(
      slotNames.map((name) => {
        const target = definition.slots[name];
        const convert: Convert = target
          ? converterFor(propertyOf(this.#orm, target[0], target[1]), this.#platform)
          : (value) => value;
        return [name, convert];
      }),
    );
    const used = new Set<string>();
    const layout = compiled.parameters.map(
      (parameter): { slot?: string; convert?: Convert; constant?: unknown } => {
        if (!(parameter instanceof Marker)) return { constant: parameter };
        used.add(parameter.slot);
        return { slot: parameter.slot, convert: converters.get(parameter.slot)! };
      },
    );
    for (const name of slotNames) {
      if (!used.has(name)) throw new Error(`hot query ${definition.name}: value ${name} is not a parameter`);
    }
    // The SQL text comes from the builder path itself (the plugin's value conversion may also wrap
    // columns in SQL, e.g. JSON reads); the markers only tell the order of the parameters.
    if (definition.samples.length === 0) throw new Error(`hot query ${definition.name}: no samples`);
    return { sql: definition.build(this.#checked, definition.samples[0]!).compile().sql, layout };
  }

  /** The precompiled query must yield exactly what the builder path yields. */
  #selfCheck<V extends Record<string, unknown>>(
    definition: HotQueryDefinition<V>,
    sql: string,
    paramsOf: (values: V) => unknown[],
  ): void {
    for (const sample of definition.samples) {
      const expected = definition.build(this.#checked, sample).compile();
      const params = paramsOf(sample);
      if (expected.sql !== sql || !isDeepStrictEqual([...expected.parameters], params)) {
        throw new Error(
          `hot query ${definition.name}: the precompiled query differs from the query builder's ` +
            `(MikroORM or Kysely changed?)\n  builder: ${expected.sql} ${inspectParams(expected.parameters)}` +
            `\n  precompiled: ${sql} ${inspectParams(params)}`,
        );
      }
    }
  }
}

function inspectParams(params: readonly unknown[]): string {
  return JSON.stringify(params, (_k, v) =>
    typeof v === 'bigint' ? `${v}n` : v instanceof Uint8Array ? `<${v.length} bytes>` : v,
  );
}
