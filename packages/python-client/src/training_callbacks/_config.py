"""Argument and environment resolution shared by the client and the adapters (no I/O)."""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import math
import os
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any, Union, cast

from google.protobuf import struct_pb2

from ._client_connection import CONNECTION_ENV
from ._client_connection import DEFAULT_ADDRESS as DEFAULT_ADDRESS
from ._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb
from ._request_limits import (
    MAX_PARAMS,
    PARAM_KEY_DIGEST_HEX_DIGITS,
    PARAM_KEY_DIGEST_SEPARATOR,
    PARAM_KEY_FORBIDDEN,
    PARAM_KEY_MAX_LENGTH,
    PARAM_VALUE_CUT_SUFFIX,
    PARAM_VALUE_MAX_LENGTH,
)
from .errors import ConfigurationError

#: Environment variable read when no address is given (from proto/client-connection.json).
ADDRESS_ENV = CONNECTION_ENV["address"]

#: Anything accepted as a task type: the enum value, its name in any common spelling, or an enum
#: (Python ``enum.Enum``) whose value or name is one of those.
TaskTypeLike = Union[int, str, enum.Enum]

# Spellings of the task types. The names are the contract's; the short forms are Ultralytics' `task`.
_TASK_SPELLINGS: dict[str, pb.TaskType] = {
    "image_classification": pb.TASK_TYPE_IMAGE_CLASSIFICATION,
    "classification": pb.TASK_TYPE_IMAGE_CLASSIFICATION,
    "classify": pb.TASK_TYPE_IMAGE_CLASSIFICATION,
    "object_detection": pb.TASK_TYPE_OBJECT_DETECTION,
    "detection": pb.TASK_TYPE_OBJECT_DETECTION,
    "detect": pb.TASK_TYPE_OBJECT_DETECTION,
    "obb": pb.TASK_TYPE_OBJECT_DETECTION,
    "instance_segmentation": pb.TASK_TYPE_INSTANCE_SEGMENTATION,
    "segment": pb.TASK_TYPE_INSTANCE_SEGMENTATION,
    "semantic_segmentation": pb.TASK_TYPE_SEMANTIC_SEGMENTATION,
    "pose_estimation": pb.TASK_TYPE_POSE_ESTIMATION,
    "pose": pb.TASK_TYPE_POSE_ESTIMATION,
}


def resolve_address(address: str | None, environ: Mapping[str, str] | None = None) -> str:
    """Returns the sidecar address: the argument, else ``$TRAINING_CALLBACKS_ADDRESS``, else ``DEFAULT_ADDRESS``.

    ``host:port`` and ``unix:/path`` (or ``unix:///path``) are accepted as gRPC target strings.
    """
    env = os.environ if environ is None else environ
    value = address if address else env.get(ADDRESS_ENV, "").strip()
    return value or DEFAULT_ADDRESS


def parse_task_type(value: TaskTypeLike | None) -> pb.TaskType:
    """Returns the contract's ``TaskType`` value for ``value``, or 0 (UNSPECIFIED) for None.

    Raises:
        ConfigurationError: ``value`` names no task type.
    """
    if value is None:
        return pb.TASK_TYPE_UNSPECIFIED
    if isinstance(value, enum.Enum):
        for candidate in (value.value, value.name):
            try:
                return parse_task_type(candidate)
            except ConfigurationError:
                pass
        raise ConfigurationError(f"unknown task type {value!r}")
    if isinstance(value, bool):
        raise ConfigurationError(f"unknown task type {value!r}")
    if isinstance(value, int):
        if value in pb.TaskType.values() and value != pb.TASK_TYPE_UNSPECIFIED:
            return cast(pb.TaskType, value)
        raise ConfigurationError(f"unknown task type {value!r}")
    if isinstance(value, str):
        key = value.strip().lower().replace("-", "_").replace(" ", "_")
        key = key.removeprefix("task_type_")
        if key in _TASK_SPELLINGS:
            return _TASK_SPELLINGS[key]
        known = ", ".join(sorted({n.lower().removeprefix("task_type_") for n in pb.TaskType.keys()[1:]}))
        raise ConfigurationError(f"unknown task type {value!r}; use one of {known}")
    raise ConfigurationError(f"unknown task type {value!r}")


def task_type_name(value: int) -> str:
    """``TASK_TYPE_OBJECT_DETECTION`` → ``object_detection``."""
    return pb.TaskType.Name(value).lower().removeprefix("task_type_")


def config_get(config: Any, key: str) -> Any:
    """Reads ``key`` from a mapping or an attribute of an object; None when absent."""
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(key)
    return getattr(config, key, None)


