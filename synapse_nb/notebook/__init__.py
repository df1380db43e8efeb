"""The notebook layer: ``%load_ext synapse_nb`` registers the magics; widgets show plugins.

Everything here imports IPython and ipywidgets, so nothing in the core imports it: ``load_ipython_extension``
in ``synapse_nb/__init__.py`` imports this package only when IPython asks.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_ipython_extension", "unload_ipython_extension"]

_loaded: dict[int, Any] = {}


def load_ipython_extension(ipython: Any) -> None:
    """Register ``%%synapse_plugin`` and ``%synapse`` and the one-line rendering of synapse errors."""
    from ..errors import SynapseError
    from .magics import SynapseMagics, complete
    from .render import custom_exception_handler

    if id(ipython) in _loaded:
        return  # already loaded (e.g. preloaded by the "Python 3 (Synapse)" kernel): nothing to say
    magics = SynapseMagics(ipython)
    ipython.register_magics(magics)
    ipython.set_custom_exc((SynapseError,), custom_exception_handler(lambda: magics.debug))
    ipython.set_hook("complete_command", lambda _shell, event: complete(magics, event.line), str_key="%synapse")
    _loaded[id(ipython)] = magics


def unload_ipython_extension(ipython: Any) -> None:
    """Tear every plugin of this shell down (saving state) and forget the magics."""
    magics = _loaded.pop(id(ipython), None)
    if magics is not None:
        from .serve_view import stop_serving

        stop_serving(magics.session)  # stop accepting before the plugins go away
        magics.session.manager.teardown_all()
        ipython.set_custom_exc((), None)
