"""The Python examples of the READMEs, read from the README files at test time and run against a real
sidecar; then what the README says they do is read back. A prelude defines only what an example
leaves to the reader (a data loader, a training step); the example's code runs unchanged, except
that the fixed address it names is mapped to the test's sidecar.
The TypeScript examples run in apps/sidecar-e2e/src/readme-examples.spec.ts.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from sidecar import REPO, Sidecar

from training_callbacks import SidecarClient
from training_callbacks._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb


def fenced_block(readme: str, lang: str, heading: str, index: int = 0) -> str:
    """The ``index``-th fenced block of ``lang`` under the Markdown heading ``heading``."""
    blocks: list[str] = []
    current = ""
    lines = (REPO / readme).read_text(encoding="utf-8").split("\n")
    i = 0
    while i < len(lines):
        if re.match(r"^#{1,6} ", lines[i]):
            current = re.sub(r"^#+ ", "", lines[i])
        opening = re.match(r"^```(\S*)\s*$", lines[i])
        if opening:
            body: list[str] = []
            i += 1
            while i < len(lines) and not re.match(r"^```\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            if opening.group(1) == lang and current == heading:
                blocks.append("\n".join(body) + "\n")
        i += 1
    if len(blocks) <= index:
        raise AssertionError(f"{readme}: no ```{lang} block #{index} under the heading {heading!r}")
    return blocks[index]


@pytest.fixture
def own_sidecar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A sidecar of the test's own (the examples use fixed job ids), found through the environment."""
    with Sidecar(tmp_path / "sidecar") as process:
        monkeypatch.setenv("TRAINING_CALLBACKS_ADDRESS", process.address)
        yield process


def test_root_readme_python_example(own_sidecar: Sidecar) -> None:
    code = fenced_block("README.md", "python", "Python: the seed's callbacks, and one line per framework")
    exec(compile(code, "README.md", "exec"), {})
    with SidecarClient(own_sidecar.address) as sidecar:
        job = sidecar.get_job("job-42")
        epochs = sidecar.list_epochs("job-42")
    assert job.status == pb.JOB_STATUS_COMPLETED
    assert [e.epoch for e in epochs] == list(range(10))
    # The README's comment: timm's percent → 0.912.
    assert all(math.isclose(e.metrics["accuracy"], 0.912) for e in epochs)
    assert all(e.metrics["train_loss"] == 0.23 for e in epochs)


class _Loss:
    """What a framework's training step returns: a tensor-like value with ``item()``."""

    def __init__(self, value: float) -> None:
        self.value = value

    def item(self) -> float:
        return self.value


def test_client_readme_use_and_read_back(own_sidecar: Sidecar, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = "packages/python-client/README.md"
    use = fenced_block(readme, "python", "Use", 0)
    read_back = fenced_block(readme, "python", "Use", 1)
    # The example logs "checkpoints/last.pt" relative to the working directory.
    monkeypatch.chdir(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"weights")
    # What the example leaves to the reader: a data loader and a training step.
    namespace: dict[str, object] = {"loader": range(5), "train_step": lambda batch: _Loss(0.5 / (batch + 1))}
    exec(compile(use, readme, "exec"), namespace)
    assert '"127.0.0.1:50051"' in read_back
    exec(compile(read_back.replace('"127.0.0.1:50051"', repr(own_sidecar.address)), readme, "exec"), namespace)

    job, epochs, points = namespace["job"], namespace["epochs"], namespace["points"]
    assert isinstance(job, pb.Job) and job.status == pb.JOB_STATUS_COMPLETED
    assert [e.epoch for e in epochs] == list(range(10))  # type: ignore[attr-defined]
    assert math.isclose(job.final_metrics["accuracy"], 0.912)
    assert len(points) == 10 * 5  # type: ignore[arg-type]
    with SidecarClient(own_sidecar.address) as sidecar:
        artifacts = sidecar.list_artifacts("job-42")
    assert [a.artifact_path for a in artifacts] == ["checkpoints/last.pt"]  # logged each epoch, kept once
