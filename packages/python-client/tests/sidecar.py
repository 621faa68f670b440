"""Starts the REAL sidecar (apps/sidecar/src/main.ts on the workspace's pinned Node) for tests.

``Sidecar.start()`` waits for its "listening on ADDR" line; ``stop()`` sends SIGTERM and waits.
Set ``TRAINING_CALLBACKS_SIDECAR_CMD`` to run another command (the listen/db flags are appended).
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
MAIN = REPO / "apps" / "sidecar" / "src" / "main.ts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sidecar_command() -> list[str]:
    custom = os.environ.get("TRAINING_CALLBACKS_SIDECAR_CMD")
    if custom:
        return shlex.split(custom)
    node = REPO / "node_modules" / ".bin" / "node"
    return [str(node) if node.exists() else "node", "--conditions=@training-callbacks/source", str(MAIN)]


class Sidecar:
    """One sidecar process with its own database and artifact directories.

    Args:
        data_dir: Holds the database and the artifact store.
        artifact_root: Directory that LogArtifact may read by path (None: every path is refused).
        listen: ``host:port`` or ``unix:/path``; default a loopback port picked by the sidecar.
        extra_args: More command-line flags, e.g. ``["--max-message-bytes", "65536"]``.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        artifact_root: Path | None = None,
        listen: str = "127.0.0.1:0",
        extra_args: list[str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.extra_args = list(extra_args or [])
        self.artifact_root = artifact_root
        self.listen = listen
        self.address = ""
        self.output: list[str] = []
        self.proc: subprocess.Popen[str] | None = None

    @property
    def db_path(self) -> Path:
        return self.data_dir / "training-callbacks.sqlite"

    def start(self, timeout: float = 90.0) -> Sidecar:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # --http on any free port: parallel sidecars must not fight over the default 50052.
        args = [*sidecar_command(), "--listen", self.listen, "--db", str(self.db_path), "--http", "127.0.0.1:0", "--quiet"]
        if self.artifact_root is not None:
            args += ["--artifact-root", str(self.artifact_root)]
        args += self.extra_args
        env = {**os.environ, "PATH": f"{REPO / 'node_modules' / '.bin'}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.proc = subprocess.Popen(
            args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        found = threading.Event()

        def read(proc: subprocess.Popen[str]) -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                self.output.append(line.rstrip("\n"))
                match = re.search(r"listening on (\S+)", line)
                if match and not found.is_set():
                    self.address = match.group(1)
                    found.set()

        threading.Thread(target=read, args=(self.proc,), daemon=True).start()
        deadline = time.monotonic() + timeout
        while not found.wait(0.1):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("sidecar did not start:\n" + "\n".join(self.output))
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Sidecar:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
