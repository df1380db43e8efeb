"""``python -m synapse_nb.notebook.headless NOTEBOOK [--workdir DIR]``: run a notebook and print its outputs.

Used by ``make demo`` to execute the quickstart without a browser: every code cell's text outputs (streams,
results, the text form of the widgets, one-line errors) are printed in order; the exit status is 1 when a
cell fails that is not tagged ``raises-exception``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synapse_nb.notebook.headless", description=__doc__)
    parser.add_argument("notebook", type=Path)
    parser.add_argument("--workdir", type=Path, default=None, help="where to run it (default: next to it)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    args = parser.parse_args(argv)
    try:
        import nbformat
        from nbclient import NotebookClient
        from nbclient.exceptions import CellExecutionError
    except ImportError:
        print("error: nbclient is needed: pip install nbclient nbformat", file=sys.stderr)
        return 2
    source = args.notebook
    workdir = args.workdir or source.parent
    workdir.mkdir(parents=True, exist_ok=True)
    if workdir.resolve() != source.parent.resolve():
        shutil.copy(source, workdir / source.name)
    book = nbformat.read(workdir / source.name, as_version=4)
    client = NotebookClient(
        book, timeout=args.timeout, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    status = 0
    try:
        client.execute()
    except CellExecutionError as exc:
        print(f"error: a cell of {source.name} failed:\n{exc}", file=sys.stderr)
        status = 1
    for number, cell in enumerate(book.cells, start=1):
        if cell.cell_type != "code":
            continue
        print(f"--- [{number}] {cell.source.splitlines()[0] if cell.source else ''}")
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                print(output.text.rstrip())
            elif output.output_type == "error":
                print("\n".join(output.traceback))
            else:
                text = output.get("data", {}).get("text/plain")
                if text:
                    print(text)
    nbformat.write(book, workdir / source.name)
    return status


if __name__ == "__main__":
    sys.exit(main())
