"""The tutorial notebooks, executed end to end with nbclient (as on Binder and in `make demo`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from .sandbox_helpers import require_nsjail

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(name: str, workdir: Path) -> list[str]:
    """Run ``notebooks/NAME.ipynb`` in ``workdir``; every output of every cell, as text."""
    require_nsjail()
    shutil.copy(NOTEBOOKS / f"{name}.ipynb", workdir)
    book = nbformat.read(workdir / f"{name}.ipynb", as_version=4)
    NotebookClient(book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    texts = []
    for cell in book.cells:
        if cell.cell_type != "code":
            continue
        parts = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(output.text)
            elif output.output_type == "error":
                parts.append("\n".join(output.traceback))
            else:
                parts.append(output.get("data", {}).get("text/plain", ""))
        texts.append("\n".join(parts))
    return texts


def test_01_quickstart_runs_the_spec_example_signed_and_sandboxed(tmp_path: Path) -> None:
    outputs = "\n".join(execute("01-quickstart", tmp_path))
    assert "plugins run under nsjail" in outputs
    assert "sentiment-analyzer 1.2.0: ACTIVE (idle), isolation nsjail, signer CN=" in outputs
    assert "{'result': [0.8, -0.6]}" in outputs
    assert "ok: sentiment-analyzer 1.2.0 signed by CN=" in outputs
    assert "test_sentiment_analyzer_runs_every_example PASSED" in outputs
    assert "synapse: 1 passed in the nsjail sandbox" in outputs
    assert (tmp_path / "synapse-plugins" / "sentiment-analyzer" / "synapse.sig.json").is_file()


def test_02_model_wrapper_serves_batches_and_benchmarks_them(tmp_path: Path) -> None:
    outputs = "\n".join(execute("02-model-wrapper", tmp_path))
    assert "training accuracy: 0.9" in outputs
    assert "{'label': 'virginica'" in outputs
    assert "synapse: 1 passed in the nsjail sandbox" in outputs  # its tests, in the jail, with scikit-learn
    assert "[{'label': 'setosa'" in outputs  # a batch through execute_batch
    assert "best batch size: " in outputs
    assert "batch_size  concurrency" in outputs


def test_03_debugging_finds_and_fixes_the_bug(tmp_path: Path) -> None:
    outputs = execute("03-debugging-plugin-io", tmp_path)
    text = "\n".join(outputs)
    assert "error: word-stats: output failed validation against output_schema.json: /longest" in text
    assert "[plugin-failed, exit 7]" in text
    assert "in-process (unsandboxed)" in text
    assert "found it: handler.py:" in text
    assert "{'words': 4, 'longest': 'longest'}" in text
    assert "Traceback (most recent call last)" not in text


def test_04_permissions_fail_safely_and_the_notebook_keeps_working(tmp_path: Path) -> None:
    outputs = "\n".join(execute("04-permissions-and-sandbox", tmp_path))
    assert "'greeting': 'hello from the API'" in outputs
    assert "refused example.com:80: 'example.com' is not in network_access.domains" in outputs
    assert "'127.0.0.1' is an IP address" in outputs
    assert "network refused: example.com:80 (not-listed)" in outputs
    assert "memory limit exceeded: memory_mb=64" in outputs
    assert "[limit, exit 6]" in outputs
    assert "no result within 500 ms" in outputs
    assert "[timeout, exit 5]" in outputs
    assert "{'slept': 0.1}" in outputs
    assert "asks for a GPU" in outputs
    assert "[sandbox, exit 8]" in outputs
    assert "every plugin torn down" in outputs
