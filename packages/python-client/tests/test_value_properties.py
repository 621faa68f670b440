"""Property-based tests (Hypothesis) of the Python client's value conversion, against the real sidecar:
whatever a trainer passes as a configuration or as metrics, the job begins, and what the sidecar stores
(read back through its read RPCs) is what the trainer passed — configurations as JSON values, params
as the documented flattening, metric values as floats with NaN and ±Infinity kept.

Hostile generators of findings that are known and not yet fixed are listed in KNOWN_OPEN (with who
fixes them) and are off; ``FUZZ_ALL=1`` turns them on. Counterpart of apps/sidecar-e2e/src/fuzz.
"""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from training_callbacks import SidecarClient, TrainingCallbacks
from training_callbacks._proto.trainingcallbacks.v1 import training_callbacks_pb2 as pb
from training_callbacks._request_limits import MAX_PARAMS, PARAM_KEY_FORBIDDEN, PARAM_KEY_MAX_LENGTH, PARAM_VALUE_MAX_LENGTH

#: Generators whose finding is open, by name: who fixes it. Delete a line when its fix is on main.
KNOWN_OPEN: dict[str, str] = {}


def generator_on(name: str) -> bool:
    return os.environ.get("FUZZ_ALL") == "1" or name not in KNOWN_OPEN


SETTINGS = settings(
    max_examples=int(os.environ.get("FUZZ_PY_EXAMPLES", "40")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_counter = iter(range(10**9))


def fresh_job_id(prefix: str) -> str:
    return f"prop-{prefix}-{os.getpid()}-{next(_counter)}"


# ---- strategies ---------------------------------------------------------------------------------

#: Printable keys (a control character in a key is a hostile case of its own, below).
keys = st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=1, max_size=20)
finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1),
    finite,
    st.text(max_size=30),
)
#: JSON-like configurations as trainers pass them (dicts of dicts, lists, numbers, strings, …).
configs = st.dictionaries(
    keys,
    st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4), max_leaves=12),
    max_size=6,
)
non_finite = st.sampled_from([math.nan, math.inf, -math.inf])
metric_names = st.from_regex(r"x_[a-z0-9_]{0,20}", fullmatch=True)
metric_values = st.one_of(
    st.floats(),  # NaN, ±Infinity, -0.0, subnormals included
    st.integers(min_value=-(2**53), max_value=2**53),
    st.booleans(),
)


# ---- helpers ------------------------------------------------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Equality of JSON values where NaN equals NaN and a number equals its float."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return (math.isnan(a) and math.isnan(b)) if (math.isnan(a) or math.isnan(b)) else float(a) == float(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def struct_value(struct: Any) -> dict[str, Any]:
    """A Struct as Python values; NaN and ±Infinity as floats (json_format would refuse them)."""

    def value(v: Any) -> Any:
        kind = v.WhichOneof("kind")
        if kind == "struct_value":
            return {k: value(x) for k, x in v.struct_value.fields.items()}
        if kind == "list_value":
            return [value(x) for x in v.list_value.values]
        if kind == "number_value":
            return v.number_value
        if kind == "string_value":
            return v.string_value
        if kind == "bool_value":
            return v.bool_value
        return None

    return {k: value(v) for k, v in struct.fields.items()}


def begin(address: str, job_id: str, **kwargs: Any) -> TrainingCallbacks:
    callbacks = TrainingCallbacks(job_id, task_type="image_classification", address=address, **kwargs)
    callbacks.on_train_begin()  # returns at once; the call is sent in the background
    assert callbacks.flush(15), "BeginTraining was not answered"
    return callbacks


# ---- properties ---------------------------------------------------------------------------------


@SETTINGS
@given(config=configs)
def test_any_json_config_begins_the_job_and_reads_back_as_passed(address: str, reader: SidecarClient, config: dict[str, Any]) -> None:
    job_id = fresh_job_id("config")
    callbacks = begin(address, job_id, model_config=config, training_config=config, params={})
    try:
        job = reader.get_job(job_id)
        assert job.status == pb.JOB_STATUS_RUNNING
        assert same(struct_value(job.model_config), config)
        assert same(struct_value(job.training_config), config)
    finally:
        callbacks.close()


@SETTINGS
@given(config=st.dictionaries(keys, non_finite, min_size=1, max_size=3))
def test_nan_and_infinity_in_a_config_are_kept(address: str, reader: SidecarClient, config: dict[str, float]) -> None:
    job_id = fresh_job_id("nonfinite")
    callbacks = begin(address, job_id, training_config={"nested": config}, params={})
    try:
        stored = struct_value(reader.get_job(job_id).training_config)
        assert same(stored, {"nested": config}), f"sent {config!r}, stored {stored!r}"
    finally:
        callbacks.close()


