"""A trainer process for the exit-path tests: begins a job, reports an epoch and batches, prints
``ready`` once the sidecar has them, then ends the way argv[3] says — without ever calling
``on_train_end``.

Usage: python exit_trainer.py ADDRESS JOB_ID MODE
"""

from __future__ import annotations

import signal
import sys
import threading
import time

import training_callbacks as tc

address, job_id, mode = sys.argv[1:4]


def report(cb: tc.TrainingCallbacks, *, announce: bool = True) -> None:
    cb.on_train_begin()
    cb.on_epoch_begin(0)
    for step in range(100):
        cb.on_batch_end(step, {"loss": 1.0 / (step + 1)})
    cb.on_epoch_end(0, {"accuracy": 0.5})
    assert cb.flush(30), "the sidecar did not acknowledge the reports"
    if announce:
        print("ready", flush=True)


def train_until_signalled(cb: tc.TrainingCallbacks) -> None:
    """A training loop that runs until a signal stops it (the test sends it after "ready")."""
    step = 100
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        cb.on_batch_end(step, {"loss": 0.01})
        step += 1
        if step == 110:
            print("training", flush=True)  # 10 rows of the loop are queued
        time.sleep(0.01)
    print("not signalled", flush=True)


cb = tc.TrainingCallbacks(job_id, "image_classification", address=address)

if mode == "exit":  # the script ends without on_train_end
    report(cb)
elif mode == "sys-exit-3":
    report(cb)
    sys.exit(3)
elif mode == "raise":  # an exception outside any `with`
    report(cb)
    raise ValueError("loss is NaN at step 100")
elif mode == "keyboard-interrupt":
    report(cb)
    raise KeyboardInterrupt
elif mode == "thread-raise":  # training in a thread that dies of an exception
    def train() -> None:
        report(cb)
        raise RuntimeError("CUDA out of memory")

    worker = threading.Thread(target=train, name="trainer")
    worker.start()
    worker.join()
    print("main thread goes on", flush=True)
    time.sleep(60)  # the test reads the job meanwhile, then kills this process
elif mode == "other-thread-raise":  # a helper thread dies; the training goes on and finishes
    report(cb)
    helper = threading.Thread(target=lambda: 1 / 0, name="helper")
    helper.start()
    helper.join()
    print("helper died", flush=True)
    cb.on_train_end({"accuracy": 0.75})
elif mode == "sigterm":  # no handler of the program's own: SIGTERM ends the process
    report(cb)
    train_until_signalled(cb)
elif mode == "sigterm-own-handler-exits":
    def on_term(signum: int, frame: object) -> None:
        print("own handler", flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, on_term)  # before the job begins: the client chains it
    report(cb)
    train_until_signalled(cb)
elif mode == "sigterm-own-handler-continues":
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    report(cb)
    while not stop.wait(0.01):
        pass
    print("going on after SIGTERM", flush=True)
    cb.on_epoch_end(1, {"accuracy": 0.6})
    cb.on_train_end({"accuracy": 0.6})
elif mode == "sigterm-composed-later":  # a framework's handler, set after the job began, calls the client's
    report(cb, announce=False)  # "ready" once the framework's handler is in place: the test signals then
    stop = threading.Event()
    client_handler = signal.getsignal(signal.SIGTERM)

    def composed(signum: int, frame: object) -> None:
        client_handler(signum, frame)  # type: ignore[operator, misc]
        stop.set()  # the framework winds down by itself

    signal.signal(signal.SIGTERM, composed)
    print("ready", flush=True)
    while not stop.wait(0.01):
        pass
    print("wound down", flush=True)
elif mode == "sigterm-ignored":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    report(cb)
    time.sleep(1.0)  # the test sends SIGTERM meanwhile
    cb.on_train_end({"accuracy": 0.7})
else:
    raise SystemExit(f"unknown mode {mode}")
