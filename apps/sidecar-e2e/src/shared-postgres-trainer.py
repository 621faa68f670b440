"""A Python trainer of shared-postgres-faults.spec.ts: one job through the Python client, paced so that
the spec's faults (sidecars SIGKILLed, PostgreSQL restarted) land in the middle of it.

    python shared-postgres-trainer.py ADDRESS JOB_ID EPOCHS STEPS_PER_EPOCH PAUSE_SECONDS
"""

import json
import sys
import time

from training_callbacks import TrainingCallbacks

address, job_id = sys.argv[1], sys.argv[2]
epochs, steps, pause = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])

# The spec's value rules (shared-postgres-faults.spec.ts: loss → train_loss, accuracy).
callbacks = TrainingCallbacks(
    job_id,
    task_type="image_classification",
    model_config={"framework": "custom"},
    address=address,
)
with callbacks:
    for epoch in range(epochs):
        callbacks.on_epoch_begin(epoch)
        for i in range(steps):
            step = epoch * steps + i
            callbacks.on_batch_end(step, {"train_loss": 1 / (step + 1)})
        callbacks.on_epoch_end(epoch, {"accuracy": 0.5 + epoch / 100})
        time.sleep(pause)
    callbacks.on_train_end({"accuracy": 0.5 + (epochs - 1) / 100})
losses = callbacks.losses()
print(json.dumps({"event": "trainer_done", "job_id": job_id, "lost": losses.dropped_points + losses.refused_points + losses.failed_writes}))