@SETTINGS
@given(config=configs)
def test_params_default_to_the_flattened_training_config(address: str, reader: SidecarClient, config: dict[str, Any]) -> None:
    """The README: ``params=None`` → ``training_config`` flattened to ``{"a.b": "value"}`` strings."""
    job_id = fresh_job_id("params")
    callbacks = begin(address, job_id, training_config=config)
    try:
        params = dict(reader.get_job(job_id).params)
        expected: dict[str, str] = {}

        def flatten(value: Any, prefix: str) -> None:
            if isinstance(value, dict) and value:
                for k, v in value.items():
                    flatten(v, f"{prefix}{k}.")
            elif isinstance(value, dict):
                return
            else:
                expected[prefix[:-1]] = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)

        for k, v in config.items():
            flatten(v, f"{k}.")
        # Lists and other leaves are one param each: compare the keys and the scalar leaves.
        assert params.keys() == expected.keys(), (params, expected)
        for key, value in expected.items():
            if not value.startswith("["):
                assert params[key] == value, (key, params[key], value)
    finally:
        callbacks.close()


@SETTINGS
@given(metrics=st.dictionaries(metric_names, metric_values, min_size=1, max_size=8))
def test_epoch_metrics_are_stored_as_floats_with_nan_and_infinity_kept(address: str, reader: SidecarClient, metrics: dict[str, Any]) -> None:
    job_id = fresh_job_id("metrics")
    callbacks = begin(address, job_id, params={})
    try:
        callbacks.on_epoch_end(0, metrics)
        assert callbacks.flush(10), "the epoch was not acknowledged"
        [epoch] = reader.list_epochs(job_id)
        stored = dict(epoch.metrics)
        assert stored.keys() == metrics.keys()
        for name, value in metrics.items():
            assert same(stored[name], float(value)), (name, value, stored[name])
        assert set(epoch.non_finite_metrics) == {n for n, v in metrics.items() if not math.isfinite(float(v))}
    finally:
        callbacks.close()


#: Configurations whose flattened params the sidecar refuses: over its limits (key 250, value 6000
#: characters, 1000 entries: MLflow's, which trainers do not know about) or keys with control characters.
refused_params = st.one_of(
    st.text(st.characters(categories=("Cc",)), min_size=1, max_size=3).map(lambda k: {f"a{k}b": 1}),
    st.integers(251, 400).map(lambda n: {"k" * n: 1}),
    st.integers(6001, 9000).map(lambda n: {"prompt": "v" * n}),
    st.integers(1001, 1500).map(lambda n: {f"p{i}": i for i in range(n)}),
)


@settings(SETTINGS, max_examples=12)
@given(config=refused_params)
def test_a_config_whose_params_the_sidecar_refuses_still_begins_the_job(address: str, reader: SidecarClient, config: dict[str, Any]) -> None:
    job_id = fresh_job_id("bigparams")
    callbacks = begin(address, job_id, training_config=config)
    try:
        job = reader.get_job(job_id)  # raises NOT_FOUND when BeginTraining was refused
        assert job.status == pb.JOB_STATUS_RUNNING
        assert same(struct_value(job.training_config), config)  # the whole configuration is kept there
        params = dict(job.params)
        assert len(params) <= MAX_PARAMS  # params within the limits, the rest dropped or shortened
        assert all(len(k) <= PARAM_KEY_MAX_LENGTH and len(v) <= PARAM_VALUE_MAX_LENGTH for k, v in params.items())
        assert not any(PARAM_KEY_FORBIDDEN.search(k) for k in params)
    finally:
        callbacks.close()


#: Text with lone surrogates, as os.fsdecode gives for a file name that is not UTF-8.
surrogate_text = st.tuples(
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=4),
    st.integers(0xD800, 0xDFFF).map(chr),
    st.text(st.characters(exclude_categories=("Cc", "Cs")), max_size=4),
).map("".join)


def replaced(text: str) -> str:
    return "".join("\ufffd" if 0xD800 <= ord(c) <= 0xDFFF else c for c in text)


@SETTINGS
@given(key=surrogate_text, value=surrogate_text, name=surrogate_text)
def test_text_that_is_not_unicode_never_raises_into_the_trainer(
    address: str, reader: SidecarClient, key: str, value: str, name: str
) -> None:
    """Lone surrogates in a config or a metric name: the calls return (they used to raise
    UnicodeEncodeError out of on_train_begin), and the text is stored with U+FFFD in their place."""
    job_id = fresh_job_id("surrogates")
    callbacks = begin(address, job_id, training_config={key: value, "path": value}, params={})
    try:
        stored = struct_value(reader.get_job(job_id).training_config)
        assert stored == {replaced(key): replaced(value), "path": replaced(value)}
        callbacks.on_epoch_end(0, {name: 1.0, "x_ok": 2.0})  # the name may be refused; it must not raise
        callbacks.on_batch_end(0, {name: 1.0})
        assert callbacks.flush(15)
    finally:
        callbacks.close()
