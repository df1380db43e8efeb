"""ipywidgets views of plugins: lifecycle, schemas, inputs and outputs, benchmark batches.

Each widget is built from ipywidgets 8 built-ins and also renders without a widget frontend: its
``_repr_mimebundle_`` adds ``text/plain``, ``text/html`` and ``application/json`` to the widget view, so a
notebook reads well in nbviewer, in CI logs and anywhere widgets do not run.
"""

from __future__ import annotations

from .bench import BenchmarkWidget
from .iodebug import IODebugger
from .lifecycle import LifecycleWidget
from .schema import SchemaWidget

__all__ = ["BenchmarkWidget", "IODebugger", "LifecycleWidget", "SchemaWidget"]
