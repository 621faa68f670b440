"""A trainer for the system-metric tests: trains for argv[4] seconds with system samples every
argv[3] seconds ("off": none), reporting a batch row every 10 ms, then ends the job.

Usage: python system_metrics_trainer.py ADDRESS JOB_ID INTERVAL SECONDS
"""

from __future__ import annotations

import sys
import time

import training_callbacks as tc

address, job_id, interval, seconds = sys.argv[1:5]
cb = tc.TrainingCallbacks(
    job_id,
    "image_classification",
    address=address,
    system_metrics_interval=None if interval == "off" else float(interval),
)
cb.on_train_begin()
cb.on_epoch_begin(0)
step = 0
deadline = time.monotonic() + float(seconds)
while time.monotonic() < deadline:
    cb.on_batch_end(step, {"loss": 1.0 / (step + 1)})
    step += 1
    time.sleep(0.01)
cb.on_epoch_end(0, {"accuracy": 0.5})
assert cb.on_train_end(), cb.losses().describe()
print(f"steps {step}", flush=True)
