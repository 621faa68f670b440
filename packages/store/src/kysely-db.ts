// Typed Kysely access for the hot write paths. MikroORM 7 hands out a Kysely instance bound to the
// EntityManager (`em.getKysely`) whose plugin maps entity and property names to tables and columns
// and converts values through the entities' types (Date, JSON, blob), so these queries stay
// dialect-neutral like the rest of the store. Unlike MikroORM's own query builder, which inlines
// values into the SQL text, Kysely binds parameters: the SQL text repeats and its prepared
// statement is reused (see `sqlite-dialect.ts`).
import type { GetKyselyOptions, InferKyselyDB } from '@mikro-orm/sql';
import type { Kysely } from 'kysely';
import type {
  ArtifactSchema,
  BatchMetricBlockSchema,
  MetricSourceSchema,
  OutboxClaimSchema,
  OutboxItemSchema,
  StoreChangeSchema,
  TrainingJobSchema,
  TrainingMetricSchema,
} from './entities.ts';

/** Entity names as tables, property names as columns, values converted by the entities' types. */
export const KYSELY_OPTIONS = {
  tableNamingStrategy: 'entity',
  columnNamingStrategy: 'property',
  convertValues: true,
} as const satisfies GetKyselyOptions;

/** The store's tables as Kysely sees them through {@link KYSELY_OPTIONS}. */
export type StoreDB = InferKyselyDB<
  | typeof TrainingJobSchema
  | typeof TrainingMetricSchema
  | typeof BatchMetricBlockSchema
  | typeof ArtifactSchema
  | typeof OutboxItemSchema
  | typeof OutboxClaimSchema
  | typeof StoreChangeSchema
  | typeof MetricSourceSchema,
  typeof KYSELY_OPTIONS
>;

/** The Kysely instance of the store's queries (MikroORM's, with the naming plugin; see above). */
export type EntityKysely = Kysely<StoreDB>;
