"""Generated from proto/status-table.json by packages/proto/scripts/generate-status-table.ts; do not edit.

What a client does with each gRPC status of a failed write (see the README's status table).
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "RETRY_METADATA_KEY",
    "RETRY_PERMANENT",
    "RETRY_TRANSIENT",
    "STATUS_CLASSES",
    "STATUS_CLASS_MEANINGS",
    "SUSPECT_ATTEMPTS",
    "UPLOAD_FALLBACK_CODES",
    "StatusClass",
    "classify_status",
]

#: How a client handles a failed write: retry until acknowledged, drop, or retry a few times.
StatusClass = Literal["transient", "permanent", "suspect"]

#: Trailing metadata with which the sidecar overrides a status's class for one refusal.
RETRY_METADATA_KEY = "training-callbacks-retry"
#: RETRY_METADATA_KEY value: this refusal will pass, e.g. a full disk or a locked database: retry it whatever the status's default.
RETRY_TRANSIENT = "transient"
#: RETRY_METADATA_KEY value: retrying cannot help: drop it whatever the status's default.
RETRY_PERMANENT = "permanent"
#: Attempts in all for a "suspect" status before it is handled as permanent.
SUSPECT_ATTEMPTS = 5

#: What each class means for the client.
STATUS_CLASS_MEANINGS: dict[StatusClass, str] = {
    "transient": "retried with backoff until acknowledged, or until on_train_end's flush deadline; what is still unacknowledged then is counted as lost",
    "permanent": "dropped at once with a warning naming the status and the sidecar's message; counted as lost; later reports go on",
    "suspect": "retried (a transport fault while the sidecar restarts can look like this) up to 5 attempts in all, then handled as permanent",
}

#: The default class of each status code (OK excluded).
STATUS_CLASSES: dict[int, StatusClass] = {
    1: "transient",
    2: "suspect",
    3: "permanent",
    4: "transient",
    5: "permanent",
    6: "permanent",
    7: "permanent",
    8: "permanent",
    9: "permanent",
    10: "transient",
    11: "permanent",
    12: "permanent",
    13: "suspect",
    14: "transient",
    15: "permanent",
    16: "permanent",
}


#: The codes PERMISSION_DENIED, FAILED_PRECONDITION: the statuses of a refused LogArtifact (by path) on which a client sends the file with UploadArtifact instead: the sidecar cannot read the path (no shared volume, outside its artifact roots).
UPLOAD_FALLBACK_CODES: frozenset[int] = frozenset({7, 9})

def classify_status(code: int, retry_marker: str | None = None) -> StatusClass:
    """The class of a failed write with status ``code``; ``retry_marker`` is the value of the
    RETRY_METADATA_KEY trailer, if the sidecar sent one. A code missing from the table is permanent."""
    if retry_marker == RETRY_TRANSIENT:
        return "transient"
    if retry_marker == RETRY_PERMANENT:
        return "permanent"
    return STATUS_CLASSES.get(code, "permanent")
