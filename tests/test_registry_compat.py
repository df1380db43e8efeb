"""A real registry on loopback refuses (422) a version whose number does not allow its changes, and says why."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from synapse_nb.cli import main as cli
from synapse_nb.registry.archive import pack
from synapse_nb.registry.compat import check_compat
from synapse_nb.registry.store import _previous
from synapse_nb.signing import sign_folder

from .registry_helpers import client_credentials_entry, configure, running_registry


def release(example: Path, tmp_path: Path, version: str, *, lang: str | None = None) -> Path:
    """A signed copy of the example at ``version``; ``lang``: None, "optional" or "required" (an input field)."""
    target = tmp_path / f"sentiment-{version}"
    shutil.copytree(example, target, ignore=shutil.ignore_patterns("synapse.sig.json", "__pycache__"))
    manifest = target / "manifest.yaml"
    manifest.write_text(manifest.read_text().replace("version: 1.2.0", f"version: {version}"))
    if lang is not None:
        path = target / "schemas" / "input_schema.json"
        schema = json.loads(path.read_text())
        schema["properties"]["lang"] = {"type": "string"}
        if lang == "required":
            schema["required"].append("lang")
        path.write_text(json.dumps(schema, indent=2))
    sign_folder(target)
    return target


def publish(folder: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli(["plugin", "publish", str(folder), "--registry", "corp", "--json"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_the_registry_checks_each_version_against_the_last_release_below_it(
    synapse_home: Path, signed_example: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with running_registry(tmp_path / "reg") as reg:
        configure(synapse_home, client_credentials_entry(reg))
        assert publish(signed_example, capsys)[0] == 0
        code, out, _err = publish(release(signed_example, tmp_path, "1.3.0", lang="optional"), capsys)
        assert code == 0
        answer = json.loads(out.strip().splitlines()[-1])["result"]
        assert answer["compat_verdict"] == "checked against 1.2.0: the changes need minor, the version is minor"
        assert (answer["compat"]["checked"], answer["compat"]["ok"]) == (True, True)

        # The breaking version was signed on another machine: this home's history (the sign-time gate) never saw
        # 1.3.0, so only the registry stands between it and the consumers pinning ^1.
        shutil.rmtree(synapse_home / "history")
        breaking = release(signed_example, tmp_path, "1.3.1", lang="required")
        code, _out, err = publish(breaking, capsys)
        assert code == 9
        (line,) = [x for x in err.splitlines() if x.startswith("error:")]
        assert "HTTP 422" in line
        assert "1.3.1 is not a compatible successor of 1.3.0" in line
        assert "input-property-became-required" in line
        assert line.rstrip().endswith("1.3.0 -> 1.3.1 is a patch bump; use version 2.0.0")
        versions = reg.store._catalog()["plugins"]["sentiment-analyzer"]["versions"]
        assert sorted(versions) == ["1.2.0", "1.3.0"]

        code, out, _err = publish(release(signed_example, tmp_path, "2.0.0", lang="required"), capsys)
        assert code == 0
        assert json.loads(out.strip().splitlines()[-1])["result"]["compat"]["required_bump"] == "major"


def test_the_server_answers_422_incompatible_with_the_reason(
    synapse_home: Path, signed_example: Path, tmp_path: Path
) -> None:
    import httpx

    with running_registry(tmp_path / "reg") as reg:
        headers = {"Authorization": f"Bearer {reg.token()}"}
        url = f"{reg.url}/api/v1/plugins/sentiment-analyzer"
        first = pack(signed_example, tmp_path / "a").path.read_bytes()
        assert httpx.put(f"{url}/1.2.0", content=first, headers=headers, timeout=60).status_code == 201
        shutil.rmtree(synapse_home / "history")
        minor = pack(release(signed_example, tmp_path, "1.3.0", lang="required"), tmp_path / "b").path.read_bytes()
        answer = httpx.put(f"{url}/1.3.0", content=minor, headers=headers, timeout=60)
        assert answer.status_code == 422
        error = answer.json()["error"]
        assert error["code"] == "incompatible"
        assert "needs a major bump, but 1.2.0 -> 1.3.0 is a minor bump; use version 2.0.0" in error["message"]


def test_a_previous_version_that_cannot_be_opened_leaves_the_check_undone_and_says_why(
    signed_example: Path, tmp_path: Path
) -> None:
    new = pack(release(signed_example, tmp_path, "1.3.0"), tmp_path / "new").path
    broken = tmp_path / "old.synapse"
    broken.write_bytes(b"not a zip at all")
    answer = check_compat(broken, new)
    assert answer["checked"] is False
    assert answer["reason"].startswith("the previous version cannot be opened: ")
    assert "is not a zip archive" in answer["reason"]
    old = pack(signed_example, tmp_path / "old").path
    assert check_compat(old, new)["ok"] is True


def test_the_baseline_is_the_highest_release_below_pre_releases_promise_nothing() -> None:
    versions = {v: {"sha256": v} for v in ("1.0.0", "1.2.0", "2.0.0-rc.1", "2.0.0", "2.1.0-beta")}
    assert _previous(versions, "2.0.0") == ("1.2.0", "1.2.0")  # not 2.0.0-rc.1
    assert _previous(versions, "2.1.0") == ("2.0.0", "2.0.0")
    assert _previous(versions, "1.1.0") == ("1.0.0", "1.0.0")  # a backport is compared with what is below it
    assert _previous(versions, "0.9.0") is None
