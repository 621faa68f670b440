// Generated from proto/system-metrics.json by packages/proto/scripts/generate-system-metrics.ts; do not edit.
// The system metrics the clients sample, under MLflow's own names (its "System metrics" tab).

/** The prefix of every system metric; the MLflow mirror keeps such batch metrics under their own name. */
export const SYSTEM_METRIC_PREFIX = "system/";

/** True for a system metric's name. */
export function isSystemMetric(name: string): boolean {
  return name.startsWith(SYSTEM_METRIC_PREFIX) && name.length > SYSTEM_METRIC_PREFIX.length;
}
