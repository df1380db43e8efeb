"""``synapse-cli kernel install [--user] [--name NAME] [--prefix DIR]``: a "Python 3 (Synapse)" kernelspec.

The kernel is this interpreter's ipykernel with the synapse_nb extension preloaded, so notebooks can use
``%%synapse_plugin`` without ``%load_ext synapse_nb``. It is preloaded through
:mod:`synapse_nb.notebook.preload`, which loads the extension just before the first cell runs rather than
while the kernel starts: the kernel answers its first request as fast as a plain ipykernel does, which keeps
"Restart Kernel and Run All" right after opening a notebook out of jupyter_server's start-up race.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import SynapseError, UsageError
from .output import Output

GROUP_HELP = "Jupyter kernels with synapse_nb preloaded"


def kernel_spec(python: str = sys.executable, display_name: str = "Python 3 (Synapse)") -> dict[str, Any]:
    return {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}", "--ext=synapse_nb.notebook.preload"],
        "display_name": display_name,
        "language": "python",
        "metadata": {"debugger": True},
    }


def register(subparsers: dict[str, Any], groups: Any) -> None:
    p = subparsers["kernel"].add_parser(
        "install",
        help="install the 'Python 3 (Synapse)' Jupyter kernel",
        description="Install a kernelspec that runs this interpreter with the synapse_nb extension loaded.",
    )
    p.add_argument("--user", action="store_true", help="install for the current user (default: this environment)")
    p.add_argument("--name", default="synapse", help="kernelspec name (default: synapse)")
    p.add_argument("--display-name", default="Python 3 (Synapse)", help="name shown in Jupyter")
    p.add_argument("--prefix", help="install under this prefix (default: sys.prefix unless --user)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, out: Output) -> int:
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError as exc:
        raise UsageError("jupyter_client is missing: pip install 'synapse-nb' installs it with ipykernel") from exc
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / args.name
        folder.mkdir()
        (folder / "kernel.json").write_text(json.dumps(kernel_spec(display_name=args.display_name), indent=2))
        prefix = None if args.user else (args.prefix or sys.prefix)
        try:
            dest = KernelSpecManager().install_kernel_spec(
                str(folder), kernel_name=args.name, user=args.user, prefix=prefix
            )
        except OSError as exc:
            raise SynapseError(f"cannot install the kernelspec: {exc}") from exc
    out.info(f"installed kernel {args.display_name!r} ({args.name}) in {dest}")
    return out.ok({"name": args.name, "path": dest, "display_name": args.display_name})
