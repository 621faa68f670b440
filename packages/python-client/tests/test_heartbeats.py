"""Who the trainer is (BeginTraining's TrainerProcess) and the heartbeats of the client's background
thread, against the real sidecar."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import pytest
from sidecar import Sidecar

from training_callbacks import SidecarClient, TrainingCallbacks, pb
from training_callbacks._trainer import boot_id, process_start_ticks, trainer_process


def test_begin_training_says_who_the_trainer_is(address: str, reader: SidecarClient, job_id: str) -> None:
    cb = TrainingCallbacks(job_id, "pose", address=address, system_metrics_interval=None)
    trainer = cb._begin_request().trainer
    assert trainer.pid == os.getpid()
    assert trainer.start_time_ticks == process_start_ticks(os.getpid()) > 0
    assert trainer.hostname == socket.gethostname()
    assert trainer.boot_id == Path("/proc/sys/kernel/random/boot_id").read_text().strip() == boot_id()
    assert str(uuid.UUID(trainer.session_id)) == trainer.session_id == cb.session_id
    # The sidecar validates it (a bad trainer would be INVALID_ARGUMENT, the job refused).
    cb.on_train_begin()
    assert cb.flush(15)
    assert reader.get_job(job_id).status == pb.JOB_STATUS_RUNNING
    assert (cb.heartbeat_interval, cb.lease_seconds) == (pytest.approx(10.0), pytest.approx(60.0))  # the defaults
    assert cb.on_train_end()


def test_every_client_is_a_session_of_its_own(address: str) -> None:
    a = TrainingCallbacks("job-a", "pose", address=address)
    b = TrainingCallbacks("job-b", "pose", address=address)
    assert a.session_id != b.session_id
    assert trainer_process(a.session_id).session_id == a.session_id


def test_the_process_start_time_is_read_after_the_last_parenthesis(tmp_path: Path) -> None:
    """The command name (field 2 of /proc/<pid>/stat) may hold spaces and ")": a process named so
    still gets its own start time (checked against the wall clock through the boot time)."""
    odd = tmp_path / "train (v2) ) x"
    odd.symlink_to(sys.executable)
    before = time.time()
    child = subprocess.Popen([str(odd), "-c", "import time; time.sleep(30)"])
    try:
        time.sleep(0.5)
        stat = Path(f"/proc/{child.pid}/stat").read_text()
        assert "(train (v2) ) x)" in stat  # the kernel keeps the odd name
        ticks = process_start_ticks(child.pid)
        btime = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        started = btime + ticks / os.sysconf("SC_CLK_TCK")
        assert before - 2 <= started <= time.time() + 2, (before, started)
    finally:
        child.kill()
        child.wait()


def test_heartbeats_keep_coming_while_the_loop_reports_nothing(tmp_path: Path, job_id: str) -> None:
    """A lease of 6 s: the sidecar asks for a beat every second; an epoch that reports nothing for
    4 s still gets them, from the background thread."""
    with Sidecar(tmp_path / "sidecar", extra_args=["--trainer-lease", "6"]) as sidecar:
        cb = TrainingCallbacks(job_id, "pose", address=sidecar.address, system_metrics_interval=None)
        cb.on_train_begin()
        cb.on_epoch_begin(0)
        assert cb.flush(15)
        assert (cb.heartbeat_interval, cb.lease_seconds) == (pytest.approx(1.0), pytest.approx(6.0))
        time.sleep(4.5)  # a long epoch: no report at all
        beats = cb.stats().heartbeats
        assert beats >= 2, beats
        assert cb.on_train_end()
        ended = cb.stats().heartbeats
        time.sleep(2.5)
        assert cb.stats().heartbeats == ended  # none after the end


def test_a_heartbeat_for_a_job_the_sidecar_lost_begins_it_again(tmp_path: Path, job_id: str) -> None:
    """NOT_FOUND to a heartbeat (the sidecar restarted on a new database): as for any write, the job is
    begun again, without a report from the loop."""
    data = tmp_path / "a"
    sidecar = Sidecar(data, extra_args=["--trainer-lease", "6"]).start()
    port = sidecar.address.rsplit(":", 1)[1]
    cb = TrainingCallbacks(job_id, "pose", address=sidecar.address, system_metrics_interval=None)
    try:
        cb.on_train_begin()
        assert cb.flush(15)
        sidecar.stop()
        sidecar = Sidecar(tmp_path / "b", listen=f"127.0.0.1:{port}", extra_args=["--trainer-lease", "6"]).start()
        with SidecarClient(sidecar.address) as reader:
            deadline = time.monotonic() + 30
            while True:
                try:
                    assert reader.get_job(job_id).status == pb.JOB_STATUS_RUNNING
                    break
                except Exception as err:  # noqa: BLE001 - NOT_FOUND until the heartbeat brought it back
                    assert getattr(err, "code", None) in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE), err
                    assert time.monotonic() < deadline, "the job was not begun again"
                    time.sleep(0.2)
        assert cb.on_train_end()
    finally:
        cb.close()
        sidecar.stop()


def test_an_epoch_of_three_leases_without_a_report_is_not_a_death(tmp_path: Path, job_id: str) -> None:
    """A 2 s lease (a beat every 1/3 s): 7 s without a report from the loop, the job stays RUNNING,
    its lease renewed by the background thread. The same silence without a client's heartbeats (the
    raw RPC) is a lost job: the lease is real."""
    with Sidecar(tmp_path / "sidecar", extra_args=["--trainer-lease", "2"]) as sidecar:
        cb = TrainingCallbacks(job_id, "pose", address=sidecar.address, system_metrics_interval=None)
        cb.on_train_begin()
        cb.on_epoch_begin(0)
        assert cb.flush(15)
        with SidecarClient(sidecar.address) as reader:
            silent = f"{job_id}-silent"
            reader.stub.BeginTraining(pb.BeginTrainingRequest(job_id=silent, task_type=pb.TASK_TYPE_POSE_ESTIMATION), timeout=15)
            time.sleep(7)  # an epoch of 3.5 leases
            job = reader.get_job(job_id)
            assert job.status == pb.JOB_STATUS_RUNNING, job.end_reason
            lost = reader.get_job(silent)
            assert (lost.status, lost.end_cause) == (pb.JOB_STATUS_FAILED, pb.END_CAUSE_LEASE_EXPIRED)
            assert "no heartbeat" in lost.end_reason
        assert cb.stats().heartbeats >= 10
        assert cb.on_train_end()
