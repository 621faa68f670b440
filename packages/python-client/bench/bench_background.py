"""Cost of the client's background clock (heartbeats and system/GPU samples), against the REAL sidecar.

Measures:
  1. the clock's CPU per trainer-hour: a trainer process that reports nothing for ``--seconds``, three
     times: heartbeats every 600 s and no samples (the baseline: the idle sender thread), heartbeats
     every second (``--trainer-lease 6``), and heartbeats and samples every second
     (``system_metrics_interval=1``, the fake NVML of tests/fake_nvml for the GPU path); the CPU per
     heartbeat and per sample from the differences, scaled to the defaults (one of each every 10 s =
     360 each per trainer-hour);
  2. ``on_batch_end`` (median, p99, max) with the clock on at that stress rate and off, in one process
     each, as in bench_on_batch_end.py.

Usage (from the repo root):
    .venv/client/bin/python packages/python-client/bench/bench_background.py [--seconds 60] [--calls 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
FAKE_NVML = HERE.parent / "tests" / "fake_nvml"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(HERE.parent / "tests"))

from sidecar import Sidecar  # noqa: E402

#: The child: idles with one client for SECONDS, the clock on or off; prints its CPU time and counts.
IDLE = """
import json, os, sys, time
import training_callbacks as tc
address, on, seconds = sys.argv[1], sys.argv[2] == "on", float(sys.argv[3])
cb = tc.TrainingCallbacks("bench-clock-" + sys.argv[2] + sys.argv[1], "image_classification", address=address,
                          system_metrics_interval=1.0 if on else None)
cb.on_train_begin()
assert cb.flush(60)
t0 = os.times()
time.sleep(seconds)                 # an epoch that reports nothing: only the clock runs
t1 = os.times()
stats = cb.stats()
cb.on_train_end()
print(json.dumps({"cpu_s": (t1.user - t0.user) + (t1.system - t0.system),
                  "heartbeats": stats.heartbeats, "samples": stats.system_samples}))
"""

#: The child: times on_batch_end with the clock on or off.
LATENCY = """
import json, sys, time
sys.path.insert(0, sys.argv[4])
import training_callbacks as tc
from bench_on_batch_end import per_call, summary, timer_overhead
address, on, calls = sys.argv[1], sys.argv[2] == "on", int(sys.argv[3])
cb = tc.TrainingCallbacks("bench-latency-" + sys.argv[2], "image_classification", address=address,
                          system_metrics_interval=1.0 if on else None, max_queued_batches=10**7)
cb.on_train_begin()
assert cb.flush(60)
overhead = timer_overhead()
samples = per_call(cb, calls, 2)
stats = cb.stats()
assert cb.on_train_end(timeout=120)
print(json.dumps({**summary(samples, overhead), "heartbeats": stats.heartbeats, "samples": stats.system_samples}))
"""


def child(script: str, *args: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(FAKE_NVML), str(SRC)])}
    done = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0, help="idle time of the CPU runs")
    parser.add_argument("--calls", type=int, default=200_000, help="on_batch_end calls of the latency runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tc-bench-clock-") as tmp:
        with Sidecar(Path(tmp) / "slow", extra_args=["--trainer-lease", "3600"]) as slow, Sidecar(
            Path(tmp) / "fast", extra_args=["--trainer-lease", "6"]
        ) as fast:
            base = child(IDLE, slow.address, "off", str(args.seconds))
            beats = child(IDLE, fast.address, "off", str(args.seconds))
            both = child(IDLE, fast.address, "on", str(args.seconds))
            per_beat = max(beats["cpu_s"] - base["cpu_s"], 0.0) / max(beats["heartbeats"] - base["heartbeats"], 1)
            per_sample = max(both["cpu_s"] - beats["cpu_s"], 0.0) / max(both["samples"], 1)
            print(
                f"clock CPU, {args.seconds:.0f} s without reports: baseline {base['cpu_s'] * 1000:.0f} ms "
                f"({base['heartbeats']:.0f} heartbeats), heartbeats {beats['cpu_s'] * 1000:.0f} ms "
                f"({beats['heartbeats']:.0f}), heartbeats + samples {both['cpu_s'] * 1000:.0f} ms "
                f"({both['heartbeats']:.0f} + {both['samples']:.0f})"
            )
            hour = (per_beat + per_sample) * 360
            print(
                f"  per heartbeat {per_beat * 1000:.2f} ms CPU, per sample (CPU, memory, 2 fake GPUs) "
                f"{per_sample * 1000:.2f} ms; at the defaults (every 10 s: 360 of each per hour) "
                f"{hour:.2f} s CPU per trainer-hour ({hour / 36:.3f} % of one core)"
            )
            for state in ("off", "on"):
                r = child(LATENCY, fast.address, state, str(args.calls), str(HERE))
                print(
                    f"on_batch_end, samples {state:3}: median {r['median_us']:.2f} µs, p99 {r['p99_us']:.2f} µs, "
                    f"p99.9 {r['p999_us']:.2f} µs, max {r['max_us']:.1f} µs ({r['heartbeats']:.0f} heartbeats, "
                    f"{r['samples']:.0f} samples during the run)"
                )
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, {time.strftime('%Y-%m-%d %H:%M')})")


if __name__ == "__main__":
    main()
