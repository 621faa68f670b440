"""Who the trainer is, as BeginTraining tells the sidecar (``TrainerProcess``): the process (pid and
start time, which together name one process even when the pid is reused), the host and its boot,
and the client session. The sidecar watches the process when it can see it (same boot id) and gives
its verdict within seconds of the process' death; the session lets a report revive a lost job."""

from __future__ import annotations

import os
import socket
import uuid

from ._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb

# The contract's bounds of TrainerProcess (proto/request-limits.json): longer values are left out.
from ._request_limits import BOOT_ID_MAX_LENGTH, HOSTNAME_MAX_LENGTH


def new_session_id() -> str:
    """A client session: a random UUID."""
    return str(uuid.uuid4())


def process_start_ticks(pid: int | str = "self") -> int:
    """Field 22 (``starttime``) of /proc/<pid>/stat: the process' start in clock ticks since boot; 0
    when unknown (not Linux). The command name (field 2) is in parentheses and may hold spaces and
    ")": the fields are counted from after the last ")", where field 3 is the first."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode("ascii", "replace")
        return int(stat[stat.rindex(")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def boot_id() -> str:
    """The kernel's boot id (/proc/sys/kernel/random/boot_id), or "" when unreadable."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            value = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return value if len(value) <= BOOT_ID_MAX_LENGTH and value.isprintable() else ""


def _hostname() -> str:
    try:
        name = socket.gethostname()
    except OSError:
        return ""
    return name if len(name) <= HOSTNAME_MAX_LENGTH and name.isprintable() else ""


def trainer_process(session_id: str) -> pb.TrainerProcess:
    """This process, as BeginTraining sends it."""
    return pb.TrainerProcess(
        pid=os.getpid(),
        start_time_ticks=process_start_ticks(),
        hostname=_hostname(),
        boot_id=boot_id(),
        session_id=session_id,
    )
