"""ipywidgets views of plugins: lifecycle, schemas, inputs and outputs, benchmark batches.

Each widget is built from ipywidgets 8 built-ins and also renders without a widget frontend: its
``_repr_mimebundle_`` adds ``text/plain``, ``text/html``, ``application/json`` and
``application/vnd.synapse.widget+json`` to the widget view, so a notebook reads well in nbviewer, in CI logs,
anywhere widgets do not run, and in JupyterLab after it is closed and reopened (the synapse labextension
renders that last type). :mod:`.frames` (imported on use: it needs pandas) makes the DataFrames the magics
return readable.
"""

from __future__ import annotations

from .base import MIME
from .bench import BenchmarkWidget
from .iodebug import IODebugger
from .lifecycle import LifecycleWidget
from .schema import SchemaWidget

__all__ = ["MIME", "BenchmarkWidget", "IODebugger", "LifecycleWidget", "SchemaWidget"]
