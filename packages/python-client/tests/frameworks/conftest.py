"""Adapter tests run the REAL frameworks on CPU, offline: no hub downloads, no internet."""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator

import pytest

# Before any framework is imported: private config dirs, offline switches, no auto-installs.
_home = tempfile.mkdtemp(prefix="tc-frameworks-")
os.environ["YOLO_CONFIG_DIR"] = os.path.join(_home, "ultralytics")
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ["YOLO_VERBOSE"] = "false"
os.environ["HF_HOME"] = os.path.join(_home, "hf")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["MPLCONFIGDIR"] = os.path.join(_home, "mpl")
os.environ["CUDA_VISIBLE_DEVICES"] = ""
os.environ["TORCH_HOME"] = os.path.join(_home, "torch")

_real_connect = socket.socket.connect
_attempts: list[object] = []


def _guarded_connect(self: socket.socket, address: object) -> None:
    """Refuses every connection that does not stay on this machine (Python-level sockets only;
    gRPC's C core, which talks to the local sidecar, is not affected)."""
    local = self.family == getattr(socket, "AF_UNIX", None) or (
        isinstance(address, tuple) and str(address[0]) in {"127.0.0.1", "::1", "localhost"}
    )
    if not local:
        _attempts.append(address)
        raise OSError(f"network access blocked in tests: {address!r}")
    _real_connect(self, address)


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fails the test if the framework tried to reach the network (a download, telemetry, ...)."""
    _attempts.clear()
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    yield
    assert not _attempts, f"the framework tried to reach the network: {_attempts}"
