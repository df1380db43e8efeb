"""What the plugin panel's buttons do: validate, sign, verify, test and run one plugin folder.

Every action answers in the shape of the CLI's ``--json`` output (``{"ok": true, "result": ..., "meta": ...}``
or ``{"ok": false, "error": {"code", "exit_code", "message", ...}}``), so the one-line error the panel shows
is the CLI's. The trust boundary is the CLI's too:

- ``validate`` is static (handler.py is compiled, never imported);
- ``test`` runs ``synapse-cli plugin test PATH --json`` in a subprocess: the plugin's tests run where the CLI
  runs them (inside the jail), never in the server process;
- ``run`` activates the plugin through a :class:`~synapse_nb.manager.PluginManager` of the server: a warm
  worker in the sandbox, host-side validation of the payload and the result;
- ``sign`` is the only action that writes under the server root (``synapse.sig.json``).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

from ..errors import EXIT_CODE_NAMES, SynapseError

__all__ = ["Runner", "cli_json", "run_test", "sign", "validate", "verify"]


def failure(error: SynapseError, **meta: Any) -> dict[str, Any]:
    """The CLI's ``--json`` failure object for ``error``."""
    return {"ok": False, "error": error.to_json(), "meta": meta}


def success(result: Any, **meta: Any) -> dict[str, Any]:
    return {"ok": True, "result": result, "meta": meta}


def validate(folder: Path, shown: str) -> dict[str, Any]:
    """Static validation of the whole folder (never imports handler.py)."""
    from ..anatomy import validate_folder

    try:
        checked = validate_folder(folder, display=shown)
    except SynapseError as exc:
        return failure(exc)
    result = checked.to_json()
    result["path"] = shown
    return success(result)


def sign(folder: Path) -> dict[str, Any]:
    """Sign with the developer key (created on first use): writes ``synapse.sig.json`` into the folder."""
    from ..signing import sign_folder

    try:
        signed = sign_folder(folder)
    except SynapseError as exc:
        return failure(exc)
    return success(
        {
            "plugin": signed.plugin,
            "version": signed.version,
            "signer": signed.signer_subject,
            "fingerprint": signed.signer_fingerprint,
            "files": signed.file_count,
            "digest": signed.digest,
        }
    )


def verify(folder: Path) -> dict[str, Any]:
    from ..signing import verify_folder

    try:
        verification = verify_folder(folder)
    except SynapseError as exc:
        return failure(exc)
    return success(verification.to_json())


async def cli_json(command: list[str], *, timeout_s: float, what: str, timeout_code: str = "timeout") -> dict[str, Any]:
    """``synapse-cli COMMAND... --json`` in a subprocess: its JSON object, or a one-line failure in that shape.

    ``what`` names the command in messages; ``timeout_code`` is the error code when it takes over ``timeout_s``.
    """
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "synapse_nb", *command,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},  # never leave bytecode in a plugin folder
    )  # fmt: skip
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        code = 5 if timeout_code == "timeout" else 9
        message = f"{what} took over {timeout_s:g} s; stopped"
        return {"ok": False, "error": {"code": timeout_code, "exit_code": code, "message": message}}
    lines = [line for line in out.decode("utf-8", "replace").splitlines() if line.startswith("{")]
    code = proc.returncode if proc.returncode is not None else 1
    try:
        report: dict[str, Any] = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [f"exit status {code}"]
        name = EXIT_CODE_NAMES.get(code, "internal")
        return {"ok": False, "error": {"code": name, "exit_code": code, "message": f"{what}: {tail[0]}"}}
    report.setdefault("meta", {})["exit_code"] = code
    return report


async def run_test(folder: Path, *, timeout_s: float) -> dict[str, Any]:
    """``synapse-cli plugin test PATH --json`` in a subprocess (the plugin's tests run jailed, not here)."""
    return await cli_json(["plugin", "test", str(folder), "--json"], timeout_s=timeout_s, what="plugin test")


class Runner:
    """The server's own plugin manager: warm sandboxed workers for "Try it".

    ``PluginManager.load`` returns the running handle while the folder's files are unchanged and replaces the
    worker when they changed, so Try it always runs what is on disk.
    """

    def __init__(self) -> None:
        self._manager: Any = None
        self._lock = threading.Lock()

    @property
    def manager(self) -> Any:
        if self._manager is None:
            from ..manager import PluginManager

            self._manager = PluginManager()
        return self._manager

    def run(self, folder: Path, payload: Any, endpoint: str | None) -> dict[str, Any]:
        """One sandboxed call: activate (or reuse) the folder's worker, validate, run, validate the result."""
        try:
            with self._lock:
                name = self.manager.load(folder).name
            invocation = self.manager.invoke(name, payload, endpoint=endpoint)
        except SynapseError as exc:
            return failure(exc, plugin=exc.plugin or folder.name)
        meta = {k: v for k, v in invocation.meta.items() if k not in ("stdout", "stderr")}
        meta["stdout"] = str(invocation.meta.get("stdout", ""))[-4000:]
        meta["stderr"] = str(invocation.meta.get("stderr", ""))[-4000:]
        return success(invocation.result, **meta)

    def close(self) -> None:
        if self._manager is not None:
            self._manager.teardown_all()
