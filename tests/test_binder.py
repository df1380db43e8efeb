"""Binder's set-up, built the way repo2docker builds it (without Docker): a fresh virtualenv with JupyterLab (the
base environment repo2docker provides), ``binder/requirements.txt``, then ``binder/postBuild``.

The wheel is built once (with the JupyterLab extension inside) and postBuild installs it. The checks: the
"Python 3 (Synapse)" kernelspec, ``jupyter labextension list``, ``jupyter server extension list``, and that a
tutorial's first cell takes the process-level path when nsjail is unavailable (``sandbox.nsjail`` pointing to
a missing binary in that environment's SYNAPSE_HOME, as on Binder where nsjail cannot create namespaces).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def sh(argv: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO, timeout: float = 900) -> str:
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    tail = f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0, f"{' '.join(argv)} failed ({proc.returncode}):\n{tail}"
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """synapse-nb's wheel, built as pip builds it (isolated build environment, hatch-jupyter-builder hook)."""
    out = tmp_path_factory.mktemp("wheel")
    sh([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(REPO)])
    [built] = out.glob("synapse_nb-*.whl")
    return built


def test_the_wheel_ships_the_lab_extension_and_enables_the_server_extension(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    data = "synapse_nb-0.1.0.data/data"
    assert f"{data}/share/jupyter/labextensions/synapse-nb/package.json" in names
    assert f"{data}/share/jupyter/labextensions/synapse-nb/install.json" in names
    assert any(n.startswith(f"{data}/share/jupyter/labextensions/synapse-nb/static/remoteEntry.") for n in names)
    assert f"{data}/etc/jupyter/jupyter_server_config.d/synapse_nb.json" in names
    assert "synapse_nb/server/handlers.py" in names
    assert not [n for n in names if n.startswith("synapse_nb/labextension/")]  # only under share/, not twice


@pytest.fixture(scope="module")
def binder_env(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A fresh virtualenv set up as repo2docker would: base JupyterLab, requirements.txt, postBuild."""
    base = tmp_path_factory.mktemp("binder")
    venv = base / "venv"
    sh([sys.executable, "-m", "venv", str(venv)])
    home = base / "home"
    synapse_home = home / ".synapse"
    synapse_home.mkdir(parents=True)
    # As on Binder: nsjail cannot run (here: the configured binary does not exist).
    (synapse_home / "config").write_text(f"sandbox:\n  nsjail: {base / 'no-such-nsjail'}\n")
    env = {
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(home),
        "SYNAPSE_HOME": str(synapse_home),
        "VIRTUAL_ENV": str(venv),
        "SYNAPSE_NB_WHEEL": str(wheel),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
        "LANG": "C.UTF-8",
    }
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    sh([*pip, "jupyterlab>=4"], env=env)  # repo2docker's base environment
    sh([*pip, "-r", str(REPO / "binder" / "requirements.txt")], env=env)
    sh(["bash", str(REPO / "binder" / "postBuild")], env=env)
    return env


def test_binder_registers_the_synapse_kernel(binder_env: dict[str, str]) -> None:
    specs = json.loads(sh(["jupyter", "kernelspec", "list", "--json"], env=binder_env))["kernelspecs"]
    synapse = specs["synapse"]["spec"]
    assert synapse["display_name"] == "Python 3 (Synapse)"
    assert synapse["argv"][-1] == "--ext=synapse_nb.notebook.preload"
    assert synapse["argv"][0].startswith(binder_env["VIRTUAL_ENV"])


def test_binder_has_the_lab_and_server_extensions(binder_env: dict[str, str]) -> None:
    labext = sh(["jupyter", "labextension", "list"], env=binder_env)
    assert "synapse-nb v0.1.0" in labext
    assert "enabled" in labext.split("synapse-nb v0.1.0")[1].splitlines()[0]
    serverext = sh(["jupyter", "server", "extension", "list"], env=binder_env)
    assert "synapse_nb.server" in serverext
    assert "synapse_nb.server \x1b[32menabled" in serverext or "synapse_nb.server enabled" in serverext


def test_the_first_cell_takes_the_process_level_path_without_nsjail(binder_env: dict[str, str], tmp_path: Path) -> None:
    tutorial = json.loads((REPO / "notebooks" / "01-quickstart.ipynb").read_text())
    code = [c for c in tutorial["cells"] if c["cell_type"] == "code"][:1]  # %synapse isolation --allow-process
    tutorial["cells"] = code
    notebook = tmp_path / "first-cells.ipynb"
    notebook.write_text(json.dumps(tutorial))
    script = (
        "import sys, nbformat\n"
        "from nbclient import NotebookClient\n"
        "book = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(book, timeout=300, resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
        "for cell in book.cells:\n"
        "    for out in cell.outputs:\n"
        "        print(out.get('text') or out.get('data', {}).get('text/plain', ''))\n"
    )  # the notebook's own kernelspec: "synapse", as Binder opens it
    python = str(Path(binder_env["VIRTUAL_ENV"]) / "bin" / "python")
    out = sh([python, "-c", script, str(notebook), str(tmp_path)], env=binder_env, cwd=tmp_path)
    assert "this host cannot run nsjail" in out
    assert "isolation here is 'process'" in out
    assert "OPTED IN to process isolation" in out
