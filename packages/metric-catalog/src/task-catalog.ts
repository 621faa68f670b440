import { CATALOGS } from './catalog-data.ts';
import { CatalogError } from './catalog-error.ts';
import type { TaskCatalog } from './metric-definition.ts';
import { isTaskType, TASK_TYPES, type TaskType } from './task-type.ts';

/**
 * Returns the (deeply frozen) catalog of one task type.
 *
 * @throws CatalogError when `task` is not a task type (possible only for untyped callers).
 */
export function getTaskCatalog(task: TaskType): TaskCatalog {
  if (!isTaskType(task)) {
    throw new CatalogError(
      `unknown task type ${JSON.stringify(task)}; expected one of ${TASK_TYPES.join(', ')}`,
    );
  }
  return CATALOGS[task];
}

const ALL_CATALOGS: readonly TaskCatalog[] = Object.freeze(TASK_TYPES.map((task) => CATALOGS[task]));

/** Returns the catalog of every task type, in the order of {@link TASK_TYPES}. */
export function listTaskCatalogs(): readonly TaskCatalog[] {
  return ALL_CATALOGS;
}
