"""The results.csv rules (proto/results-csv.json) as the Python importer applies them, on the same file
the CLI's ``training-callbacks import-csv`` is tested with (apps/sidecar/src/cli/results-csv.spec.ts
expects the same epochs from it)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from training_callbacks import _results_csv
from training_callbacks.ultralytics import read_results_csv

REPO = Path(__file__).resolve().parents[3]
FIXTURE = REPO / "apps" / "sidecar" / "src" / "cli" / "testdata" / "results.csv"


def test_generated_rules_match_the_data_file() -> None:
    data = json.loads((REPO / "proto" / "results-csv.json").read_text())
    assert _results_csv.EPOCH_COLUMN == data["epochColumn"]
    assert _results_csv.EPOCH_BASE == data["epochBase"]
    assert _results_csv.SKIPPED_COLUMNS == frozenset(data["skippedColumns"])
    assert _results_csv.FRAMEWORK == data["framework"]


def test_the_cli_fixture_reads_as_the_cli_reads_it() -> None:
    epochs = read_results_csv(FIXTURE)
    assert [epoch for epoch, _ in epochs] == [0, 1, 2]
    assert epochs[0][1] == {
        "train/box_loss": 1.2613,
        "train/cls_loss": 2.8705,
        "train/dfl_loss": 1.2476,
        "metrics/precision(B)": 0.55012,
        "metrics/recall(B)": 0.41318,
        "metrics/mAP50(B)": 0.44121,
        "metrics/mAP50-95(B)": 0.27193,
        "val/box_loss": 1.3104,
        "val/cls_loss": 2.4871,
        "val/dfl_loss": 1.2869,
        "lr/pg0": 0.0033261,
        "lr/pg1": 0.0033261,
        "lr/pg2": 0.0033261,
    }
    # Validation did not run in the second epoch: its cells are empty and stay missing (never 0).
    assert list(epochs[1][1]) == ["train/box_loss", "train/cls_loss", "train/dfl_loss", "lr/pg0", "lr/pg1", "lr/pg2"]


def test_numbers_as_float_reads_them(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    path.write_text("epoch,a,b,c,d\n1.0,nan,-inf,x,1e-3\n2,Infinity,\n,5,5,5,5\n")
    (first, a), (second, b) = read_results_csv(path)
    assert (first, second) == (0, 1)
    assert math.isnan(a.pop("a"))
    assert a == {"b": -math.inf, "d": 0.001}
    assert b == {"a": math.inf}


def test_a_file_without_the_epoch_column_is_an_error_not_an_empty_import(tmp_path: Path) -> None:
    # Without the epoch column every row would be skipped; the CLI refuses such a file too.
    path = tmp_path / "results.csv"
    path.write_text("step,loss\n1,0.5\n")
    with pytest.raises(ValueError, match=r'no "epoch" column \(it has \'step\', \'loss\'\)'):
        read_results_csv(path)
    path.write_text("")
    with pytest.raises(ValueError, match="it has nothing"):
        read_results_csv(path)


def test_an_epoch_that_is_no_number_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "results.csv"
    for epoch in ("two", "inf", "nan"):
        path.write_text(f"epoch,loss\n1,0.5\n{epoch},0.4\n")
        with pytest.raises(ValueError, match=f'line 3: the epoch "{epoch}" is not a number'):
            read_results_csv(path)
