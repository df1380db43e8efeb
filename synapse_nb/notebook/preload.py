"""What the "Python 3 (Synapse)" kernel loads at start: a hook that loads synapse_nb before the first cell runs.

The kernelspec used to pass ``--ext=synapse_nb``, which imports the magics and through them the manager, the
sandbox, signing (cryptography) and environments while the kernel starts, before it answers its first
``kernel_info_request``. That made its start ~0.3 s slower than a plain ipykernel (seconds on a busy machine),
and widened the window in which "Restart Kernel and Run All", pressed right after a notebook opens, meets a
kernel whose websocket is still being set up: jupyter_server then reads messages of the new websocket protocol
with the legacy decoder (``struct.error: unpack requires a buffer of 402653184 bytes``), drops them, and the
notebook waits for replies that never come.

``--ext=synapse_nb.notebook.preload`` imports nothing heavy: it registers a ``pre_run_cell`` hook that loads
the real extension (exactly what ``%load_ext synapse_nb`` does) just before the first cell executes, so the
kernel starts as fast as the plain one and every cell still finds ``%%synapse_plugin`` and ``%synapse``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension"]


def load_ipython_extension(ipython: Any) -> None:
    """Load ``synapse_nb`` before the first cell runs (not while the kernel starts)."""

    def load_before_first_cell(*_info: Any) -> None:
        ipython.events.unregister("pre_run_cell", load_before_first_cell)
        ipython.extension_manager.load_extension("synapse_nb")

    ipython.events.register("pre_run_cell", load_before_first_cell)
