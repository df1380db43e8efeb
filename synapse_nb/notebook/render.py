"""How synapse errors look in a notebook: one ``error:`` line (no traceback), with control characters escaped.

IPython calls ``_render_traceback_`` of :class:`SynapseCellError` for errors raised by the magics, and the
custom exception handler installed by ``%load_ext synapse_nb`` does the same for errors raised by API calls in
cells (``plugin.run(...)``). ``%synapse --debug`` (or ``%config SynapseMagics.debug = True``) shows the full
traceback instead.
"""

from __future__ import annotations

from typing import Any

from ..errors import InvalidError, SynapseError
from ..textsafe import escape_terminal

__all__ = ["SynapseCellError", "custom_exception_handler", "render_error"]


def render_error(error: SynapseError) -> list[str]:
    """One line; validation problems (and notes such as "the old version is still active") add up to five more."""
    lines = [f"error: {escape_terminal(str(error))} [{error.code}, exit {error.exit_code}]"]
    if isinstance(error, InvalidError) or error.details:
        lines.extend(f"  {escape_terminal(str(d))}" for d in error.details[:5])
    return lines


class SynapseCellError(Exception):
    """A synapse error as a notebook shows it: one ``error:`` line (IPython calls ``_render_traceback_``)."""

    def __init__(self, error: SynapseError) -> None:
        super().__init__(str(error))
        self.error = error

    def _render_traceback_(self) -> list[str]:
        return render_error(self.error)


def custom_exception_handler(debug: Any) -> Any:
    """For synapse errors raised by API calls in cells: one line unless ``debug()`` says otherwise."""

    def handler(shell: Any, etype: type, value: BaseException, tb: Any, tb_offset: int | None = None) -> list[str]:
        if debug() or not isinstance(value, SynapseError):
            stb: list[str] = shell.InteractiveTB.structured_traceback(etype, value, tb, tb_offset=tb_offset)
        else:
            stb = render_error(value)
        shell._showtraceback(etype, value, stb)  # IPython does not show what a custom handler returns
        return stb

    return handler
