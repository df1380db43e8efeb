"""The "Python 3 (Synapse)" kernel: it starts as light as a plain ipykernel and has the magics from the first cell."""

from __future__ import annotations

import sys
from pathlib import Path

from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager

from synapse_nb.cli.kernel import kernel_spec


def run(client: object, code: str, **kwargs: object) -> dict[str, object]:
    reply = client.execute_interactive(code, timeout=120, **kwargs)  # type: ignore[attr-defined]
    return dict(reply["content"])


def test_the_kernelspec_preloads_the_extension_lazily() -> None:
    argv = kernel_spec(python="/usr/bin/python3")["argv"]
    assert argv[:3] == ["/usr/bin/python3", "-m", "ipykernel_launcher"]
    assert argv[-1] == "--ext=synapse_nb.notebook.preload"


def test_the_kernel_starts_without_the_magics_and_has_them_for_the_first_cell(tmp_path: Path) -> None:
    spec = kernel_spec(python=sys.executable)
    manager = KernelManager()
    manager._kernel_spec = KernelSpec(**spec)  # the exact argv `synapse-cli kernel install` writes
    manager.start_kernel(cwd=str(tmp_path))
    client = manager.client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        probe = "import sys; loaded = 'synapse_nb.notebook.magics' in sys.modules"
        # silent requests run no pre_run_cell hook: this is the kernel as it started
        reply = run(client, probe, silent=True, user_expressions={"loaded": "loaded"})
        assert reply["user_expressions"]["loaded"]["data"]["text/plain"] == "False"
        outputs: list[str] = []
        reply = run(client, "%synapse --debug off", output_hook=lambda m: outputs.append(str(m["content"])))
        assert reply["status"] == "ok"
        assert "full tracebacks off" in "".join(outputs)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
