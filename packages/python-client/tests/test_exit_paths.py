"""Every way a trainer process ends without ``on_train_end`` ends its job right: real trainer
processes (tests/exit_trainer.py) against the real sidecar, the outcome and message read back with
GetJob."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from training_callbacks import SidecarClient, pb

TRAINER = Path(__file__).with_name("exit_trainer.py")
SRC = str(Path(__file__).resolve().parents[1] / "src")


class Trainer:
    """One trainer process; ``wait_for(line)`` reads its output until that line."""

    def __init__(self, address: str, job_id: str, mode: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(TRAINER), address, job_id, mode],
            env={**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []

    def wait_for(self, line: str) -> None:
        assert self.proc.stdout is not None
        for got in self.proc.stdout:
            self.lines.append(got.rstrip("\n"))
            if got.rstrip("\n") == line:
                return
        raise AssertionError(f"the trainer ended before printing {line!r}: {self.finish()}")

    def finish(self, timeout: float = 60) -> tuple[int, str]:
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        self.lines += out.splitlines()
        return self.proc.returncode, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate()


@pytest.mark.parametrize(
    ("mode", "status", "message", "returncode"),
    [
        ("exit", pb.JOB_STATUS_COMPLETED, "", 0),
        ("sys-exit-3", pb.JOB_STATUS_FAILED, "the process exited with status 3 (sys.exit) without on_train_end", 3),
        ("raise", pb.JOB_STATUS_FAILED, "ValueError: loss is NaN at step 100", 1),
        ("keyboard-interrupt", pb.JOB_STATUS_CANCELLED, "KeyboardInterrupt", -signal.SIGINT),
    ],
)
def test_an_exit_without_on_train_end_ends_the_job(
    address: str, reader: SidecarClient, job_id: str, mode: str, status: int, message: str, returncode: int
) -> None:
    trainer = Trainer(address, job_id, mode)
    code, stderr = trainer.finish()
    assert "ready" in trainer.lines, stderr
    assert code == returncode, stderr
    job = reader.get_job(job_id)  # acknowledged before the process exited
    assert (pb.JobStatus.Name(job.status), job.error_message) == (pb.JobStatus.Name(status), message)
    assert [e.epoch for e in reader.list_epochs(job_id)] == [0]
    assert len(reader.batch_points(job_id)) == 100  # what was queued was delivered first
    if mode == "raise":
        assert "Traceback" in stderr and "loss is NaN" in stderr  # the previous excepthook still ran


def test_sigterm_with_the_default_handler_cancels_and_still_kills(address: str, reader: SidecarClient, job_id: str) -> None:
    trainer = Trainer(address, job_id, "sigterm")
    try:
        trainer.wait_for("training")
        trainer.proc.send_signal(signal.SIGTERM)
        code, stderr = trainer.finish()
    finally:
        trainer.kill()
    assert code == -signal.SIGTERM, stderr  # it died of the signal, as without the client
    assert "not signalled" not in trainer.lines
    job = reader.get_job(job_id)
    assert (job.status, job.error_message) == (pb.JOB_STATUS_CANCELLED, "terminated by SIGTERM")
    assert len(reader.batch_points(job_id)) >= 110  # the loop's rows queued before the signal were delivered


def test_sigterm_with_the_programs_handler_that_exits(address: str, reader: SidecarClient, job_id: str) -> None:
    trainer = Trainer(address, job_id, "sigterm-own-handler-exits")
    try:
        trainer.wait_for("ready")
        trainer.proc.send_signal(signal.SIGTERM)
        code, stderr = trainer.finish()
    finally:
        trainer.kill()
    assert "own handler" in trainer.lines and code == 0, stderr  # the program's handler ran and decided
    job = reader.get_job(job_id)
    assert (job.status, job.error_message) == (
        pb.JOB_STATUS_CANCELLED,
        "the process exited after SIGTERM without on_train_end",
    )


def test_sigterm_that_the_program_survives_does_not_end_the_job(address: str, reader: SidecarClient, job_id: str) -> None:
    trainer = Trainer(address, job_id, "sigterm-own-handler-continues")
    try:
        trainer.wait_for("ready")
        trainer.proc.send_signal(signal.SIGTERM)
        trainer.wait_for("going on after SIGTERM")
        code, stderr = trainer.finish()
    finally:
        trainer.kill()
    assert code == 0, stderr
    job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_COMPLETED and job.error_message == ""  # its own on_train_end
    assert [e.epoch for e in reader.list_epochs(job_id)] == [0, 1]


def test_a_handler_set_later_that_calls_the_clients_decides(address: str, reader: SidecarClient, job_id: str) -> None:
    """Lightning composes the SIGTERM handlers it finds with its own: the client's then only notes the
    signal (it does not kill the process under the framework), and the exit that follows is a cancellation."""
    trainer = Trainer(address, job_id, "sigterm-composed-later")
    try:
        trainer.wait_for("ready")
        trainer.proc.send_signal(signal.SIGTERM)
        trainer.wait_for("wound down")
        code, stderr = trainer.finish()
    finally:
        trainer.kill()
    assert code == 0, stderr
    job = reader.get_job(job_id)
    assert (job.status, job.error_message) == (pb.JOB_STATUS_CANCELLED, "the process exited after SIGTERM without on_train_end")


def test_an_ignored_sigterm_changes_nothing(address: str, reader: SidecarClient, job_id: str) -> None:
    trainer = Trainer(address, job_id, "sigterm-ignored")
    try:
        trainer.wait_for("ready")
        trainer.proc.send_signal(signal.SIGTERM)
        code, stderr = trainer.finish()
    finally:
        trainer.kill()
    assert code == 0, stderr
    job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_COMPLETED and job.final_metrics["accuracy"] == pytest.approx(0.7)


def test_an_exception_in_the_training_thread_fails_the_job(address: str, reader: SidecarClient, job_id: str) -> None:
    trainer = Trainer(address, job_id, "thread-raise")
    try:
        trainer.wait_for("main thread goes on")  # the hook ended the job before the thread was joined
        job = reader.get_job(job_id)
    finally:
        trainer.kill()
    assert (job.status, job.error_message) == (pb.JOB_STATUS_FAILED, "RuntimeError: CUDA out of memory (in thread trainer)")


def test_an_exception_in_another_thread_is_not_the_jobs(address: str, reader: SidecarClient, job_id: str) -> None:
    trainer = Trainer(address, job_id, "other-thread-raise")
    code, stderr = trainer.finish()
    assert "helper died" in trainer.lines and code == 0, stderr
    assert "ZeroDivisionError" in stderr  # the previous threading.excepthook still ran
    job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_COMPLETED and job.final_metrics["accuracy"] == pytest.approx(0.75)


def test_end_at_exit_off_leaves_the_job_running(address: str, reader: SidecarClient, job_id: str) -> None:
    code = (
        "import training_callbacks as tc;"
        f"cb = tc.TrainingCallbacks({job_id!r}, 'image_classification', address={address!r}, end_at_exit=False);"
        "cb.on_epoch_end(0, {'accuracy': 0.25});"
        "[cb.on_batch_end(s, {'loss': 1.0}) for s in range(1000)]"
    )
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": SRC}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert len(reader.batch_points(job_id)) == 1000  # still flushed at exit
    job = reader.get_job(job_id)
    # Not ended by the client: RUNNING, or the sidecar's own verdict once it saw the process exit.
    assert job.status == pb.JOB_STATUS_RUNNING or job.end_cause == pb.END_CAUSE_PROCESS_EXITED


def test_a_sigkilled_trainer_is_a_lost_job_with_process_evidence(address: str, reader: SidecarClient, job_id: str) -> None:
    """SIGKILL leaves the client nothing to run: the sidecar sees the process (same boot id, the pid and
    start time BeginTraining sent) exit and ends the job FAILED, told apart from a reported failure."""
    trainer = Trainer(address, job_id, "sigterm")
    try:
        trainer.wait_for("training")
        pid = trainer.proc.pid
        trainer.proc.kill()
        trainer.finish()
    finally:
        trainer.kill()
    deadline = time.monotonic() + 60  # generous: the verdict's own timing is the sidecar's e2e concern
    job = reader.get_job(job_id)
    while job.status == pb.JOB_STATUS_RUNNING and time.monotonic() < deadline:
        time.sleep(0.2)
        job = reader.get_job(job_id)
    assert job.status == pb.JOB_STATUS_FAILED
    assert job.end_cause == pb.END_CAUSE_PROCESS_EXITED
    assert f"trainer process {pid}" in job.end_reason and job.error_message == ""
    assert job.trainer.pid == pid and job.trainer.start_time_ticks > 0
