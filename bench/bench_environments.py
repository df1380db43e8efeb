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
import shutil
import statistics
import time
import zipfile
from importlib import metadata
from pathlib import Path
from typing import Any

from synapse_nb.config import Config, load_config
from synapse_nb.environments import lookup_environment, resolve_environment
from synapse_nb.plugin import load
from synapse_nb.requirements import parse_requirements
from synapse_nb.signing import sign_folder

from .bench_sandbox import PAYLOAD, floor_start, make_noop
from .common import Row, cold_start, scratch_home

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


def _copy_without_bytecode(site: Path, dest: Path) -> Path:
    shutil.copytree(site, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"), symlinks=True)
    return dest


def run(quick: bool = False) -> list[Row]:
    with scratch_home("bench_environments", jail=True) as home:
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
            cold_start(folder, PAYLOAD)  # warm imports and the page cache

        rounds = 7 if quick else 21
        times: dict[str, list[float]] = {"noop": [], "kernel": [], "built": [], "numpy": [], "floor": [], "nopyc": []}
        stripped = _copy_without_bytecode(numpy_env.site_dirs[0], home / "numpy-no-bytecode")
        nopyc_layout = dataclasses.replace(probe.spec.layout, site_dirs=(stripped,))
        import_numpy = "import numpy"
        for _ in range(rounds):  # interleaved, so that machine noise hits every case alike
            times["noop"].append(cold_start(noop, PAYLOAD))
            times["kernel"].append(cold_start(kernel, PAYLOAD))
            times["built"].append(cold_start(built, PAYLOAD))
            times["numpy"].append(cold_start(numpy_plugin, PAYLOAD, no_reuse))
            times["floor"].append(floor_start(probe, import_numpy))
            times["nopyc"].append(floor_start(probe, import_numpy, layout=nopyc_layout))
        med: dict[str, Any] = {k: statistics.median(v) for k, v in times.items()}
        kernel_reqs = parse_requirements((kernel / "requirements.txt").read_text())
        config = load_config()
        lookups = []
        for _ in range(200):
            t0 = time.perf_counter()
            lookup_environment(kernel_reqs, config=config, host=probe.host)
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
