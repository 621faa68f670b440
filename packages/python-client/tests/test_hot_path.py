"""on_batch_end never waits on another thread: it takes no lock the sender holds and releases no GIL
(either would let the sender run first, and the training thread wait up to the interpreter's switch
interval). What it calls is checked with a profiler; how long it takes is measured in the benchmark
(bench/bench_on_batch_end.py, docs/benchmarks.md), not here."""

from __future__ import annotations

import sys
import threading
import time
from types import FrameType
from typing import Any

from training_callbacks import SidecarClient, TrainingCallbacks


def calls_made(fn: Any, *args: Any) -> list[tuple[str, str]]:
    """(event, what) of every Python and C function ``fn(*args)`` calls, in this thread."""
    seen: list[tuple[str, str]] = []

    def profile(frame: FrameType, event: str, arg: Any) -> None:
        if event == "call":
            seen.append((event, f"{frame.f_code.co_filename}:{frame.f_code.co_name}"))
        elif event == "c_call":
            seen.append((event, f"{getattr(arg, '__self__', None).__class__.__name__}.{arg.__name__}"))

    sys.setprofile(profile)
    try:
        fn(*args)
    finally:
        sys.setprofile(None)
    return seen


def test_on_batch_end_takes_no_lock_and_its_wake_up_reaches_the_sender(address: str, reader: SidecarClient, job_id: str) -> None:
    # A queue bound of 8 rows wakes the sender at 2 queued rows; flush_interval is long enough that
    # only the wake-up can explain a delivery.
    cb = TrainingCallbacks(job_id, "image_classification", address=address, max_queued_batches=8, flush_interval=60)
    cb.on_train_begin()
    assert cb.flush(10)
    cb.on_batch_end(0, {"loss": 1.0})
    cb.on_batch_end(1, {"loss": 0.9})
    seen = calls_made(cb.on_batch_end, 2, {"loss": 0.8})  # the queue holds 2 rows: this call wakes the sender
    assert seen, "the profiler saw nothing"
    assert not [what for event, what in seen if event == "call" and what.startswith(threading.__file__)]  # Event, Condition
    assert not [what for _, what in seen if what.split(".")[0] in ("lock", "RLock") or what.endswith(("acquire", "wait", "sleep"))]
    deadline = time.monotonic() + 10
    while cb.stats().accepted_points < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cb.stats().accepted_points == 3
    assert [p[1] for p in reader.batch_points(job_id)] == [0, 1, 2]
    assert cb.on_train_end()
