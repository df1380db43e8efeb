"""`synapse-cli plugin compat OLD NEW`: the table, the verdict and its exit code, for folders, archives and history."""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from synapse_nb.cli import main
from synapse_nb.signing import sign_folder

from .test_compat_gate import add_optional, edit_schema, require_lang, set_version

Capture = pytest.CaptureFixture[str]


@pytest.fixture
def pair(make_plugin: Callable[..., Path], tmp_path: Path) -> tuple[Path, Path]:
    old = make_plugin("versions")
    new = tmp_path / "new" / "versions"
    shutil.copytree(old, new)
    set_version(old, "1.0.0")
    return old, new


def test_a_compatible_change_with_a_minor_bump_passes(pair: tuple[Path, Path], capsys: Capture) -> None:
    old, new = pair
    edit_schema(new, "input_schema.json", add_optional)
    set_version(new, "1.1.0")
    assert main(["plugin", "compat", str(old), str(new), "--examples", "0"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "versions 1.0.0 -> 1.1.0 (minor bump)"
    assert "minor  input-property-added" in out
    assert "schemas/input_schema.json:9  /properties/lang" in out
    assert out.rstrip().endswith("ok: the changes need minor, and 1.0.0 -> 1.1.0 is enough")


def test_a_breaking_change_with_a_minor_bump_exits_3_with_one_error_line(
    pair: tuple[Path, Path], capsys: Capture
) -> None:
    old, new = pair
    edit_schema(new, "input_schema.json", require_lang)
    set_version(new, "1.1.0")
    assert main(["plugin", "compat", str(old), str(new), "--examples", "0"]) == 3
    captured = capsys.readouterr()
    assert "major  input-required-property-added" in captured.out
    errors = [line for line in captured.err.splitlines() if line.startswith("error:")]
    assert errors == [
        "error: versions: input: /lang: required property 'lang' added (schemas/input_schema.json:15) "
        "[input-required-property-added, major] needs a major bump, but 1.0.0 -> 1.1.0 is a minor bump; "
        "use version 2.0.0"
    ]


def test_json_is_one_object_with_every_change(pair: tuple[Path, Path], capsys: Capture) -> None:
    old, new = pair
    edit_schema(new, "output_schema.json", lambda s: s["properties"]["result"]["properties"].pop("upper"))
    spec = (new / "manifest.yaml").read_text().replace("timeout: 2s", "timeout: 20s")
    (new / "manifest.yaml").write_text(spec)
    set_version(new, "1.0.1")
    assert main(["plugin", "compat", str(old), str(new), "--json", "--examples", "0"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["ok"] is False
    assert out["error"]["code"] == "invalid"
    assert out["error"]["suggested_version"] == "2.0.0"
    result = out["result"]
    assert (result["required_bump"], result["bump_made"], result["sufficient"]) == ("major", "patch", False)
    assert result["asks_for_more"] == ["timeout 2s -> 20s"]
    by_rule = {c["rule"]: c for c in result["changes"]}
    removed = by_rule["output-required-property-removed"]
    assert (removed["side"], removed["pointer"], removed["where"]) == (
        "old",
        "/properties/result/properties/upper",
        "/result/upper",
    )
    assert removed["line"] == 9


def test_the_semantic_check_shows_a_counterexample(pair: tuple[Path, Path], capsys: Capture) -> None:
    old, new = pair
    edit_schema(old, "input_schema.json", lambda s: s["properties"]["text"].update(pattern="^[a-z]+$"))
    edit_schema(new, "input_schema.json", lambda s: s["properties"]["text"].update(pattern="^[a-z]{1,2}$"))
    set_version(new, "2.0.0")
    assert main(["plugin", "compat", str(old), str(new), "--json", "--examples", "200"]) == 0
    result = json.loads(capsys.readouterr().out)["result"]
    (found,) = [c for c in result["changes"] if c["rule"] == "input-value-refused"]
    assert found["bump"] == "major"
    text = found["example"]["text"]
    assert len(text) == 3
    assert text.isalpha()
    assert text.islower()
    assert "does not match '^[a-z]{1,2}$'" in found["message"]


def test_the_semantic_check_stops_at_its_time_budget(pair: tuple[Path, Path], capsys: Capture) -> None:
    old, new = pair
    edit_schema(new, "input_schema.json", add_optional)
    set_version(new, "1.1.0")
    assert main(["plugin", "compat", str(old), str(new), "--json", "--timeout", "1ms"]) == 0
    notes = json.loads(capsys.readouterr().out)["result"]["notes"]
    assert "semantic check stopped at its time budget of 0.001s" in notes


def test_name_at_version_compares_with_the_local_history(pair: tuple[Path, Path], capsys: Capture) -> None:
    old, new = pair
    sign_folder(old)
    edit_schema(new, "input_schema.json", require_lang)
    set_version(new, "2.0.0")
    assert main(["plugin", "compat", "versions@^1", str(new), "--json", "--examples", "0"]) == 0
    result = json.loads(capsys.readouterr().out)["result"]
    assert (result["old"], result["old_version"], result["required_bump"]) == (
        "versions@1.0.0 (history)",
        "1.0.0",
        "major",
    )


def test_a_synapse_archive_is_compared_like_its_folder(
    pair: tuple[Path, Path], tmp_path: Path, capsys: Capture
) -> None:
    from synapse_nb.registry.archive import pack

    old, new = pair
    sign_folder(old)
    archive = pack(old, tmp_path / "archives").path
    set_version(new, "1.0.1")
    (new / "handler.py").write_text((new / "handler.py").read_text() + "\n# faster\n")
    assert main(["plugin", "compat", str(archive), str(new), "--json", "--examples", "0"]) == 0
    result = json.loads(capsys.readouterr().out)["result"]
    assert result["old"] == str(archive)
    assert [c["rule"] for c in result["changes"]] == ["implementation-changed"]
    assert result["required_bump"] == "patch"


def test_an_archive_that_is_not_a_plugin_archive_is_refused(
    pair: tuple[Path, Path], tmp_path: Path, capsys: Capture
) -> None:
    _old, new = pair
    archive = tmp_path / "evil.synapse"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../outside.txt", "x")
    assert main(["plugin", "compat", str(archive), str(new)]) == 3
    assert "evil.synapse" in capsys.readouterr().err
    assert not (tmp_path / "outside.txt").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nowhere", "nowhere-else"], "'nowhere': no such folder or archive, and not NAME@VERSION"),
        (["missing@1.0.0", "."], "no signed version of 'missing' matches '1.0.0'"),
        (["x@not a range", "."], "'not a range' is not a version range"),
        (["..@1.0.0", "."], "'..@1.0.0' is not NAME@VERSION"),
    ],
)
def test_bad_arguments_are_usage_errors(argv: list[str], message: str, capsys: Capture) -> None:
    assert main(["plugin", "compat", *argv]) == 2
    assert message in capsys.readouterr().err


def test_a_negative_example_count_is_a_usage_error(pair: tuple[Path, Path], capsys: Capture) -> None:
    old, new = pair
    assert main(["plugin", "compat", str(old), str(new), "--examples", "-1"]) == 2
    assert "--examples must be 0 or more" in capsys.readouterr().err


def test_a_schema_nested_too_deeply_is_a_located_error_not_a_crash(pair: tuple[Path, Path], capsys: Capture) -> None:
    old, new = pair
    (new / "schemas" / "input_schema.json").write_text("[" * 100_000 + "]" * 100_000)
    assert main(["plugin", "compat", str(old), str(new)]) == 3
    assert "schemas/input_schema.json is not valid JSON: nested deeper than 128 levels" in capsys.readouterr().err
