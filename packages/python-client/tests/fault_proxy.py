"""A TCP proxy on loopback that can refuse connections: injects a sidecar outage for tests without
restarting the sidecar (whose start-up time on a loaded machine would make a test's timing flaky)."""

from __future__ import annotations

import socket
import threading


class FaultProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``. ``refuse()`` cuts every connection and closes new
    ones at once (the client sees UNAVAILABLE); ``forward()`` passes them again. ``hold_answers()``
    keeps forwarding what the client sends but holds back what the sidecar answers (a lost
    acknowledgement: the sidecar did the work, the client hears nothing) until ``release_answers()``."""

    def __init__(self, target: str) -> None:
        host, _, port = target.rpartition(":")
        self._target = (host, int(port))
        self._server = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._server.getsockname()[1]}"
        self._refusing = False
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._answers = threading.Event()  # set: the sidecar's bytes pass
        self._answers.set()
        threading.Thread(target=self._accept, daemon=True).start()

    def refuse(self) -> None:
        with self._lock:
            self._refusing = True
            for s in self._open:
                _close(s)
            self._open.clear()

    def forward(self) -> None:
        with self._lock:
            self._refusing = False

    def hold_answers(self) -> None:
        self._answers.clear()

    def release_answers(self) -> None:
        self._answers.set()

    def close(self) -> None:
        self.refuse()
        _close(self._server)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return  # closed
            with self._lock:
                if self._refusing:
                    _close(client)
                    continue
                try:
                    upstream = socket.create_connection(self._target, timeout=5)
                except OSError:
                    _close(client)
                    continue
                self._open += [client, upstream]
            threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=_pipe, args=(upstream, client, self._answers), daemon=True).start()


def _pipe(source: socket.socket, sink: socket.socket, gate: threading.Event | None = None) -> None:
    try:
        while data := source.recv(65536):
            if gate is not None:
                gate.wait()
            sink.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(sink)


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
