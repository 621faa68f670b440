"""A real sidecar that restarts on a schedule, run in its own process for the benchmark.

The benchmark's trainer process must hold nothing but the client's threads (a thread there reading
the sidecar's output would compete for the GIL and be measured as the client's cost), so this script
starts the sidecar, prints its address on stdout, restarts it ``--restarts`` times, evenly spread
over ``--seconds`` (alternately SIGKILL — a crash — and SIGTERM — a rolling update), keeps it up until
its stdin closes, then stops it. One JSON line per restart goes to ``--log``.

Usage: python restarting_sidecar.py --data DIR --seconds 60 --restarts 3 --log FILE
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from sidecar import Sidecar, free_port  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--log", type=Path, required=True)
    args = parser.parse_args()

    address = f"127.0.0.1:{free_port()}"
    sidecar = Sidecar(args.data, listen=address).start()
    print(address, flush=True)
    t0 = time.monotonic()
    with open(args.log, "w", encoding="utf-8") as log:
        for i in range(1, args.restarts + 1):
            time.sleep(max(0.0, t0 + i * args.seconds / (args.restarts + 1) - time.monotonic()))
            how = "SIGKILL" if i % 2 else "SIGTERM"
            down = time.monotonic()
            if how == "SIGKILL" and sidecar.proc is not None:
                sidecar.proc.kill()
                sidecar.proc.wait()
            sidecar.stop()
            sidecar = Sidecar(args.data, listen=address).start()
            log.write(json.dumps({"at_s": round(down - t0, 2), "how": how, "down_s": round(time.monotonic() - down, 2)}) + "\n")
            log.flush()
        sys.stdin.read()  # until the benchmark closes it
    sidecar.stop()


if __name__ == "__main__":
    main()
