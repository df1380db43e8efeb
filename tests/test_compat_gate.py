"""The sign-time gate: insufficient bumps, lower versions and reused versions are refused with the version to use."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from synapse_nb.compat import CompatibilityError, find_record, records, suggest_version, verdict
from synapse_nb.errors import InvalidError
from synapse_nb.fileset import SIGNATURE_FILE
from synapse_nb.signing import init_developer_key, sign_folder

from .pki import issue, root

Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def plugin(make_plugin: Callable[..., Path]) -> Path:
    return make_plugin("gated")


def set_version(folder: Path, version: str) -> None:
    manifest = folder / "manifest.yaml"
    manifest.write_text(re.sub(r"(?m)^  version: .*$", f"  version: {version}", manifest.read_text()))


def edit_schema(folder: Path, name: str, edit: Edit) -> None:
    path = folder / "schemas" / name
    schema = json.loads(path.read_text())
    edit(schema)
    path.write_text(json.dumps(schema, indent=2) + "\n")


def require_lang(schema: dict[str, Any]) -> None:
    schema["properties"]["lang"] = {"type": "string"}
    schema["required"] = [*schema.get("required", []), "lang"]


def add_optional(schema: dict[str, Any]) -> None:
    schema["properties"]["lang"] = {"type": "string"}


def test_the_first_signature_records_the_contract_and_no_code(plugin: Path, synapse_home: Path) -> None:
    result = sign_folder(plugin)
    assert result.compat is None
    (record,) = records("gated")
    data = json.loads(record.path.read_text())
    assert record.path.parent.parent == synapse_home / "history" / "gated"
    assert data["version"] == "0.1.0"
    assert data["digest"] == result.digest
    assert set(data["schemas"]) == {"input_schema.json", "output_schema.json"}
    assert "handler" not in json.dumps(data["schemas"])
    assert "class " not in record.path.read_text()


def test_a_compatible_change_with_a_big_enough_bump_is_signed(plugin: Path) -> None:
    sign_folder(plugin)
    edit_schema(plugin, "input_schema.json", add_optional)
    set_version(plugin, "0.1.1")
    result = sign_folder(plugin, reuse="refuse")
    assert result.compat is not None
    assert (result.compat["baseline"], result.compat["required_bump"], result.compat["bump_made"]) == (
        "0.1.0",
        "minor",
        "minor",
    )
    assert [str(r.version) for r in records("gated")] == ["0.1.0", "0.1.1"]


def test_a_bump_too_small_is_refused_naming_the_change_and_the_version_to_use(plugin: Path) -> None:
    set_version(plugin, "1.0.0")
    sign_folder(plugin)
    signature = (plugin / SIGNATURE_FILE).read_bytes()
    edit_schema(plugin, "input_schema.json", require_lang)
    set_version(plugin, "1.1.0")
    with pytest.raises(CompatibilityError) as info:
        sign_folder(plugin)
    error = info.value
    assert "required property 'lang' added" in str(error)
    assert "schemas/input_schema.json:" in str(error)
    assert str(error).endswith("needs a major bump, but 1.0.0 -> 1.1.0 is a minor bump; use version 2.0.0")
    assert "\n" not in str(error)
    assert (error.kind, error.required_bump, error.bump_made, error.suggested_version, error.exit_code) == (
        "insufficient-bump",
        "major",
        "minor",
        "2.0.0",
        3,
    )
    assert error.changes[0]["rule"] == "input-required-property-added"
    assert (plugin / SIGNATURE_FILE).read_bytes() == signature  # nothing written
    set_version(plugin, "2.0.0")
    assert sign_folder(plugin).version == "2.0.0"


def test_an_output_field_removed_in_a_minor_release_is_refused(plugin: Path) -> None:
    set_version(plugin, "1.0.0")
    sign_folder(plugin)
    edit_schema(plugin, "output_schema.json", lambda s: s["properties"]["result"]["properties"].pop("upper"))
    set_version(plugin, "1.1.0")
    with pytest.raises(
        CompatibilityError, match=r"output: /result/upper: property 'upper' removed .* use version 2\.0\.0"
    ):
        sign_folder(plugin)


def test_a_version_lower_than_the_highest_is_refused(plugin: Path) -> None:
    set_version(plugin, "1.2.0")
    sign_folder(plugin)
    set_version(plugin, "1.1.9")
    with pytest.raises(CompatibilityError, match=r"1\.1\.9 is lower than 1\.2\.0, .*use version 1\.2\.1") as info:
        sign_folder(plugin)
    assert info.value.kind == "downgrade"


def test_a_reused_version_with_other_content_is_refused_by_plugin_sign(plugin: Path) -> None:
    sign_folder(plugin, reuse="refuse")
    sign_folder(plugin, reuse="refuse")  # the same bytes again: fine
    (plugin / "handler.py").write_text((plugin / "handler.py").read_text() + "\n# a fix\n")
    with pytest.raises(
        CompatibilityError,
        match=r"0\.1\.0 was already signed by this key with other content: "
        r"implementation: handler\.py modified .*use version 0\.1\.1",
    ) as info:
        sign_folder(plugin, reuse="refuse")
    assert info.value.kind == "reused-version"


def test_the_api_reuses_a_version_for_compatible_edits_but_not_for_breaking_ones(plugin: Path) -> None:
    sign_folder(plugin)
    (plugin / "handler.py").write_text((plugin / "handler.py").read_text() + "\n# an edit\n")
    edit_schema(plugin, "input_schema.json", add_optional)
    sign_folder(plugin)  # the notebook's loop: same version, compatible change
    edit_schema(plugin, "input_schema.json", lambda s: s.update(required=[*s["required"], "lang"]))
    with pytest.raises(CompatibilityError, match=r"property 'lang' became required .*use version 0\.2\.0"):
        sign_folder(plugin)


def test_pre_releases_promise_nothing_and_are_never_the_baseline(plugin: Path) -> None:
    set_version(plugin, "1.0.0")
    sign_folder(plugin)
    edit_schema(plugin, "input_schema.json", require_lang)
    set_version(plugin, "1.1.0-rc.1")
    with pytest.raises(CompatibilityError, match=r"use version 2\.0\.0"):
        sign_folder(plugin)
    set_version(plugin, "2.0.0-rc.1")
    sign_folder(plugin)
    edit_schema(plugin, "input_schema.json", lambda s: s["properties"].update(lang={"enum": ["en"]}))
    set_version(plugin, "2.0.0-rc.2")
    sign_folder(plugin)  # a breaking change between release candidates
    set_version(plugin, "2.0.0")
    result = sign_folder(plugin)
    assert result.compat is not None
    assert result.compat["baseline"] == "1.0.0"


def test_a_renewed_developer_certificate_keeps_the_history(plugin: Path) -> None:
    set_version(plugin, "1.0.0")
    sign_folder(plugin)
    init_developer_key(renew=True)
    set_version(plugin, "0.9.0")
    with pytest.raises(CompatibilityError, match=r"lower than 1\.0\.0"):
        sign_folder(plugin)


def test_another_publisher_has_its_own_history(plugin: Path, tmp_path: Path) -> None:
    set_version(plugin, "1.0.0")
    sign_folder(plugin)
    ca = root("Other Corp Root")
    key, cert = issue("Other Dev", ca).write(tmp_path / "other", "dev", chain=[ca])
    set_version(plugin, "0.5.0")
    assert sign_folder(plugin, key_path=key, cert_path=cert).version == "0.5.0"
    assert len({r.publisher for r in records("gated")}) == 2


def test_compat_yaml_accepts_an_undecidable_change_with_a_recorded_reason(plugin: Path) -> None:
    edit_schema(plugin, "input_schema.json", lambda s: s["properties"]["text"].update(pattern="^[a-z]"))
    set_version(plugin, "1.0.0")
    sign_folder(plugin)
    edit_schema(plugin, "input_schema.json", lambda s: s["properties"]["text"].update(pattern="^[a-z0-9]"))
    set_version(plugin, "1.1.0")
    with pytest.raises(CompatibilityError, match="cannot prove compatible: pattern") as info:
        sign_folder(plugin)
    at = f"{info.value.changes[0]['file']}#{info.value.changes[0]['pointer']}"
    assert at == "schemas/input_schema.json#/properties/text/pattern"
    (plugin / "compat.yaml").write_text(
        "accept:\n  - rule: input-pattern-changed\n    at: " + at + "\n    against: 1.0.0\n"
        "    reason: every text the old pattern accepted starts with a-z, which the new one accepts too\n"
    )
    result = sign_folder(plugin)
    assert result.compat is not None
    assert result.compat["required_bump"] == "minor"
    (accepted,) = [c for c in result.compat["changes"] if c.get("accepted")]
    assert accepted["rule"] == "input-pattern-changed"
    assert "every text" in accepted["accepted"]


def test_an_override_cannot_accept_a_proven_break(plugin: Path) -> None:
    set_version(plugin, "1.0.0")
    sign_folder(plugin)
    edit_schema(plugin, "input_schema.json", require_lang)
    (plugin / "compat.yaml").write_text(
        "accept:\n  - rule: input-required-property-added\n    at: schemas/input_schema.json#/required/1\n"
        "    against: 1.0.0\n    reason: nobody calls this without a language, really\n"
    )
    set_version(plugin, "1.1.0")
    v = verdict(find_record("gated@1.0.0").contract(), plugin)
    assert not v.sufficient
    assert any("was not applied (it is proven, not undecidable" in n for n in v.notes)


def test_a_malformed_compat_yaml_is_a_located_error(plugin: Path) -> None:
    (plugin / "compat.yaml").write_text("accept:\n  - rule: x\n    reason: short\n")
    with pytest.raises(InvalidError, match=r"compat\.yaml:2:5: /accept/0: missing 'at'"):
        verdict(plugin, plugin)


def test_suggest_version_explains_the_bump(plugin: Path, tmp_path: Path) -> None:
    import shutil

    old = tmp_path / "old"
    shutil.copytree(plugin, old)
    assert suggest_version(None, plugin) == ("0.1.0", ["no previous version: the version stays as written"])
    assert suggest_version(old, plugin)[0] == "0.1.0"
    edit_schema(plugin, "input_schema.json", require_lang)
    version, reasons = suggest_version(old, plugin)
    assert version == "0.2.0"
    assert reasons[0] == "major bump needed from 0.1.0"
    assert "required property 'lang' added" in reasons[1]
    set_version(plugin, "3.0.0")
    assert suggest_version(old, plugin)[0] == "3.0.0"  # enough already: kept


def test_name_at_range_finds_the_highest_recorded_match(plugin: Path) -> None:
    for version in ("1.0.0", "1.1.0", "2.0.0"):
        set_version(plugin, version)
        sign_folder(plugin)
    assert str(find_record("gated@^1").version) == "1.1.0"
    assert str(find_record("gated@2.0.0").version) == "2.0.0"
    with pytest.raises(
        Exception, match=r"no signed version of 'gated' matches '\^3' .*have: 1\.0\.0, 1\.1\.0, 2\.0\.0"
    ):
        find_record("gated@^3")


def test_plugin_sign_refuses_a_bump_too_small_with_exit_3(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from synapse_nb.cli import main

    set_version(plugin, "1.0.0")
    assert main(["plugin", "sign", str(plugin)]) == 0
    edit_schema(plugin, "input_schema.json", require_lang)
    set_version(plugin, "1.0.1")
    capsys.readouterr()
    assert main(["plugin", "sign", str(plugin)]) == 3
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: gated: input: /lang: required property 'lang' added")
    assert err[0].endswith("needs a major bump, but 1.0.0 -> 1.0.1 is a patch bump; use version 2.0.0")


def test_plugin_sign_shows_what_a_new_version_asks_for(plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from synapse_nb.cli import main

    assert main(["plugin", "sign", str(plugin)]) == 0
    manifest = plugin / "manifest.yaml"
    manifest.write_text(manifest.read_text() + "  permissions:\n    system_resources:\n      memory_mb: 1024\n")
    set_version(plugin, "0.1.1")
    capsys.readouterr()
    assert main(["plugin", "sign", str(plugin)]) == 0
    captured = capsys.readouterr()
    assert "compatible with 0.1.0: the changes need minor, 0.1.0 -> 0.1.1 is minor" in captured.out
    assert "warning: gated 0.1.1 asks for more: memory 512 MiB -> 1024 MiB" in captured.err


def test_a_patch_release_needs_only_a_patch_bump(plugin: Path) -> None:
    set_version(plugin, "1.0.0")
    sign_folder(plugin)
    (plugin / "handler.py").write_text((plugin / "handler.py").read_text() + "\n# faster\n")
    set_version(plugin, "1.0.1")
    result = sign_folder(plugin, reuse="refuse")
    assert result.compat is not None
    assert (result.compat["required_bump"], result.compat["bump_made"]) == ("patch", "patch")
    assert [c["rule"] for c in result.compat["changes"]] == ["implementation-changed"]


def test_replacing_a_running_version_needs_a_number_that_allows_the_changes(plugin: Path, tmp_path: Path) -> None:
    import shutil

    from synapse_nb.compat import check_replacement

    running = tmp_path / "running"
    shutil.copytree(plugin, running)
    edit_schema(plugin, "input_schema.json", add_optional)
    v = check_replacement(running, plugin)  # same version, compatible: how a plugin is edited and re-loaded
    assert (v.required_bump, v.compatible) == ("minor", True)
    edit_schema(plugin, "input_schema.json", lambda s: s.update(required=[*s["required"], "lang"]))
    with pytest.raises(CompatibilityError, match=r"but the version is still 0\.1\.0; use version 0\.2\.0"):
        check_replacement(running, plugin)
    set_version(plugin, "0.2.0")
    assert check_replacement(running, plugin).compatible is False  # allowed, but saved state starts afresh
    set_version(running, "0.3.0")
    with pytest.raises(CompatibilityError, match=r"0\.2\.0 is lower than 0\.3\.0"):
        check_replacement(running, plugin)
    assert check_replacement(running, plugin, allow_downgrade=True).is_downgrade
