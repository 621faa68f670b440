"""Nothing is lost silently: the shared status table decides retry or drop; what is lost is counted,
logged by on_train_end and sent with EndTraining. Against the REAL sidecar process."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path

import grpc
import pytest
from fault_proxy import FaultProxy
from sidecar import REPO, Sidecar

from training_callbacks import SidecarClient, TrainingCallbacks, pb
from training_callbacks._status_table import RETRY_METADATA_KEY, SUSPECT_ATTEMPTS, classify_status


def test_the_status_table_is_the_shared_data_file() -> None:
    table = json.loads((REPO / "proto" / "status-table.json").read_text())
    assert table["retryMetadataKey"] == RETRY_METADATA_KEY and table["suspectAttempts"] == SUSPECT_ATTEMPTS
    for row in table["statuses"]:
        assert grpc.StatusCode[row["name"]].value[0] == row["code"]  # names match grpc's codes
        assert classify_status(row["code"]) == row["class"]
    assert {classify_status(c.value[0]) for c in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)} == {
        "transient"
    }
    exhausted = grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    assert classify_status(exhausted) == "permanent"  # an oversized message: retrying cannot help
    assert classify_status(exhausted, "transient") == "transient"  # a full disk, marked by the sidecar
    assert classify_status(grpc.StatusCode.UNAVAILABLE.value[0], "permanent") == "permanent"
    assert classify_status(99) == "permanent"


def test_an_oversized_report_is_dropped_with_a_warning_and_later_reports_go_through(
    tmp_path: Path, job_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Sidecar(tmp_path / "small", extra_args=["--max-message-bytes", "65536"]) as sidecar:
        cb = TrainingCallbacks(job_id, "image_classification", address=sidecar.address, flush_timeout=30)
        huge = {f"custom_metric_{i:05d}": float(i) for i in range(4000)}  # ~100 KB > 64 KiB
        t0 = time.monotonic()
        with caplog.at_level(logging.WARNING, "training_callbacks"):
            cb.on_train_begin()
            cb.on_epoch_end(0, huge)
            for step in range(50):
                cb.on_batch_end(step, {"loss": 1.0 / (step + 1)})
            cb.on_epoch_end(1, {"accuracy": 0.5})
            assert cb.on_train_end({"accuracy": 0.5}) is False  # delivered, but one epoch was lost
        assert time.monotonic() - t0 < 15  # not retried forever; nothing waited behind it
        assert "epoch_end of job" in caplog.text and "RESOURCE_EXHAUSTED" in caplog.text
        assert "lost reports: 1 writes failed (epoch_end refused: RESOURCE_EXHAUSTED" in caplog.text
        losses = cb.losses()
        assert (losses.failed_writes, losses.dropped_points, losses.refused_points) == (1, 0, 0)
        with SidecarClient(sidecar.address) as reader:
            assert [e.epoch for e in reader.list_epochs(job_id)] == [1]
            assert len(reader.batch_points(job_id)) == 50
            job = reader.get_job(job_id)
            assert job.status == pb.JOB_STATUS_COMPLETED
            assert job.client_losses.failed_writes == 1  # the loss reached the job
            assert job.client_losses.reasons[0].startswith("epoch_end refused: RESOURCE_EXHAUSTED")
        assert any(f"[{job_id}] training completed" in line and "LOSSES: 1 write failed" in line for line in sidecar.output)


def test_an_outage_past_the_flush_deadline_is_given_up_counted_and_the_end_still_sent(
    tmp_path: Path, job_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    with Sidecar(tmp_path / "outage") as sidecar, FaultProxy(sidecar.address) as proxy:
        cb = TrainingCallbacks(job_id, "image_classification", address=proxy.address, call_timeout=6)
        cb.on_train_begin()
        assert cb.flush(30)
        proxy.refuse()  # the sidecar is unreachable: an epoch and 10 points wait, retried (UNAVAILABLE)
        cb.on_epoch_end(0, {"accuracy": 0.5})
        for step in range(10):
            cb.on_batch_end(step, {"loss": 1.0})

        def reachable_after_give_up() -> None:
            while cb.losses().failed_writes == 0:  # on_train_end gives up at timeout - call_timeout
                time.sleep(0.05)
            proxy.forward()

        threading.Thread(target=reachable_after_give_up, daemon=True).start()
        with caplog.at_level(logging.WARNING, "training_callbacks"):
            assert cb.on_train_end(timeout=16) is False  # gives up after 10 s, then 6 s for the end
        losses = cb.losses()
        assert (losses.failed_writes, losses.dropped_points) == (1, 10)
        assert "not acknowledged by on_train_end's flush deadline (last failure UNAVAILABLE" in losses.describe()
        assert "lost reports: 10 batch points dropped, 1 writes failed" in caplog.text
        with SidecarClient(sidecar.address) as reader:
            job = reader.get_job(job_id)
            assert job.status == pb.JOB_STATUS_COMPLETED  # the end went out after the give-up, with the losses
            assert (job.client_losses.failed_writes, job.client_losses.dropped_points) == (1, 10)
            assert reader.list_epochs(job_id) == []


def test_a_batch_stream_whose_acknowledgement_was_lost_is_resent_and_its_points_counted_once(
    sidecar: Sidecar, reader: SidecarClient, job_id: str
) -> None:
    """The sidecar stores a stream, its answer never arrives, the client resends it: the resend's answer
    counts the points again ("stored already with the same value"), and the client counts them once."""
    with FaultProxy(sidecar.address) as proxy:
        cb = TrainingCallbacks(
            job_id, "image_classification", address=proxy.address, call_timeout=0.5, system_metrics_interval=None
        )
        cb.on_train_begin()
        assert cb.flush(10)
        proxy.hold_answers()
        for step in range(100):
            cb.on_batch_end(step, {"loss": 1.0, "lr": 0.1})
        deadline = time.monotonic() + 20
        while len(reader.batch_points(job_id)) < 200:  # read past the proxy: stored, the answer held
            assert time.monotonic() < deadline, "the sidecar never stored the stream"
            time.sleep(0.05)
        while not cb.stats().unreachable:  # the stream's deadline passed without an answer
            assert time.monotonic() < deadline, "the client never gave up waiting for the answer"
            time.sleep(0.05)
        assert cb.stats().accepted_points == 0
        proxy.release_answers()
        assert cb.on_train_end()
        assert len(reader.batch_points(job_id)) == 200
        assert cb.stats().accepted_points == 200
