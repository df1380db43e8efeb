"""`synapse-cli plugin test`: the plugin's own tests, run by pytest inside its jail; failures per test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from synapse_nb.cli import main
from synapse_nb.signing import sign_folder

from .sandbox_helpers import require_nsjail


def test_the_spec_example_passes_its_tests_inside_its_sandbox(
    signed_example: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_nsjail()
    assert main(["plugin", "test", str(signed_example), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["result"]["passed"] == 3
    assert all(t["outcome"] == "passed" for t in out["result"]["tests"])
    assert out["meta"]["isolation"] == "nsjail"
    assert out["meta"]["signed"] is True


def test_failures_are_reported_per_test_with_exit_7(example_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    require_nsjail()
    (example_plugin / "tests" / "test_extra.py").write_text(
        "def test_wrong_expectation(plugin):\n"
        "    assert plugin.run({'text': 'great'}) == {'result': [0.1]}\n\n"
        "def test_sandboxed(plugin):\n"
        "    assert plugin.isolation == 'nsjail (test session)'\n"
    )
    sign_folder(example_plugin)
    assert main(["plugin", "test", str(example_plugin), "--json"]) == 7
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert (out["result"]["passed"], out["result"]["failed"]) == (4, 1)
    assert out["error"]["code"] == "plugin-failed"
    assert "1 of 5 tests failed, first tests/test_extra.py::test_wrong_expectation" in out["error"]["message"]
    assert captured.err.count("error:") == 1


def test_an_unsigned_plugin_is_refused_like_run_unless_explicitly_waived(
    example_plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_nsjail()
    assert main(["plugin", "test", str(example_plugin)]) == 4
    assert "unsigned: no synapse.sig.json" in capsys.readouterr().err
    assert main(["plugin", "test", str(example_plugin), "--insecure-allow-unsigned", "--json"]) == 0
    captured = capsys.readouterr()
    assert "--insecure-allow-unsigned: running UNVERIFIED code" in captured.err
    assert json.loads(captured.out)["meta"]["signed"] is False


def test_a_plugin_without_pytest_files_is_invalid(example_plugin: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for f in (example_plugin / "tests").iterdir():
        f.unlink() if f.is_file() else None
    assert main(["plugin", "test", str(example_plugin), "--insecure-allow-unsigned"]) == 3
    assert "tests/: missing or holds no pytest file" in capsys.readouterr().err


def test_test_files_and_conftest_run_in_the_jail_not_on_the_host(
    example_plugin: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Hostile test code: it tries to write a file on the host, read the host's environment and the network."""
    require_nsjail()
    canary = tmp_path / "written-by-a-test"
    monkeypatch.setenv("SYNAPSE_KEY_PASSPHRASE", "host-secret")
    (example_plugin / "tests" / "conftest.py").write_text(
        f"import os\ntry:\n    open({str(canary)!r}, 'w').write('conftest')\nexcept OSError:\n    pass\n"
    )
    (example_plugin / "tests" / "test_escape.py").write_text(
        "import os, socket\n\n"
        "def test_runs_as_nobody_without_the_host_environment():\n"
        "    assert os.getuid() == 65534\n"
        "    assert 'SYNAPSE_KEY_PASSPHRASE' not in os.environ\n"
        "    assert not os.path.exists(os.path.expanduser('~root/.ssh'))\n\n"
        "def test_has_no_network():\n"
        "    s = socket.socket()\n"
        "    s.settimeout(1)\n"
        "    try:\n"
        "        s.connect(('1.1.1.1', 80))\n"
        "        raise AssertionError('connected')\n"
        "    except OSError:\n"
        "        pass\n\n"
        f"def test_cannot_write_the_host():\n"
        f"    try:\n"
        f"        open({str(canary)!r}, 'w').write('test')\n"
        f"        raise AssertionError('wrote the host')\n"
        f"    except OSError:\n"
        f"        pass\n"
    )
    sign_folder(example_plugin)
    assert main(["plugin", "test", str(example_plugin), "--json"]) == 0, capsys.readouterr()
    out = json.loads(capsys.readouterr().out)
    assert out["result"]["passed"] == 6
    assert not canary.exists()
    assert os.environ["SYNAPSE_KEY_PASSPHRASE"] == "host-secret"


def test_a_test_session_that_overruns_its_timeout_is_killed(
    example_plugin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_nsjail()
    (example_plugin / "tests" / "test_slow.py").write_text("import time\n\ndef test_forever():\n    time.sleep(60)\n")
    sign_folder(example_plugin)
    assert main(["plugin", "test", str(example_plugin), "--timeout", "2"]) == 5
    assert "timed out" in capsys.readouterr().err
