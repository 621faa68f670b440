/**
 * Thrown when catalog input is unusable: an unknown task type, or custom metric definitions that clash
 * with the catalog or with each other. The message says what to fix; the sidecar maps it to
 * INVALID_ARGUMENT at its error edge.
 */
export class CatalogError extends Error {
  override readonly name = 'CatalogError';
}
