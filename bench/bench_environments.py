"""Dependency environment benchmarks: what resolving an environment adds to activation, and bytecode paying off.

Each row compares medians of interleaved runs taken in this same run:

- kernel fast path: ``load(path).run(payload)`` of a plugin whose requirements (PyYAML, packaging) the kernel
  satisfies, minus the same for the no-op plugin with an empty requirements.txt (the sandbox cold start);
  target: at most 20 ms more (the row shows the difference against 20 ms);
- cache hit: the same for a plugin with its own built environment (built once before timing, from a local
  wheelhouse), against the kernel fast path case; target <= 1.2x;
- numpy: the cold start of a plugin whose handler imports numpy from a built environment (numpy at the
  kernel's version, fetched from pip's configured index into the wheel cache and installed in the jail),
  against ``python -c "import numpy"`` run inside the same jail with the same files mounted; target <= 1.3x;
- informational: that floor with an environment copied without its ``__pycache__`` (what precompiling saves).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import statistics
import tempfile
import time
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from synapse_nb.config import Config, load_config
from synapse_nb.environments import lookup_environment, resolve_environment
from synapse_nb.plugin import Plugin, load
from synapse_nb.requirements import parse_requirements
from synapse_nb.sandbox.host import detect_host
from synapse_nb.sandbox.jail import build_jail, guest_paths
from synapse_nb.sandbox.launch import Launch
from synapse_nb.signing import sign_folder

from .bench_sandbox import PAYLOAD, make_noop
from .common import Row

TINY = "tinypkg"


def _wheel(dest: Path, name: str, version: str) -> None:
    """A minimal valid wheel holding ``{name}.py`` (RECORD without hashes is accepted for a pure module)."""
    info = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": f"VERSION = {version!r}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    files[f"{info}/RECORD"] = "".join(f"{p},,\n" for p in files) + f"{info}/RECORD,,\n"
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest / f"{name}-{version}-py3-none-any.whl", "w") as zf:
        for path, body in files.items():
            zf.writestr(path, body)


def _plugin(root: Path, name: str, requirements: str, *, handler_import: str = "") -> Path:
    """The no-op plugin under another name, with ``requirements`` and an import at the top of handler.py."""
    folder = make_noop(root / name)
    (folder / "requirements.txt").write_text(requirements)
    handler = (folder / "handler.py").read_text()
    (folder / "handler.py").write_text(handler_import + handler)
    manifest = (folder / "manifest.yaml").read_text().replace("name: noop", f"name: {name}")
    (folder / "manifest.yaml").write_text(manifest)
    sign_folder(folder)
    return folder


def jail_floor(plugin: Plugin, code: str, *, site: Path | None = None) -> float:
    """ms until ``code`` has run inside the plugin's own jail (same config and mounts; ``site`` replaces the
    environment), started from a prepared launcher as workers are; ``code`` may use ``W``, the pipe to write to.
    """
    host = plugin.host
    layout = plugin.spec.layout
    if site is not None:
        layout = dataclasses.replace(layout, site_dirs=(site,))
    launch = Launch(host, use_cgroups=host.cgroups.available)
    if launch.cgroup is not None:
        launch.cgroup.limit(memory_bytes=plugin.policy.memory_mb << 20, pids_max=plugin.policy.pids_max)
    request_fd, reply_fd, log_fd = launch.child_fds
    config = build_jail(plugin.policy, layout, host, request_fd=request_fd, reply_fd=reply_fd, log_fd=log_fd)
    sites = "".join(f"site.addsitedir({d!r}); " for d in guest_paths(layout)[0])  # where the jail mounts them
    program = f"import os, site; W = {reply_fd}; {sites}{code}"
    fields = [
        (key, [("path", str(host.python)), *[("arg", a) for a in ("-I", "-S", "-B", "-c", program)]])
        if key == "exec_bin"
        else (key, value)
        for key, value in config.fields
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".cfg", delete=False) as fh:
        fh.write(dataclasses.replace(config, fields=fields).to_text())
    time.sleep(0.05)  # let the launcher finish joining its cgroups, as a background-prepared one has
    t0 = time.perf_counter()
    launch.go(Path(fh.name))
    got = os.read(launch.rep_r, 1)
    elapsed = (time.perf_counter() - t0) * 1000
    if launch.proc is not None:
        launch.proc.wait()
    os.unlink(fh.name)
    launch.discard()
    if got != b"x":
        raise SystemExit(f"the floor program did not run in the jail: {code!r}")
    return elapsed


def cold_start(folder: Path, config: Config | None = None) -> float:
    t0 = time.perf_counter()
    plugin = load(folder, config=config)
    plugin.run(PAYLOAD)
    elapsed = (time.perf_counter() - t0) * 1000
    plugin.teardown()
    return elapsed


def _copy_without_bytecode(site: Path, dest: Path) -> Path:
    shutil.copytree(site, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), symlinks=True)
    return dest


def run(quick: bool = False) -> list[Row]:
    host = detect_host()
    if host.nsjail is None or not host.is_root:
        raise SystemExit("bench_environments needs nsjail and root")
    home = Path(tempfile.mkdtemp(prefix="synapse-bench-env-"))
    os.environ["SYNAPSE_HOME"] = str(home / "home")
    try:
        noop = make_noop(home)
        kernel = _plugin(home, "kernelreq", "PyYAML>=5\npackaging>=20\n")
        wheelhouse = home / "wheelhouse"
        _wheel(wheelhouse, TINY, "2.0")
        built = _plugin(home, "builtreq", f"{TINY}==2.0\n")
        numpy_version = metadata.version("numpy")
        # The kernel has numpy too: this configuration makes the numpy plugin use a built environment.
        no_reuse = Config(data={"environments": {"reuse_kernel": False}})
        numpy_env = resolve_environment(
            parse_requirements(f"numpy=={numpy_version}\n"), plugin="bench", config=no_reuse
        )
        numpy_plugin = _plugin(home, "numpyreq", f"numpy=={numpy_version}\n", handler_import="import numpy\n")

        first = load(built, wheelhouse=wheelhouse)  # builds the environment: not timed
        first.run(PAYLOAD)
        if first.environment is None or first.environment.kind != "built":
            raise SystemExit("the cache-hit plugin did not get a built environment")
        first.teardown()
        probe = load(numpy_plugin, config=no_reuse)
        probe.run(PAYLOAD)
        if probe.environment is None or probe.environment.key != numpy_env.key:
            raise SystemExit("the numpy plugin did not get the built numpy environment")
        probe.teardown()  # its spec, policy and host still describe the jail for the floor
        for folder in (noop, kernel):
            cold_start(folder)  # warm imports and the page cache

        rounds = 7 if quick else 21
        times: dict[str, list[float]] = {"noop": [], "kernel": [], "built": [], "numpy": [], "floor": [], "nopyc": []}
        stripped = _copy_without_bytecode(numpy_env.site_dirs[0], home / "numpy-no-bytecode")
        import_numpy = "import numpy; os.write(W, b'x')"
        for _ in range(rounds):  # interleaved, so that machine noise hits every case alike
            times["noop"].append(cold_start(noop))
            times["kernel"].append(cold_start(kernel))
            times["built"].append(cold_start(built))
            times["numpy"].append(cold_start(numpy_plugin, no_reuse))
            times["floor"].append(jail_floor(probe, import_numpy))
            times["nopyc"].append(jail_floor(probe, import_numpy, site=stripped))
        med: dict[str, Any] = {k: statistics.median(v) for k, v in times.items()}
        kernel_reqs = parse_requirements((kernel / "requirements.txt").read_text())
        config = load_config()
        lookups = []
        for _ in range(200):
            t0 = time.perf_counter()
            lookup_environment(kernel_reqs, config=config, host=host)
            lookups.append((time.perf_counter() - t0) * 1000)
        return [
            Row(
                "environments",
                "kernel fast path: activation over sandbox cold start",
                med["kernel"] - med["noop"],
                20.0,
                "target +20 ms",
                1.0,
            ),
            Row(
                "environments",
                "kernel check (lookup_environment) (info)",
                statistics.median(lookups),
                med["noop"],
                "sandbox cold start",
                None,
            ),
            Row(
                "environments",
                "cold start, no requirements (info)",
                med["noop"],
                med["kernel"],
                "kernel fast path",
                None,
            ),
            Row(
                "environments",
                "built environment, cache hit: cold start",
                med["built"],
                med["kernel"],
                "kernel fast path cold start",
                1.2,
            ),
            Row(
                "environments",
                f"numpy {numpy_version} plugin cold start (built env)",
                med["numpy"],
                med["floor"],
                "same jail, python -c 'import numpy'",
                1.3,
            ),
            Row(
                "environments",
                "same jail, import numpy without .pyc (info)",
                med["nopyc"],
                med["floor"],
                "with precompiled .pyc",
                None,
            ),
        ]
    finally:
        shutil.rmtree(home, ignore_errors=True)
