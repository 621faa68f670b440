"""Fixtures: one real sidecar per session, a read client, unique job ids, offline frameworks."""

from __future__ import annotations

import itertools
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from sidecar import Sidecar  # noqa: E402

from training_callbacks import SidecarClient  # noqa: E402

# No network at run time: frameworks must not reach any hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")
os.environ.setdefault("MLFLOW_TRACKING_URI", "")
os.environ.pop("TRAINING_CALLBACKS_ADDRESS", None)
for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
    os.environ.pop(name, None)


@pytest.fixture(scope="session")
def artifact_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory the session sidecar may read artifacts from by path."""
    return tmp_path_factory.mktemp("artifact-root")


@pytest.fixture(scope="session")
def sidecar(tmp_path_factory: pytest.TempPathFactory, artifact_root: Path) -> Iterator[Sidecar]:
    """The real sidecar process, shared by the session."""
    with Sidecar(tmp_path_factory.mktemp("sidecar"), artifact_root=artifact_root) as process:
        yield process


@pytest.fixture
def address(sidecar: Sidecar) -> str:
    return sidecar.address


@pytest.fixture
def reader(sidecar: Sidecar) -> Iterator[SidecarClient]:
    """Reads back through the sidecar's read RPCs."""
    with SidecarClient(sidecar.address) as client:
        yield client


_counter = itertools.count()


@pytest.fixture
def job_id(request: pytest.FixtureRequest) -> str:
    """A job id unique to the test (the session database is shared)."""
    name = request.node.name.replace("[", "-").replace("]", "")[:60]
    return f"{name}-{next(_counter)}-{uuid.uuid4().hex[:6]}"
