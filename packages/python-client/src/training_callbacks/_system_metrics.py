"""Generated from proto/system-metrics.json by packages/proto/scripts/generate-system-metrics.ts; do not edit.

The system metrics the client samples, under MLflow's own names (its "System metrics" tab): the host's
under the prefix, each GPU's as ``gpu_<index>_<name>`` under it.
"""

from __future__ import annotations

from typing import Final

#: The prefix of every system metric.
SYSTEM_METRIC_PREFIX: Final = "system/"

#: The host's metrics: name → unit.
HOST_METRICS: Final[dict[str, str]] = {
    "cpu_utilization_percentage": "percent (0-100)",  # busy share of all CPUs since the last sample
    "system_memory_usage_megabytes": "MB (10^6 bytes)",  # memory in use: MemTotal - MemAvailable
    "system_memory_usage_percentage": "percent (0-100)",  # memory in use, share of MemTotal
}

#: Each GPU's metrics (``gpu_<index>_<name>``): name → unit.
GPU_METRICS: Final[dict[str, str]] = {
    "utilization_percentage": "percent (0-100)",  # NVML utilization.gpu
    "memory_usage_megabytes": "MB (10^6 bytes)",  # NVML memory used
    "memory_usage_percentage": "percent (0-100)",  # memory used / total
    "temperature_celsius": "degrees Celsius",  # NVML GPU temperature (MLflow samples none; named in its style)
    "power_usage_watts": "W",  # NVML power usage / 1000
    "power_usage_percentage": "percent (0-100)",  # power usage / enforced power limit
}
