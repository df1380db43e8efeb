"""DataFrames the magics return, shown for reading: rounded numbers, no NaN, and no second copy of a widget.

``%synapse status`` and ``%synapse bench`` return pandas DataFrames (their contract), and IPython shows a
returned frame with pandas' own repr: every float digit and ``NaN`` for "no value". :func:`tidy` returns the
same frame as a :class:`TidyFrame`, a DataFrame whose notebook and text reprs round floats and leave missing
values blank (the data itself is untouched: ``frame["p50_ms"]`` keeps every digit).

A :class:`BenchmarkFrame` is what ``%synapse bench`` returns after displaying its widget: in the cell that
displayed the widget it shows nothing more (so an unassigned ``%synapse bench`` shows the benchmark once, not
the widget and then the raw table); shown again in a later cell, it shows the benchmark widget.
"""

from __future__ import annotations

from typing import ClassVar

import pandas as pd

from .base import number

__all__ = ["BenchmarkFrame", "TidyFrame", "tidy"]


class TidyFrame(pd.DataFrame):
    """A DataFrame whose reprs are rounded and NaN-free; operations on it give plain DataFrames."""

    _metadata: ClassVar[list[str]] = []

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def readable(self) -> pd.DataFrame:
        """A copy for display: floats rounded (``number``), missing values blank."""
        plain = pd.DataFrame(self).astype(object)
        for column in plain.columns:
            plain[column] = [
                "" if value is None or (isinstance(value, float) and value != value)
                else number(value) if isinstance(value, float) else value
                for value in plain[column]
            ]  # fmt: skip
        return plain

    def _repr_html_(self) -> str | None:
        return self.readable().to_html(index=False, border=0)

    def __repr__(self) -> str:
        return self.readable().to_string(index=False)


def tidy(frame: pd.DataFrame) -> TidyFrame:
    """``frame`` with reprs for reading (see :class:`TidyFrame`)."""
    out = TidyFrame(frame)
    out.attrs.update(frame.attrs)
    return out


class BenchmarkFrame(TidyFrame):
    """The benchmark DataFrame; its display is the benchmark widget, once per cell."""

    def _ipython_display_(self) -> None:
        from IPython import get_ipython
        from IPython.display import display

        from .bench import BenchmarkWidget

        shell = get_ipython()
        count = getattr(shell, "execution_count", None)
        if count is not None and self.attrs.get("synapse.shown_in") == count:
            return  # the magic displayed the widget in this very cell
        display(BenchmarkWidget(pd.DataFrame(self), title=str(self.attrs.get("synapse.title", ""))))


def shown(frame: pd.DataFrame, title: str) -> BenchmarkFrame:
    """``frame`` as returned after its widget was displayed in the current cell."""
    from IPython import get_ipython

    out = BenchmarkFrame(frame)
    out.attrs.update(frame.attrs)
    out.attrs["synapse.title"] = title
    out.attrs["synapse.shown_in"] = getattr(get_ipython(), "execution_count", None)
    return out
