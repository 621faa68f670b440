"""A fake ``pynvml`` (the module of nvidia-ml-py) for the system-metric tests: there is no GPU here.
Put on a trainer's PYTHONPATH by the TEST only. Two GPUs with fixed readings in NVML's own units
(bytes, milliwatts, °C, percent), so the test can tell whether the client converted them right."""

from __future__ import annotations

from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0
_initialised = False


class NVMLError(Exception):
    pass


def nvmlInit() -> None:
    global _initialised
    _initialised = True


def nvmlShutdown() -> None:
    global _initialised
    _initialised = False


def _check() -> None:
    if not _initialised:
        raise NVMLError("Uninitialized")


def nvmlDeviceGetCount() -> int:
    _check()
    return 2


def nvmlDeviceGetHandleByIndex(index: int) -> int:
    _check()
    return index


def nvmlDeviceGetUtilizationRates(handle: int) -> SimpleNamespace:
    return SimpleNamespace(gpu=37 + handle, memory=12)


def nvmlDeviceGetMemoryInfo(handle: int) -> SimpleNamespace:
    total = 16_000_000_000
    used = 4_000_000_000 + handle * 1_000_000_000
    return SimpleNamespace(total=total, used=used, free=total - used)


def nvmlDeviceGetTemperature(handle: int, sensor: int) -> int:
    assert sensor == NVML_TEMPERATURE_GPU
    return 61 + handle


def nvmlDeviceGetPowerUsage(handle: int) -> int:
    if handle == 1:
        raise NVMLError("Not Supported")  # some boards have no power reading: the others still count
    return 150_000


def nvmlDeviceGetEnforcedPowerLimit(handle: int) -> int:
    return 300_000
