"""The package is pip-installable, self-contained and depends on grpcio and protobuf only."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the source tree.
    source = out / "source"
    ignore = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache", "tests", "bench")
    shutil.copytree(PACKAGE, source, ignore=ignore)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)], check=True, timeout=300)
    (found,) = out.glob("training_callbacks-*.whl")
    return found


def test_wheel_contents(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    proto = "training_callbacks/_proto/trainingcallbacks/v1/"
    for name in ("training_callbacks_pb2.py", "training_callbacks_pb2.pyi", "training_callbacks_pb2_grpc.py"):
        assert proto + name in names
    assert "training_callbacks/py.typed" in names
    for adapter in ("ultralytics", "lightning", "huggingface"):
        assert f"training_callbacks/{adapter}.py" in names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]
    runtime = sorted(r.split()[1] for r in requires if "extra ==" not in r)
    assert [r.split(">")[0].split("<")[0] for r in runtime] == ["grpcio", "protobuf"]


def test_installs_into_a_clean_environment(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)], check=True, timeout=600)
    code = (
        "import training_callbacks as tc, sys;"
        "from training_callbacks._proto.trainingcallbacks.v1 import training_callbacks_pb2_grpc;"
        "cb = tc.TrainingCallbacks('x', 'detect', address='127.0.0.1:1');"
        "cb.on_batch_end(0, {'loss': 1.0}); cb.close();"
        "assert 'trainingcallbacks' not in sys.modules;"  # the grpc stub's import was made relative
        "print(tc.__version__)"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "0.1.0"
