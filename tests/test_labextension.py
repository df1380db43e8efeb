"""The JupyterLab extension's own unit tests (jest, as the extension template sets them up) and its packaging."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

LABEXT = Path(__file__).resolve().parent.parent / "labextension"


def require_node_modules() -> None:
    problem = None
    if shutil.which("node") is None:
        problem = "node is missing (Debian package nodejs; make test installs it as root)"
    elif not (LABEXT / "node_modules" / ".bin" / "jest").exists():
        problem = "labextension/node_modules is missing: run `make unit` (it runs jlpm install)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)


@pytest.mark.slow
def test_the_frontend_unit_tests_pass_under_jest() -> None:
    require_node_modules()
    proc = subprocess.run(
        [str(LABEXT / "node_modules" / ".bin" / "jest"), "--ci", "--silent"],
        cwd=LABEXT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "Tests:" in proc.stderr
    assert " failed" not in proc.stderr.split("Tests:")[1].splitlines()[0]


def test_the_extension_is_declared_for_jupyterlab_4() -> None:
    package = json.loads((LABEXT / "package.json").read_text())
    assert package["jupyterlab"]["outputDir"] == "../synapse_nb/labextension"
    assert package["dependencies"]["@jupyterlab/application"].startswith("^4")
    assert (LABEXT / "yarn.lock").is_file()  # the build is reproducible: every npm package pinned
    config = json.loads((LABEXT / "jupyter-config" / "jupyter_server_config.d" / "synapse_nb.json").read_text())
    assert config == {"ServerApp": {"jpserver_extensions": {"synapse_nb.server": True}}}
