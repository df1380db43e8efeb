"""Registry benchmarks: pack + install against zip + download + unzip, search and index fetch over 10,000 plugins.

1. ``plugin pack`` + ``plugin install`` of a 10 MiB plugin (5 MiB of JSON-like text in 200 files, 5 MiB of
   random "weights" in 20 files, plus the template's files) from a registry on loopback, against the floor of
   ``zip -r`` + a raw HTTP GET of the same archive bytes from the same server + ``unzip`` (target <= 2x). Pack
   verifies the signature and builds the reproducible zip; install resolves on the cached index, downloads,
   checks the digest, verifies the signature in memory and extracts.
2. ``plugin search`` over a 10,000-plugin index once cached (the operations call the CLI makes), against a
   50 ms budget (target <= 1.0x of it).
3. First fetch of that index (GET, signature and chain, payload checks, rollback state, caches written)
   against a raw HTTP GET of the same bytes + ``json.loads`` (target <= 2x).

Baseline and measured runs alternate in the same loop; medians of the rounds are compared and the spread
(min..max) is printed on stderr.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from synapse_nb.registry import operations
from synapse_nb.registry.archive import pack
from synapse_nb.registry.client import RegistryClient
from synapse_nb.registry.installed import uninstall
from synapse_nb.registry.server import RegistryServer, create_app
from synapse_nb.registry.settings import get_registry, registry_dir
from synapse_nb.registry.store import RegistryStore
from synapse_nb.registry.tokens import AuthSettings
from synapse_nb.scaffold import create_plugin
from synapse_nb.signing import add_root, ensure_developer_key, sign_folder

from .common import Row, median, scratch_home

PLUGINS = 10_000
SEARCH_BUDGET_MS = 50.0


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return (time.perf_counter() - start) * 1000


def _make_plugin(root: Path) -> Path:
    folder = create_plugin("bench-plugin", template="python", directory=root / "bench-plugin")
    rng = random.Random(15)
    words = ["alpha", "beta", "gamma", "delta", "score", "label", "text", "value", "true", "false"]
    for n in range(200):  # 5 MiB of compressible JSON lines
        lines = [json.dumps({"id": n * 1000 + i, "w": rng.choice(words), "x": rng.random()}) for i in range(450)]
        target = root / "bench-plugin" / "data" / f"rows-{n:03d}.jsonl"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text("\n".join(lines)[: 26 << 10])
    for n in range(20):  # 5 MiB of incompressible weights
        (folder / "data" / f"weights-{n:02d}.bin").write_bytes(os.urandom(256 << 10))
    sign_folder(folder)
    return folder


def _big_index(store: RegistryStore) -> None:
    rng = random.Random(7)
    categories = ["nlp", "vision", "data", "ml", "connector", "events", "audio", "search"]
    plugins = {}
    for n in range(PLUGINS):
        sha = f"{rng.getrandbits(256):064x}"
        versions = {
            f"1.{minor}.0": {"sha256": sha, "size": 4096 + n, "platforms": ["any"], "yanked": False}
            for minor in range(2)
        }
        plugins[f"plugin-{n:05d}"] = {
            "category": categories[n % len(categories)],
            "tags": ["bench", categories[n % len(categories)]],
            "description": f"benchmark plugin number {n} that does {categories[n % len(categories)]} things",
            "versions": versions,
        }
    with store.locked():
        store._write_index({"index_version": 0, "plugins": plugins})


def _spread(name: str, values: list[float]) -> None:
    print(f"  {name}: median {median(values):.2f} ms (min {min(values):.2f}, max {max(values):.2f})", file=sys.stderr)


def run(quick: bool) -> list[Row]:
    rounds = 3 if quick else 7
    for tool in ("zip", "unzip"):
        if shutil.which(tool) is None:
            raise SystemExit(f"bench_registry needs `{tool}` (Debian package {tool}; make bench installs it)")
    with scratch_home("bench_registry") as root:
        folder = _make_plugin(root)
        store = RegistryStore(root / "registry")
        store.add_trusted_root(ensure_developer_key().ca_cert_path)
        server = RegistryServer(create_app(store, AuthSettings())).start()
        try:
            add_root(store.identity.ca)
            (Path(os.environ["SYNAPSE_HOME"]) / "config").write_text(
                f"registries:\n  - name: bench\n    endpoint: {server.url}\n"
            )
            archive = pack(folder, root / "dist").path
            data = archive.read_bytes()
            store.publish(data, "bench-plugin", "0.1.0", "bench")
            blob_url = f"{server.url}/blobs/sha256/{__import__('hashlib').sha256(data).hexdigest()}"
            rows = _pack_install(root, folder, blob_url, rounds)
            big = RegistryStore(root / "big")
            _big_index(big)
            big_server = RegistryServer(create_app(big, AuthSettings())).start()
            try:
                add_root(big.identity.ca)
                rows += _index_rows(big_server.url, rounds)
            finally:
                big_server.stop()
        finally:
            server.stop()
    return rows


def _pack_install(root: Path, folder: Path, blob_url: str, rounds: int) -> list[Row]:
    work = root / "work"

    def ours() -> float:
        shutil.rmtree(work, ignore_errors=True)
        start = time.perf_counter()
        pack(folder, work)
        operations.install("bench-plugin@0.1.0", registry="bench")
        elapsed = (time.perf_counter() - start) * 1000
        uninstall("bench-plugin")
        return elapsed

    def floor() -> float:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        start = time.perf_counter()
        subprocess.run(["zip", "-q", "-r", str(work / "p.zip"), "."], cwd=folder, check=True)
        body = httpx.get(blob_url).content
        (work / "download.zip").write_bytes(body)
        subprocess.run(["unzip", "-q", "-o", str(work / "p.zip"), "-d", str(work / "out")], check=True)
        return (time.perf_counter() - start) * 1000

    ours()
    floor()
    measured, baseline = [], []
    for _ in range(rounds):
        measured.append(ours())
        baseline.append(floor())
    _spread("pack + install", measured)
    _spread("zip + GET + unzip", baseline)
    return [
        Row(
            "registry",
            "pack + install, 10 MiB plugin from loopback",
            median(measured),
            median(baseline),
            "zip + HTTP GET + unzip",
            2.0,
        ),
    ]


def _index_rows(url: str, rounds: int) -> list[Row]:
    (Path(os.environ["SYNAPSE_HOME"]) / "config").write_text(f"registries:\n  - name: big\n    endpoint: {url}\n")
    registry = get_registry("big")

    def first_fetch() -> float:
        shutil.rmtree(registry_dir("big"), ignore_errors=True)
        start = time.perf_counter()
        with RegistryClient(registry) as client:
            client.fetch_index()
        return (time.perf_counter() - start) * 1000

    def raw() -> float:
        start = time.perf_counter()
        with httpx.Client() as client:
            json.loads(client.get(f"{url}/index.json").content)
        return (time.perf_counter() - start) * 1000

    def search() -> float:
        return _timed(lambda: operations.search("number 42", registry="big"))

    first_fetch()
    raw()
    fetch_ms, raw_ms, search_ms = [], [], []
    for _ in range(rounds):
        fetch_ms.append(first_fetch())
        raw_ms.append(raw())
    for _ in range(rounds * 3):
        search_ms.append(search())
    hits = operations.search("number 42", registry="big")
    if len(hits) != 111:  # 42, 420-429, 4200-4299
        raise SystemExit(f"search found {len(hits)} plugins, expected 111")
    _spread("index first fetch", fetch_ms)
    _spread("raw GET + json.loads", raw_ms)
    _spread("search (cached)", search_ms)
    what = f"{PLUGINS:,}-plugin index"
    return [
        Row("registry", f"plugin search, {what}, cached", median(search_ms), SEARCH_BUDGET_MS, "50 ms budget", 1.0),
        Row("registry", f"first fetch of the {what}", median(fetch_ms), median(raw_ms), "GET + json.loads", 2.0),
    ]
