"""MLflow's own Python client logging the same points as the sidecar, for tools/bench/mlflow-bench.ts.

Run with the project's MLflow environment:
    .venv/mlflow/bin/python tools/bench/mlflow-python-bench.py --uri URI --mode log_batch --epochs N --metrics M

Creates experiment + run first (not timed), then logs N epochs x M metrics (step = epoch, one timestamp
per epoch as a trainer would) either with one `log_metric` call per point or with `log_batch` (the
client splits it into requests of at most 1000 metrics). Prints one JSON line: points, seconds, ids.
"""

import argparse
import json
import time

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--uri", required=True)
    ap.add_argument("--mode", choices=["log_metric", "log_batch"], required=True)
    ap.add_argument("--epochs", type=int, required=True)
    ap.add_argument("--metrics", type=int, required=True)
    ap.add_argument("--name", required=True)
    a = ap.parse_args()

    client = MlflowClient(tracking_uri=a.uri)
    exp_id = client.create_experiment(a.name)
    run = client.create_run(exp_id, run_name=a.name)
    run_id = run.info.run_id
    names = [f"m{i:03d}" for i in range(a.metrics)]
    base = int(time.time() * 1000)

    start = time.perf_counter()
    if a.mode == "log_metric":
        for epoch in range(a.epochs):
            ts = base + epoch
            for i, name in enumerate(names):
                client.log_metric(run_id, name, epoch / 1000 + i, timestamp=ts, step=epoch)
    else:
        metrics = [
            Metric(name, epoch / 1000 + i, base + epoch, epoch)
            for epoch in range(a.epochs)
            for i, name in enumerate(names)
        ]
        client.log_batch(run_id, metrics=metrics)
    seconds = time.perf_counter() - start
    client.set_terminated(run_id)
    print(json.dumps({"points": a.epochs * a.metrics, "seconds": seconds, "run_id": run_id, "experiment_id": exp_id}))


if __name__ == "__main__":
    main()
