"""JupyterLab in the system's Chromium: the Synapse sidebar, live badges, Try it, manifest diagnostics, saved
outputs and a restart right after opening. Screenshots of every step go to ``build/lab/``.

One JupyterLab (started by the test on a free loopback port, with a token) serves a workspace of 200 signed
plugins, a plugin used by the notebook cells, one with a broken manifest and the notebooks. Plugins run under
nsjail: the machine runs the tests as root. Any browser console error coming from our extension fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from synapse_nb import eventlog
from synapse_nb.scaffold import create_plugin
from synapse_nb.signing import sign_folder

from .lab_helpers import Lab, launch_chromium, make_many, notebook, require_browser
from .sandbox_helpers import require_nsjail

pytestmark = pytest.mark.slow

SHOTS = Path(__file__).resolve().parent.parent / "build" / "lab"
MANY = 200
BROKEN_MANIFEST = """\
apiVersion: synapse.io/v1
kind: AIPlugin
metadata:
  name: broken
  verison: 0.1.0
spec:
  runtime: python3
"""


def make_workspace(root: Path) -> None:
    echo = create_plugin("echo", template="python", directory=root / "plugins" / "echo")
    sign_folder(echo)
    broken = create_plugin("broken", template="python", directory=root / "plugins" / "broken")
    (broken / "manifest.yaml").write_text(BROKEN_MANIFEST)
    make_many(root / "many", MANY)
    (root / "activate.ipynb").write_text(
        notebook(["import synapse_nb\n\necho = synapse_nb.load('plugins/echo')\necho.run({'text': 'hello there'})"])
    )
    (root / "widgets.ipynb").write_text(
        notebook(["%load_ext synapse_nb", "%synapse load plugins/echo", '%synapse run echo {"text": "a few words"}'])
    )
    marker = "print('all cells ran', 40 + 2)"
    cells = ["import time\ntime.sleep(0.2)", "x = sum(range(1000))", marker]
    (root / "restart-plain.ipynb").write_text(notebook(cells))
    (root / "restart-synapse.ipynb").write_text(notebook(cells, "synapse", "Python 3 (Synapse)"))


class Browser:
    """One page of the lab, with the console errors our extension logged and a screenshot per step."""

    def __init__(self, page: Any, lab: Lab) -> None:
        self.page = page
        self.lab = lab
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type != "error":
            return
        where = (message.location or {}).get("url", "")
        text = message.text
        if "synapse" in text.lower() or "synapse-nb" in where:
            self.errors.append(f"{text} ({where})")

    def shot(self, name: str, selector: str | None = None) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        if selector:
            self.page.locator(selector).screenshot(path=str(path))
        else:
            self.page.screenshot(path=str(path))
        return path

    def command(self, command: str, args: dict[str, Any] | None = None, *, wait: bool = True) -> None:
        """Run a JupyterLab command (``wait=False``: do not wait for it, e.g. when it opens a dialog)."""
        script = "async ([c, a, w]) => { const p = window.jupyterapp.commands.execute(c, a); if (w) { await p; } }"
        self.page.evaluate(script, [command, args or {}, wait])

    def current(self) -> str:
        """A selector for the current main-area widget (other open notebooks have the same classes)."""
        ident = self.page.evaluate("() => window.jupyterapp.shell.currentWidget.id")
        return f'[id="{ident}"]'

    def close_current(self, *, save: bool = True) -> None:
        """Save the current document (unless ``save=False``), shut its kernel down and close it (no dialogs)."""
        self.page.evaluate(
            """async (save) => {
                const widget = window.jupyterapp.shell.currentWidget;
                if (save) { await widget.context.save(); }
                if (widget.sessionContext) { await widget.sessionContext.shutdown(); }
                widget.dispose();
            }""",
            save,
        )

    def open(self, path: str) -> str:
        """Open ``path`` and return the selector of its widget once it is the current one."""
        self.command("docmanager:open", {"path": path})
        self.page.wait_for_function("(path) => window.jupyterapp.shell.currentWidget?.context?.path === path", arg=path)
        return self.current()

    def open_lab(self) -> None:
        self.page.goto(f"{self.lab.url}/lab?token={self.lab.token}&reset")
        self.page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-LabShell')")
        self.page.wait_for_selector("#jupyterlab-splash", state="detached", timeout=60_000)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    require_nsjail()
    require_browser()
    base = tmp_path_factory.mktemp("lab")
    root, home = base / "root", base / "home"
    root.mkdir()
    home.mkdir()
    kernels = base / "kernels"
    subprocess.run([sys.executable, "-m", "synapse_nb", "kernel", "install", "--prefix", str(kernels)], check=True,
                   capture_output=True, env={**_env(), "SYNAPSE_HOME": str(home)})  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNAPSE_HOME", str(home))
        make_workspace(root)
        server = Lab(root, home=home, log=SHOTS / "jupyterlab.log", jupyter_path=kernels / "share" / "jupyter")
        server.start()
        try:
            yield server
        finally:
            server.stop()


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = launch_chromium(playwright, lab.home.parent / "chromium-profile")
        context.set_default_timeout(30_000)
        page = context.pages[0] if context.pages else context.new_page()
        view = Browser(page, lab)
        view.open_lab()
        try:
            yield view
        finally:
            context.close()
        assert view.errors == [], f"console errors from the synapse extension: {view.errors}"


def test_01_the_sidebar_lists_the_workspace_plugins(browser: Browser, lab: Lab) -> None:
    page = browser.page
    t0 = page.evaluate("() => performance.now()")
    page.click('.lm-TabBar-tab[data-id="synapse-sidebar"]')
    page.wait_for_selector(f'.synapse-PluginList[data-count="{MANY + 2}"]')
    listed_ms = page.evaluate("() => performance.now()") - t0
    page.wait_for_function("() => !document.querySelector('.synapse-PluginRow[data-stage=\"CHECKING\"]')")
    checked_ms = page.evaluate("() => performance.now()") - t0
    rows = page.locator(".synapse-PluginRow")
    assert rows.count() == MANY + 2
    assert page.locator('.synapse-PluginRow[data-plugin="echo"]').get_attribute("data-stage") == "READY"
    assert page.locator('.synapse-PluginRow[data-plugin="broken"]').get_attribute("data-stage") == "INVALID"
    error = page.locator('.synapse-PluginRow[data-plugin="broken"] .synapse-PluginRow-error').inner_text()
    assert "missing required key" in error
    page.fill(".synapse-Search", "p19")
    assert page.locator(".synapse-PluginRow").count() == 10  # p190..p199
    page.select_option(".synapse-Filter", "invalid")
    page.fill(".synapse-Search", "")
    assert [r.get_attribute("data-plugin") for r in page.locator(".synapse-PluginRow").all()] == ["broken"]
    page.select_option(".synapse-Filter", "all")
    browser.shot("01-sidebar")
    (SHOTS / "timings.json").write_text(json.dumps({"sidebar_listed_ms": listed_ms, "sidebar_checked_ms": checked_ms}))
    print(f"sidebar: {MANY + 2} plugins listed {listed_ms:.0f} ms after opening, all checked after {checked_ms:.0f} ms")
    assert page.locator(".synapse-Status").get_attribute("data-level") in ("nsjail", "nsjail-nocgroup")


def test_02_a_cell_in_a_kernel_turns_the_badge_active(browser: Browser, lab: Lab) -> None:
    page = browser.page
    badge = '.synapse-PluginRow[data-plugin="echo"]'
    page.evaluate(
        """(selector) => {
            window.__synapseActiveAt = null;
            const seen = () => {
                const row = document.querySelector(selector);
                if (row && row.dataset.stage === 'ACTIVE' && window.__synapseActiveAt === null) {
                    window.__synapseActiveAt = Date.now();
                }
            };
            new MutationObserver(seen).observe(document.body, {subtree: true, attributes: true, childList: true});
        }""",
        badge,
    )
    browser.command("docmanager:open", {"path": "activate.ipynb"})
    page.wait_for_selector(".jp-Notebook .jp-Cell")
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel")
    browser.command("notebook:run-all-cells")
    page.wait_for_selector(f'{badge}[data-stage="ACTIVE"]', timeout=60_000)
    page.wait_for_selector(".jp-OutputArea-output:has-text('words')", timeout=60_000)
    seen_at = page.evaluate("() => window.__synapseActiveAt")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SYNAPSE_HOME", str(lab.home))
        rows = eventlog.EventLog().since(0, limit=100_000)
    active = next(e for e in rows if e.stage == "ACTIVE" and e.plugin == "echo")
    latency_ms = seen_at - active.ts * 1000
    assert active.source == "kernel"
    title = page.locator(f"{badge} .synapse-Badge").get_attribute("title")
    assert title.startswith("active in 1 process (kernel ")
    browser.shot("02-badge-active")
    timings = json.loads((SHOTS / "timings.json").read_text())
    timings["badge_latency_ms"] = latency_ms
    (SHOTS / "timings.json").write_text(json.dumps(timings))
    print(f"badge: ACTIVE shown {latency_ms:.0f} ms after the kernel's event")


def test_03_try_it_runs_valid_and_invalid_payloads_in_the_sandbox(browser: Browser) -> None:
    page = browser.page
    page.click('.synapse-PluginRow[data-plugin="echo"]')
    panel = page.locator('.synapse-Panel[data-plugin="echo"]')
    panel.wait_for()
    assert "text" in panel.locator(".synapse-Schema").first.inner_text()
    panel.locator('[data-action="validate"]').click()
    page.wait_for_selector('.synapse-ActionResults li[data-action="validate"]')
    assert "ok: echo 0.1.0 is valid" in panel.locator('.synapse-ActionResults li[data-action="validate"]').inner_text()
    panel.locator('[data-action="verify"]').click()
    page.wait_for_selector('.synapse-ActionResults li[data-action="verify"]')
    assert "signed by" in panel.locator('.synapse-ActionResults li[data-action="verify"]').inner_text()
    form_input = panel.locator(".synapse-TryIt-form input[type=text], .synapse-TryIt-form textarea").first
    form_input.fill("I love this plugin")
    panel.locator(".synapse-Run").click()
    ok = panel.locator(".synapse-Result.synapse-ok")
    ok.wait_for(timeout=60_000)
    assert '"words": 4' in ok.inner_text()
    assert "(nsjail" in ok.inner_text()
    browser.shot("03-try-it-valid")
    panel.locator(".synapse-TryIt-modes input").nth(1).check()
    panel.locator(".synapse-TryIt-json").fill('{"text": 5}')
    panel.locator(".synapse-Run").click()
    error = panel.locator(".synapse-Result.synapse-err")
    error.wait_for()
    assert "[invalid, exit 3]" in error.inner_text()
    assert "at /text" in error.inner_text()
    browser.shot("03-try-it-invalid")
    calls = panel.locator(".synapse-Calls")
    calls.wait_for()
    page.wait_for_function("() => document.querySelectorAll('.synapse-Calls tbody tr').length >= 3")
    # "Open in a notebook": a cell that loads the plugin, in the notebook used last (activate.ipynb, at the root).
    panel.locator(".synapse-Open").first.click()
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget?.context?.path === 'activate.ipynb'")
    source = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.activeCell.model.sharedModel.getSource()"
    )
    assert 'echo = synapse_nb.load("plugins/echo")' in source
    assert "echo.run({})" in source  # the template's schema has no example: an empty payload to fill in
    browser.shot("03-open-in-notebook")


def test_04_a_broken_manifest_shows_located_problems_that_move_the_cursor(browser: Browser) -> None:
    page = browser.page
    browser.command("docmanager:open", {"path": "plugins/broken/manifest.yaml", "factory": "Editor"})
    item = page.locator('.synapse-Diagnostic[data-line="5"]')
    item.wait_for()
    text = item.inner_text()
    assert "/metadata/verison" in text
    assert "did you mean version?" in text
    item.click()
    position = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.editor.getCursorPosition()")
    assert position == {"line": 4, "column": 2}
    browser.shot("04-manifest-diagnostics")
    browser.command("docmanager:open", {"path": "plugins/echo/manifest.yaml", "factory": "Editor"})
    page.wait_for_selector(".synapse-Diagnostics-clean")


def test_05_saved_widget_outputs_read_well_after_reopening(browser: Browser, lab: Lab) -> None:
    page = browser.page
    browser.command("docmanager:open", {"path": "widgets.ipynb"})
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel")
    notebook = browser.current()
    browser.command("notebook:run-all-cells")
    # While the kernel has the widgets' models, the outputs are the live ipywidgets.
    page.wait_for_selector(f"{notebook} .synapse-Out .jupyter-widgets:has-text('a few words')", timeout=60_000)
    browser.shot("05-live-widgets")
    browser.close_current()
    browser.command("docmanager:open", {"path": "widgets.ipynb"})
    page.wait_for_function("() => window.jupyterapp.shell.currentWidget.context.path === 'widgets.ipynb'")
    notebook = browser.current()
    page.wait_for_selector(f"{notebook} .synapse-Out-static .synapse-Out-iodebug")
    text = page.locator(f"{notebook} .jp-Notebook").inner_text()
    assert "model not found" not in text
    assert "a few words" in text
    assert "A FEW WORDS" in text
    assert page.locator(f"{notebook} .synapse-Out-lifecycle").count() == 1
    word_break = page.evaluate("() => getComputedStyle(document.querySelector('.synapse-Out-iodebug pre')).wordBreak")
    assert word_break == "normal"
    browser.shot("05-reopened-outputs")
    browser.close_current()


@pytest.mark.parametrize("kernel", ["plain", "synapse"])
def test_06_restart_and_run_all_right_after_opening(browser: Browser, kernel: str) -> None:
    page = browser.page
    for attempt in range(3):
        notebook = browser.open(f"restart-{kernel}.ipynb")
        page.wait_for_selector(f"{notebook} .jp-Cell")
        # Right after opening: the session exists but its kernel is still starting. (Before the session
        # exists JupyterLab has nothing to restart and ignores the command.)
        page.wait_for_function("() => window.jupyterapp.shell.currentWidget.sessionContext.session?.kernel")
        t0 = time.monotonic()
        browser.command("notebook:restart-run-all", wait=False)
        dialog = page.locator(".jp-Dialog")
        assert "Restart" in dialog.locator(".jp-Dialog-header").inner_text()
        dialog.locator(".jp-mod-accept").click()
        page.wait_for_selector(f"{notebook} .jp-OutputArea-output:has-text('all cells ran 42')", timeout=60_000)
        elapsed = time.monotonic() - t0
        browser.shot(f"06-restart-{kernel}-{attempt}")
        browser.close_current(save=False)  # the file keeps no outputs: the next attempt starts clean
        print(f"restart-and-run-all with the {kernel} kernel: done in {elapsed:.1f} s")


def test_07_readme_screenshot_of_the_sidebar(browser: Browser) -> None:
    page = browser.page
    if not page.locator(".synapse-Sidebar").is_visible():
        page.click('.lm-TabBar-tab[data-id="synapse-sidebar"]')
    page.fill(".synapse-Search", "")
    box = page.locator("#synapse-sidebar").bounding_box()
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / "sidebar.png"  # labextension/docs/jupyterlab-sidebar.png in the README is a copy of it
    page.screenshot(path=str(path), clip={"x": box["x"], "y": box["y"], "width": box["width"], "height": 330})
    assert path.stat().st_size > 1000
