"""JupyterLab side: sidebar listing, live badge, the server extension's start-up cost, the event log's cost per
call and the Synapse kernel's start, each against a baseline measured in the same run (or the issue's budget).

- sidebar: a fresh page of JupyterLab, the Synapse tab clicked, until 200 plugins are listed (and until all are
  checked), against the budget of 1 s; Jupyter's contents API listing the same folder is an informational row;
- badge: a plugin activated in a kernel (``synapse_nb.load``) until its sidebar badge reads ACTIVE, from the
  timestamp of the kernel's event, against the budget of 500 ms;
- start-up: ``jupyter lab`` until it answers, with and without ``synapse_nb.server``, interleaved; the
  difference against the budget of 100 ms (and the ratio as information);
- event log: a warm ``PluginManager.run`` with the event log on and off (same worker), interleaved;
- kernel: the "Python 3 (Synapse)" kernelspec until its first ``kernel_info`` reply, against the plain
  ipykernel (and, as information, the previous kernelspec that loaded the extension at start).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from .common import Row, median, scratch_home

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.lab_helpers: the JupyterLab and Chromium the browser tests use

SIDEBAR_BUDGET_MS = 1000.0
BADGE_BUDGET_MS = 500.0
START_BUDGET_MS = 100.0


def _lab(root: Path, home: Path, log: Path, **kwargs: Any) -> Any:
    from tests.lab_helpers import Lab

    return Lab(root, home=home, log=log, **kwargs)


def sidebar_and_badge(folder: Path, rounds: int) -> list[Row]:
    from playwright.sync_api import sync_playwright

    from synapse_nb import eventlog
    from synapse_nb.scaffold import create_plugin
    from synapse_nb.signing import sign_folder
    from tests.lab_helpers import launch_chromium, make_many, notebook

    root, home = folder / "root", Path(str(folder / "home"))
    root.mkdir()
    make_many(root / "many", 200)
    echo = create_plugin("echo", template="python", directory=root / "echo")
    sign_folder(echo)
    (root / "activate.ipynb").write_text(notebook(["import synapse_nb\nsynapse_nb.load('echo').run({'text': 'hi'})"]))
    listed, checked, files, badges = [], [], [], []
    with _lab(root, home, folder / "lab.log") as lab, sync_playwright() as playwright:
        for n in range(rounds):
            context = launch_chromium(playwright, folder / f"profile{n}")
            page = context.pages[0]
            page.goto(f"{lab.url}/lab?token={lab.token}&reset")
            page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)
            page.wait_for_timeout(1000)  # let the page settle: measure the sidebar, not JupyterLab's start
            t0 = time.perf_counter()
            count = page.evaluate(
                """async (token) => {
                    const r = await fetch('/api/contents/many?content=1', {headers: {Authorization: 'token ' + token}});
                    return (await r.json()).content.length;
                }""",
                lab.token,
            )
            files.append((time.perf_counter() - t0) * 1000)
            assert count == 200
            t0 = time.perf_counter()
            page.click('.lm-TabBar-tab[data-id="synapse-sidebar"]')
            page.wait_for_selector('.synapse-PluginList[data-count="201"]', timeout=60_000)
            listed.append((time.perf_counter() - t0) * 1000)
            page.wait_for_function(
                "() => !document.querySelector('.synapse-PluginRow[data-stage=\"CHECKING\"]')", timeout=60_000
            )
            checked.append((time.perf_counter() - t0) * 1000)
            page.evaluate(
                """() => { window.__active = null; new MutationObserver(() => {
                    const row = document.querySelector('.synapse-PluginRow[data-plugin="echo"]');
                    if (row && row.dataset.stage === 'ACTIVE' && window.__active === null) {
                        window.__active = Date.now();
                    }
                }).observe(document.body, {subtree: true, attributes: true, childList: true}); }"""
            )
            page.evaluate(
                "async () => { await window.jupyterapp.commands.execute('docmanager:open', {path: 'activate.ipynb'}); }"
            )
            page.wait_for_function("() => window.jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel")
            page.evaluate("async () => { await window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
            page.wait_for_function("() => window.__active !== null", timeout=60_000)
            seen = page.evaluate("() => window.__active")
            rows = eventlog.EventLog(home / "events.db").since(0, limit=1_000_000)
            active = [e for e in rows if e.plugin == "echo" and e.stage == "ACTIVE"][-1]
            badges.append(seen - active.ts * 1000)
            page.evaluate(
                "async () => { const w = window.jupyterapp.shell.currentWidget; await w.sessionContext.shutdown(); }"
            )
            context.close()
    return [
        Row("bench_lab", "sidebar lists 200 plugins after opening", median(listed), SIDEBAR_BUDGET_MS,
            "budget: 1 s", 1.0, spread=_spread(listed, SIDEBAR_BUDGET_MS)),
        Row("bench_lab", "sidebar: all 200 validated and verified, first opening (cold)", checked[0],
            SIDEBAR_BUDGET_MS, "budget: 1 s", None),
        Row("bench_lab", "sidebar: all validated and verified, median of openings", median(checked), median(files),
            "Jupyter's contents API listing the 200 folders", None),
        Row("bench_lab", "badge ACTIVE after a kernel's event", median(badges), BADGE_BUDGET_MS, "budget: 500 ms",
            1.0, spread=_spread(badges, BADGE_BUDGET_MS)),
    ]  # fmt: skip


def _spread(samples: list[float], baseline: float) -> tuple[float, float]:
    return min(samples) / baseline, max(samples) / baseline


def startup(folder: Path, rounds: int) -> list[Row]:
    root = folder / "start-root"
    root.mkdir()
    with_ext, without = [], []
    for _ in range(rounds):
        for synapse, samples in ((False, without), (True, with_ext)):  # interleaved
            lab = _lab(root, folder / "start-home", folder / "start.log", synapse=synapse)
            lab.start()
            samples.append(lab.started_in_s * 1000)
            if synapse:
                assert lab.get("synapse/api/status")  # it was really loaded
            lab.stop()
    delta = median(with_ext) - median(without)
    load_ms = median([_extension_load_ms() for _ in range(rounds)])
    deltas = sorted(w - o for w, o in zip(with_ext, without, strict=True))
    ratios = [w / o for w, o in zip(with_ext, without, strict=True)]
    return [
        Row("bench_lab", "server extension: added start-up (median difference)", max(delta, 0.0), START_BUDGET_MS,
            "budget: 100 ms", 1.0, spread=(max(deltas[0], 0.0) / START_BUDGET_MS, deltas[-1] / START_BUDGET_MS)),
        Row("bench_lab", "jupyter lab start, with synapse_nb.server", median(with_ext), median(without),
            "the same start without it", None, spread=(min(ratios), max(ratios))),
        Row("bench_lab", "server extension: import + load, measured in the process", load_ms, START_BUDGET_MS,
            "budget: 100 ms", 1.0),
    ]  # fmt: skip


LOAD_SCRIPT = """
import sys, time
from jupyter_server.serverapp import ServerApp
from tornado.web import Application
app = ServerApp(root_dir=sys.argv[1])
app.web_app = Application(base_url="/")
app.web_app.settings["base_url"] = "/"
t0 = time.perf_counter()
import synapse_nb.server as server
server._load_jupyter_server_extension(app)
print((time.perf_counter() - t0) * 1000)
"""


def _extension_load_ms() -> float:
    """What jupyter_server spends on synapse_nb.server: importing it and its load function (jupyter_server,
    tornado and traitlets are imported first: the server has them already)."""
    import subprocess

    prelude = "import jupyter_server.base.handlers, jupyter_server.auth.decorator\n"  # the server has them
    argv = [sys.executable, "-c", prelude + LOAD_SCRIPT, str(REPO)]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def eventlog_cost(folder: Path, rounds: int) -> list[Row]:
    from synapse_nb.config import Config
    from synapse_nb.manager import PluginManager

    from .bench_sandbox import PAYLOAD, make_noop

    plugin = make_noop(folder)
    on = PluginManager(config=Config(data={}))
    off = PluginManager(config=Config(data={"events": {"enabled": False}}))
    for manager in (on, off):
        manager.load(plugin)
    results: dict[str, list[float]] = {"on": [], "off": []}
    try:
        for _ in range(rounds):
            for label, manager in (("off", off), ("on", on)):
                samples = []
                for _ in range(500):
                    t0 = time.perf_counter()
                    manager.run("noop", PAYLOAD)
                    samples.append((time.perf_counter() - t0) * 1000)
                results[label].append(statistics.median(samples))
    finally:
        on.teardown_all()
        off.teardown_all()
    ratios = [a / b for a, b in zip(results["on"], results["off"], strict=True)]
    return [
        Row("bench_lab", "warm manager.run p50 with the event log", median(results["on"]), median(results["off"]),
            "event log off (same worker)", 1.10, spread=(min(ratios), max(ratios))),
    ]  # fmt: skip


def kernel_start(rounds: int) -> list[Row]:
    from jupyter_client.kernelspec import KernelSpec
    from jupyter_client.manager import KernelManager

    from synapse_nb.cli.kernel import kernel_spec

    plain = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    specs = {"plain": plain, "synapse": kernel_spec()["argv"], "previous": [*plain, "--ext=synapse_nb"]}
    times: dict[str, list[float]] = {k: [] for k in specs}
    for _ in range(rounds):
        for name, argv in specs.items():
            manager = KernelManager()
            manager._kernel_spec = KernelSpec(argv=argv, display_name=name, language="python")
            t0 = time.perf_counter()
            manager.start_kernel()
            client = manager.client()
            client.start_channels()
            client.wait_for_ready(timeout=60)
            times[name].append((time.perf_counter() - t0) * 1000)
            client.stop_channels()
            manager.shutdown_kernel(now=True)

    def spread(name: str) -> tuple[float, float]:
        ratios = [a / b for a, b in zip(times[name], times["plain"], strict=True)]
        return min(ratios), max(ratios)

    return [
        Row("bench_lab", "Synapse kernel: start to first kernel_info reply", median(times["synapse"]),
            median(times["plain"]), "plain ipykernel", 1.10, spread=spread("synapse")),
        Row("bench_lab", "previous Synapse kernel (--ext=synapse_nb at start)", median(times["previous"]),
            median(times["plain"]), "plain ipykernel", None, spread=spread("previous")),
    ]  # fmt: skip


def run(quick: bool = False) -> list[Row]:
    from tests.lab_helpers import CHROMIUM

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"bench_lab needs {CHROMIUM} (Debian package chromium)")
    rounds = 2 if quick else 7
    rows: list[Row] = []
    with scratch_home("bench_lab", jail=True) as folder:
        rows += eventlog_cost(folder, rounds)
        rows += kernel_start(rounds)
        rows += startup(folder, rounds)
        rows += sidebar_and_badge(folder, 2 if quick else 3)
    (REPO / "build").mkdir(exist_ok=True)
    (REPO / "build" / "bench_lab.json").write_text(json.dumps([r.to_json() for r in rows], indent=2))
    return rows
