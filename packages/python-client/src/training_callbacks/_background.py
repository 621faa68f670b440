"""The client's clock: one background thread per job and process for what runs on time, never in
the training loop — heartbeats (they keep the job's lease while an epoch runs for hours without a
report) and system metrics (the sidecar, in another container, cannot see the trainer's GPUs).

System metrics use MLflow's own names (``mlflow/system_metrics/metrics/*.py``), so that MLflow's
"System metrics" tab shows them; the names and their units are in proto/system-metrics.json
(generated into ``_system_metrics.py``, shared with the sidecar's MLflow mirror). They travel as
batch metrics, step = whole seconds since the job was created (a resumed job, or a new process under
the same id, goes on where the last left off: the store keeps one point per name and step).

GPU metrics need ``nvidia-ml-py`` (module ``pynvml``; ``pip install "training-callbacks[gpu]"``),
imported in this thread, and only when it is installed; without it, or without a GPU, there are no
GPU metrics and nothing else changes. CPU and memory come from /proc (Linux), else from ``psutil``
when it is installed.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb
from ._system_metrics import GPU_METRICS, HOST_METRICS, SYSTEM_METRIC_PREFIX

if TYPE_CHECKING:
    from .callbacks import TrainingCallbacks
    from ._transport import Transport

logger = logging.getLogger("training_callbacks")

#: Samples kept while BeginTraining is not acknowledged yet (their step needs the job's creation time).
_MAX_PENDING_SAMPLES = 360


def _known(name: str) -> bool:
    """A name of proto/system-metrics.json: a host metric, or ``gpu_<i>_`` and a GPU metric."""
    if name in HOST_METRICS:
        return True
    head, _, index_and_rest = name.partition("_")
    index, _, rest = index_and_rest.partition("_")
    return head == "gpu" and index.isdigit() and rest in GPU_METRICS


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return None


class HostSampler:
    """CPU and memory of the host (what the trainer's container sees)."""

    def __init__(self) -> None:
        self._last_cpu: tuple[int, int] | None = None
        self._psutil: Any = None
        if _read("/proc/stat") is None and importlib.util.find_spec("psutil") is not None:
            self._psutil = importlib.import_module("psutil")
            self._psutil.cpu_percent()  # the baseline of the first sample
        else:
            self._last_cpu = self._cpu_times()

    @staticmethod
    def _cpu_times() -> tuple[int, int] | None:
        """(busy, total) jiffies of all CPUs, from /proc/stat's first line."""
        text = _read("/proc/stat")
        if not text or not text.startswith("cpu "):
            return None
        fields = [int(v) for v in text.split("\n", 1)[0].split()[1:9]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        total = sum(fields)
        return total - idle, total

    def sample(self) -> dict[str, float]:
        out: dict[str, float] = {}
        if self._psutil is not None:
            out["cpu_utilization_percentage"] = float(self._psutil.cpu_percent())
            memory = self._psutil.virtual_memory()
            used = memory.total - memory.available
            out["system_memory_usage_megabytes"] = used / 1e6
            out["system_memory_usage_percentage"] = used / memory.total * 100 if memory.total else 0.0
            return out
        now = self._cpu_times()
        if now is not None and self._last_cpu is not None and now[1] > self._last_cpu[1]:
            busy, total = now[0] - self._last_cpu[0], now[1] - self._last_cpu[1]
            out["cpu_utilization_percentage"] = round(busy / total * 100, 1)
        self._last_cpu = now
        meminfo = _read("/proc/meminfo")
        if meminfo:
            kib = {}
            for line in meminfo.splitlines():
                name, _, rest = line.partition(":")
                parts = rest.split()
                if parts and name in ("MemTotal", "MemAvailable"):
                    kib[name] = int(parts[0])
            if "MemTotal" in kib and "MemAvailable" in kib and kib["MemTotal"]:
                used = (kib["MemTotal"] - kib["MemAvailable"]) * 1024
                out["system_memory_usage_megabytes"] = used / 1e6
                out["system_memory_usage_percentage"] = round(used / (kib["MemTotal"] * 1024) * 100, 1)
        return out


class GpuSampler:
    """NVIDIA GPUs through NVML (``pynvml`` from ``nvidia-ml-py``); ``available`` is False without it."""

    def __init__(self) -> None:
        self.available = False
        self._nvml: Any = None
        self._handles: list[Any] = []
        if importlib.util.find_spec("pynvml") is None:
            logger.debug("training-callbacks: nvidia-ml-py is not installed; no GPU metrics")
            return
        try:
            nvml = importlib.import_module("pynvml")
            nvml.nvmlInit()
            self._handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(nvml.nvmlDeviceGetCount())]
        except Exception as err:  # noqa: BLE001 - no driver, no GPU: no GPU metrics, nothing else changes
            logger.info("training-callbacks: no GPU metrics (NVML: %s)", err)
            return
        self._nvml = nvml
        self.available = True

    def sample(self) -> dict[str, float]:
        nvml = self._nvml
        out: dict[str, float] = {}
        for i, handle in enumerate(self._handles):
            gpu = f"gpu_{i}_"
            # Each reading on its own: a GPU that lacks one (power on some boards) still gives the others.
            self._try(out, lambda: {gpu + "utilization_percentage": float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)})
            self._try(out, lambda: self._memory(gpu, nvml.nvmlDeviceGetMemoryInfo(handle)))
            self._try(
                out,
                lambda: {gpu + "temperature_celsius": float(nvml.nvmlDeviceGetTemperature(handle, nvml.NVML_TEMPERATURE_GPU))},
            )
            self._try(out, lambda: self._power(gpu, nvml.nvmlDeviceGetPowerUsage(handle), nvml.nvmlDeviceGetEnforcedPowerLimit(handle)))
        return out

    @staticmethod
    def _memory(gpu: str, memory: Any) -> dict[str, float]:
        values = {gpu + "memory_usage_megabytes": memory.used / 1e6}
        if memory.total:
            values[gpu + "memory_usage_percentage"] = round(memory.used / memory.total * 100, 1)
        return values

    @staticmethod
    def _power(gpu: str, milliwatts: float, limit_milliwatts: float) -> dict[str, float]:
        values = {gpu + "power_usage_watts": milliwatts / 1000}
        if limit_milliwatts:
            values[gpu + "power_usage_percentage"] = milliwatts / limit_milliwatts * 100
        return values

    @staticmethod
    def _try(out: dict[str, float], read: Callable[[], dict[str, float]]) -> None:
        try:
            out.update(read())
        except Exception as err:  # noqa: BLE001 - one failed reading is left out
            logger.debug("training-callbacks: NVML reading failed: %s", err)

    def close(self) -> None:
        if self.available:
            try:
                self._nvml.nvmlShutdown()
            except Exception:  # noqa: BLE001
                pass
            self.available = False


