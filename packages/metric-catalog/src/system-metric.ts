/**
 * MLflow's prefix of system metrics (`system/cpu_utilization_percentage`, `system/gpu_0_utilization_percentage`,
 * … as `mlflow/system_metrics` logs them): its run page shows every key under it in the "System metrics" tab.
 * The clients' samplers send these as batch metrics (step = seconds since the job was created); the catalog
 * maps none of them and the MLflow mirror keeps them under their own name, without the `batch/` prefix
 * of the other batch metrics, so that MLflow shows them where it shows its own.
 */
export const SYSTEM_METRIC_PREFIX = 'system/';

/** True for a system metric's name (see {@link SYSTEM_METRIC_PREFIX}). */
export function isSystemMetric(name: string): boolean {
  return name.startsWith(SYSTEM_METRIC_PREFIX) && name.length > SYSTEM_METRIC_PREFIX.length;
}