def wire_text(value: str) -> str:
    """``value`` as protobuf can send it: a lone surrogate (a file name decoded with surrogateescape,
    say) cannot be encoded as UTF-8 and would make the call raise, so it becomes U+FFFD, as it does
    in the TypeScript client."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def numeric_values(metrics: Mapping[str, Any] | None, what: str, warn_once: Callable[..., None]) -> dict[str, float]:
    """The numeric values of ``metrics`` as floats (names as wire text). ``None`` values are left
    out silently (a missing value stays missing); other non-numbers are left out with a warning,
    once per name (``warn_once(key, message, *args)``)."""
    out: dict[str, float] = {}
    if not metrics:
        return out
    for name, value in metrics.items():
        if value is None:
            continue
        try:
            out[wire_text(str(name))] = float(value)
        except (TypeError, ValueError):
            warn_once(
                f"non-numeric:{what}:{name}",
                "training-callbacks: %s metric %r has a non-numeric value %r; left out",
                what,
                name,
                value,
            )
    return out


def to_plain(value: Any, _depth: int = 0) -> Any:
    """Converts a configuration object into JSON-like data (dicts, lists, str, float, bool, None)."""
    if _depth > 32:
        return wire_text(str(value))
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return wire_text(value)
    if isinstance(value, enum.Enum):
        return to_plain(value.value, _depth + 1)
    if isinstance(value, int):
        return value if abs(value) < 2**53 else str(value)
    if isinstance(value, float):
        return value  # NaN and ±Infinity too: the sidecar keeps them in configs
    if isinstance(value, PurePath):
        return wire_text(str(value))
    if isinstance(value, Mapping):
        return {wire_text(str(k)): to_plain(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [to_plain(v, _depth + 1) for v in items]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_plain(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value)}
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        try:
            return to_plain(to_dict(), _depth + 1)
        except Exception:  # noqa: BLE001 - a broken to_dict() must not stop training
            pass
    item = getattr(value, "item", None)  # numpy / torch scalars
    if callable(item):
        try:
            return to_plain(item(), _depth + 1)
        except Exception:  # noqa: BLE001
            pass
    if hasattr(value, "__dict__") and not isinstance(value, type):
        public = {k: v for k, v in vars(value).items() if not k.startswith("_")}
        return to_plain(public, _depth + 1)
    return wire_text(str(value))


def to_struct(value: Any) -> struct_pb2.Struct | None:
    """Converts a configuration (mapping, dataclass, namespace, object with ``to_dict``) to a Struct."""
    if value is None:
        return None
    plain = to_plain(value)
    if not isinstance(plain, dict):
        plain = {"value": plain}
    struct = struct_pb2.Struct()
    struct.update(plain)
    return struct


def param_text(value: Any) -> str:
    """A run param's text: booleans as ``true``/``false`` (as the TypeScript client and JSON spell them,
    never Python's ``True``), ``None`` as ``""``, anything else ``str()``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def flatten_params(value: Any, prefix: str = "") -> dict[str, str]:
    """Flattens a configuration into ``{"a.b": "value"}`` strings (for MLflow run params)."""
    plain = to_plain(value)
    out: dict[str, str] = {}
    if isinstance(plain, dict):
        for k, v in plain.items():
            key = f"{prefix}{k}"
            if isinstance(v, dict):
                out.update(flatten_params(v, key + "."))
            else:
                out[key] = param_text(v)
    elif plain is not None:
        out[prefix.rstrip(".") or "value"] = str(plain)
    return out


def params_within_limits(params: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """``params`` within what the sidecar accepts (proto/request-limits.json, MLflow's limits): a key
    that is empty or holds control characters is dropped, a key too long is shortened (its start, then
    ``_`` and 8 hex digits of its hash, so that two long keys stay apart), a value too long is cut
    (saying so), and entries beyond the most a job may have are dropped. Returns the params and one
    note per change, naming the param."""
    kept: dict[str, str] = {}
    notes: list[str] = []
    for index, (key, value) in enumerate(params.items()):
        shown = repr(key if len(key) <= 60 else key[:57] + "...")
        if not key or PARAM_KEY_FORBIDDEN.search(key):
            notes.append(f"{shown} dropped (an empty key or one with control characters)")
            continue
        if len(key) > PARAM_KEY_MAX_LENGTH:
            digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:PARAM_KEY_DIGEST_HEX_DIGITS]
            tail = PARAM_KEY_DIGEST_SEPARATOR + digest
            short = key[: PARAM_KEY_MAX_LENGTH - len(tail)] + tail
            notes.append(f"{shown} shortened to {len(short)} characters (the limit is {PARAM_KEY_MAX_LENGTH})")
            key = short
        if len(value) > PARAM_VALUE_MAX_LENGTH:
            suffix = PARAM_VALUE_CUT_SUFFIX.replace("{length}", str(len(value)))
            value = value[: PARAM_VALUE_MAX_LENGTH - len(suffix)] + suffix
            notes.append(f"the value of {shown} cut to {PARAM_VALUE_MAX_LENGTH} characters")
        if len(kept) >= MAX_PARAMS:
            notes.append(f"{len(params) - index} params beyond the first {MAX_PARAMS} dropped, from {shown} on")
            break
        kept[key] = value
    return kept, notes


def resolve_rank(rank: int | None) -> int:
    """The process's global rank: the argument, else ``$RANK``, else ``$LOCAL_RANK`` (single node), else 0."""
    if rank is not None:
        return int(rank)
    for name in ("RANK", "LOCAL_RANK"):
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                return max(int(raw), 0)
            except ValueError:
                raise ConfigurationError(f"${name} is {raw!r}, not an integer") from None
    return 0


def world_size() -> int:
    """``$WORLD_SIZE``, or 1."""
    raw = os.environ.get("WORLD_SIZE", "").strip()
    try:
        return max(int(raw), 1) if raw else 1
    except ValueError:
        return 1


#: Channel options: fast reconnection after a sidecar restart (grpc's default backoff grows to 2
#: minutes), and message limits large enough for batch blocks and 1 MiB upload chunks.
CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.min_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 2000),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    ("grpc.max_receive_message_length", 64 * 1024 * 1024),
    ("grpc.enable_retries", 0),
]