class Background:
    """The background thread of one job in one process: heartbeats at the interval the sidecar
    answered BeginTraining with, and a system sample every ``sample_interval`` seconds (None: none).

    Args:
        client: The client whose job this is (its batch queue takes the samples).
        transport: Its transport (the channel, the job's state).
        sample_interval: Seconds between system samples, or None for no system metrics.
    """

    def __init__(self, client: TrainingCallbacks, transport: Transport, sample_interval: float | None) -> None:
        self._client = client
        self._transport = transport
        self._sample_interval = sample_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: list[tuple[float, dict[str, float]]] = []  # (wall time, sample) before the job is known
        self.samples = 0
        self.heartbeats = 0

    def start(self) -> None:
        """Starts the thread (once; idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="training-callbacks-clock", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        pid = os.getpid()
        interval = self._sample_interval
        host = gpus = None
        next_sample = 0.0
        if interval:
            host, gpus = HostSampler(), GpuSampler()
            next_sample = time.monotonic() + interval
        beating = True
        next_beat: float | None = None  # unknown until BeginTraining is answered
        try:
            while not self._stop.is_set() and pid == os.getpid():
                now = time.monotonic()
                state = self._transport.state
                if state.begin == "refused":
                    beating = False
                if beating and next_beat is None and state.begin == "acked":
                    if state.heartbeat_interval > 0:
                        next_beat = now + state.heartbeat_interval  # BeginTraining renewed the lease just now
                    else:
                        beating = False  # a sidecar that takes no heartbeats
                if beating and next_beat is not None and now >= next_beat:
                    if self._beat():
                        next_beat = now + state.heartbeat_interval
                    else:
                        beating, next_beat = False, None  # the job has ended
                if interval and now >= next_sample:
                    assert host is not None and gpus is not None
                    self._sample(host, gpus)
                    next_sample = max(next_sample + interval, now)  # (after a suspension: no burst of samples)
                self._flush_pending()
                if not beating and not interval and not self._pending:
                    return
                waits = [t - now for t in (next_beat, next_sample if interval else None) if t is not None]
                if beating and next_beat is None:
                    waits.append(0.2)  # waiting for BeginTraining's answer
                self._stop.wait(max(min(waits, default=0.2), 0.01))
        finally:
            if gpus is not None:
                gpus.close()

    def _beat(self) -> bool:
        """One heartbeat; False once the job is no longer running. A failed heartbeat is neither
        retried nor counted as a loss: the next one follows at the interval."""
        response = self._transport.heartbeat(self._client.session_id)
        if response is None:
            return True
        self.heartbeats += 1
        if response.revived:
            logger.info("training-callbacks: job %s revived by a heartbeat", self._client.job_id)
        return response.status == pb.JOB_STATUS_RUNNING

    def _sample(self, host: HostSampler, gpus: GpuSampler) -> None:
        values: dict[str, float] = {}
        for sampler in (host, gpus):
            if sampler is gpus and not gpus.available:
                continue
            try:
                values.update(sampler.sample())
            except Exception as err:  # noqa: BLE001 - a sampler must never stop the clock
                self._transport.state.warn_once(f"sampler:{type(sampler).__name__}", "training-callbacks: system metrics: %s", err)
        if values:
            self.samples += 1
            self._pending.append((time.time(), {SYSTEM_METRIC_PREFIX + k: v for k, v in values.items() if _known(k)}))
            if len(self._pending) > _MAX_PENDING_SAMPLES:
                oldest = self._pending.pop(0)
                self._transport.ledger.add(
                    "system metrics: BeginTraining not acknowledged for a long time", dropped_points=len(oldest[1])
                )

    def _flush_pending(self) -> None:
        if not self._pending:
            return
        job = self._transport.state.job
        if job is None or not job.HasField("created_at"):
            if self._transport.state.begin != "refused":
                return  # the step needs the job's creation time: wait for BeginTraining's answer
            created = time.time()
        else:
            created = job.created_at.ToNanoseconds() / 1e9
        for wall, values in self._pending:
            self._client._queue_row(max(int(wall - created), 0), values)
        self._pending = []
