"""Running a plugin in the calling process: for tests of templates and for interactive debugging.

Clearly *unsandboxed* (``isolation == "in-process"``): the handler shares the caller's memory, files and
network. It exists so that breakpoints and ``%debug`` work while prototyping; the host-side checks (JSON only,
input and output schemas, size caps) are the very ones the jailed runner applies, so results are identical.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from .anatomy import PluginFolder, validate_folder
from .errors import PluginFailed, SynapseError
from .payloads import check_result_json, encode_payload, validate_input, validate_output
from .runtime import HandlerHost, describe_exception
from .sdk import Context

__all__ = ["InProcessPlugin"]


class InProcessPlugin:
    """A plugin loaded into this process. ``run``/``run_batch`` apply every host-side check."""

    isolation = "in-process"

    def __init__(self, folder: str | Path, *, state: dict[str, Any] | None = None) -> None:
        checked: PluginFolder = validate_folder(folder, check_import=False)
        self.folder = checked
        self.manifest = checked.manifest
        self.path = checked.path.resolve()
        m = self.manifest
        secrets = {name: os.environ[name] for name in m.secrets if name in os.environ}
        context = Context(
            plugin=m.name,
            version=str(m.version),
            plugin_dir=self.path,
            isolation=self.isolation,
            secrets=secrets,
        )
        self._host = HandlerHost(self.path, context, entrypoint=m.execution.entrypoint)
        module = "synapse_plugin_" + m.name.replace("-", "_")
        t0 = time.perf_counter()
        self._guard(lambda: self._host.start(state, module_name=module))
        self.cold_start_ms = (time.perf_counter() - t0) * 1000
        self._stopped = False

    def _guard(self, fn: Any) -> Any:
        try:
            return fn()
        except SynapseError as exc:
            exc.plugin = exc.plugin or self.manifest.name
            raise
        except Exception as exc:
            info = describe_exception(exc, self.path)
            where = f" ({info['location']})" if info["location"] else ""
            raise PluginFailed(
                f"{info['type']}: {info['message']}{where}",
                plugin=self.manifest.name,
                exc_type=info["type"],
                location=info["location"],
                details=info["traceback"].splitlines()[-6:],
            ) from exc

    def _roundtrip(self, payload: Any) -> Any:
        return json.loads(encode_payload(payload, plugin=self.manifest.name))

    def run(self, payload: Any, *, endpoint: str | None = None) -> Any:
        """Validate ``payload``, execute, and return the validated result."""
        data = validate_input(self.folder.schemas, self._roundtrip(payload))
        result = self._guard(lambda: self._host.call(data, endpoint=endpoint, prevalidated=True))
        return validate_output(self.folder.schemas, json.loads(check_result_json(result, plugin=self.manifest.name)))

    def run_batch(self, items: list[Any], *, endpoint: str | None = None) -> list[Any]:
        """Validate every item, execute them as one batch, validate every result."""
        data = [validate_input(self.folder.schemas, self._roundtrip(item)) for item in items]
        results = self._guard(lambda: self._host.call_batch(data, endpoint=endpoint, prevalidated=True))
        decoded = json.loads(check_result_json(results, plugin=self.manifest.name))
        return [validate_output(self.folder.schemas, r) for r in decoded]

    @property
    def state(self) -> dict[str, Any]:
        return self._host.state()

    def teardown(self) -> dict[str, Any]:
        """Run the handler's teardown once; returns the final state."""
        if self._stopped:
            return {}
        self._stopped = True
        state: dict[str, Any] = self._guard(self._host.stop)
        return state

    def __enter__(self) -> InProcessPlugin:
        return self

    def __exit__(self, *exc: object) -> None:
        self.teardown()
