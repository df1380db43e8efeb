"""The benchmark harness itself: verdicts from interleaved rounds, the JSON result, --compare and --readme."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import bench.__main__ as bench_main
from bench.common import Rounds, Row, interleaved


def test_a_row_is_ok_noisy_or_a_miss_by_its_median_and_spread() -> None:
    assert Row("b", "m", 1.0, 1.0, "base", 1.5, spread=(0.9, 1.1)).verdict == "ok"
    assert Row("b", "m", 1.6, 1.0, "base", 1.5, spread=(1.2, 2.0)).verdict == "noisy"
    assert Row("b", "m", 1.6, 1.0, "base", 1.5, spread=(1.55, 2.0)).verdict == "MISS"
    assert Row("b", "m", 0.7, 1.0, "base", 0.8, higher_is_better=True, spread=(0.6, 0.9)).verdict == "noisy"
    assert Row("b", "m", 9.0, 1.0, "base", None).verdict == "info"


def test_rounds_take_the_median_of_each_and_the_spread_of_the_per_round_ratios() -> None:
    rounds = Rounds({"call": [2.0, 3.0, 10.0], "floor": [1.0, 1.0, 2.0]})
    row = rounds.row("b", "m", "call", "floor", "floor", 2.5)
    assert (row.measured, row.baseline) == (3.0, 1.0)
    assert row.spread == (2.0, 5.0)
    assert row.verdict == "noisy"


def test_interleaved_alternates_the_functions_within_each_round() -> None:
    order: list[str] = []
    fns = {"a": lambda: order.append("a"), "b": lambda: order.append("b")}
    rounds = interleaved(fns, rounds=2, per_round=3, statistic=len, warmup=1)
    assert order == ["a", "b"] * 7
    assert rounds.values == {"a": [3, 3], "b": [3, 3]}


def _result(ratio: float) -> dict[str, object]:
    row = Row("sandbox", "warm call p50", ratio, 1.0, "raw pipe echo p50", 1.5, spread=(ratio * 0.9, ratio * 1.1))
    facts = {"cores": 2, "kernel": "6.1", "python": "3.11.7", "load_average": [1.0, 2.0, 3.0], "time": "T"}
    return {"machine": facts, "quick": False, "rows": [row.to_json()]}


def test_compare_shows_what_moved(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old, new = tmp_path / "old.json", tmp_path / "new.json"
    old.write_text(json.dumps(_result(2.0)))
    new.write_text(json.dumps(_result(1.0)))
    assert bench_main.main(["--compare", str(old), str(new)]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "warm call p50" in x)
    for part in ("2.00x", "1.00x", "-50%", "ok"):
        assert part in line


def test_readme_table_is_rewritten_between_its_markers_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{bench_main.README_BEGIN}\nstale table\n{bench_main.README_END}\nafter\n")
    result = tmp_path / "result.json"
    result.write_text(json.dumps(_result(1.2)))
    monkeypatch.setattr(bench_main, "ROOT", tmp_path)
    assert bench_main.main(["--readme", str(result)]) == 0
    text = readme.read_text()
    assert "stale table" not in text
    assert text.startswith("intro\n")
    assert text.endswith(f"{bench_main.README_END}\nafter\n")
    row = "| sandbox | warm call p50 | 1.200 ms | 1.000 ms (raw pipe echo p50) | 1.20x | 1.08-1.32x | <= 1.5x | ok |"
    assert row in text
    assert "load average 1.0 / 2.0 / 3.0" in text


def test_readme_without_markers_is_an_error_not_a_rewrite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "README.md").write_text("no markers\n")
    result = tmp_path / "result.json"
    result.write_text(json.dumps(_result(1.2)))
    monkeypatch.setattr(bench_main, "ROOT", tmp_path)
    assert bench_main.main(["--readme", str(result)]) == 1
    assert (tmp_path / "README.md").read_text() == "no markers\n"
