"""The server extension's REST API and event stream, through a real jupyter_server (pytest-jupyter's jp_fetch)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import tornado.httpclient
from pytest_jupyter.jupyter_server import *  # noqa: F403 - jp_serverapp, jp_fetch, jp_ws_fetch and their fixtures

from synapse_nb import eventlog
from synapse_nb.scaffold import create_plugin
from synapse_nb.signing import sign_folder

from .sandbox_helpers import require_nsjail

Fetch = Callable[..., Any]

ROUTES = [
    ("GET", "status", None),
    ("GET", "plugins", None),
    ("GET", "plugin?scope=workspace&path=plugins/echo", None),
    ("POST", "actions/validate", {"path": "plugins/echo"}),
    ("POST", "actions/run", {"path": "plugins/echo", "payload": {}}),
    ("POST", "diagnostics", {"path": "plugins/echo/manifest.yaml"}),
    ("GET", "registry/search?q=x", None),
    ("POST", "registry/install", {"spec": "x"}),
]


@pytest.fixture
def jp_server_config(tmp_path: Path) -> dict[str, Any]:
    return {
        "ServerApp": {"jpserver_extensions": {"synapse_nb.server": True}},
        "SynapseServer": {"discovery_max_depth": 3, "installed_dir": str(tmp_path / "installed")},
    }


@pytest.fixture
def root(jp_root_dir: Path) -> Path:
    """The server root with a valid signed plugin, an invalid one and a notebook."""
    echo = create_plugin("echo", template="python", directory=jp_root_dir / "plugins" / "echo")
    sign_folder(echo)
    broken = jp_root_dir / "plugins" / "broken"
    broken.mkdir(parents=True)
    (broken / "manifest.yaml").write_text("apiVersion: synapse.io/v1\nkind: AIPlugin\nmetadata:\n  nmae: broken\n")
    (jp_root_dir / "notes.ipynb").write_text("{}")
    return jp_root_dir


@pytest.fixture
def fetch(jp_fetch: Fetch, jp_asyncio_loop: Any, root: Path) -> Fetch:
    """``fetch(METHOD, PATH, body)`` -> (status, JSON) under /synapse/api/, never raising on HTTP errors."""
    asyncio.set_event_loop(jp_asyncio_loop)  # an earlier asyncio.run() elsewhere in the session unset it

    def call(method: str, path: str, body: Any = None, **kwargs: Any) -> tuple[int, Any]:
        route, _, query = path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if p)
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if method == "POST" and body is None:
            body = "{}"
        response = jp_asyncio_loop.run_until_complete(
            jp_fetch(
                "synapse",
                "api",
                *route.split("/"),
                method=method,
                body=body,
                params=params,
                raise_error=False,
                **kwargs,
            )
        )
        text = response.body.decode() if response.body else ""
        try:
            return response.code, json.loads(text) if text else None
        except ValueError:
            return response.code, text

    return call


def tree(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content hash (to show that nothing was written)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(folder))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_needs_authentication(fetch: Fetch, method: str, path: str, body: Any) -> None:
    status, _ = fetch(method, path, body, headers={"Authorization": ""})
    assert status == 403


def test_the_event_stream_needs_authentication(jp_ws_fetch: Fetch, jp_asyncio_loop: Any, root: Path) -> None:
    asyncio.set_event_loop(jp_asyncio_loop)
    with pytest.raises(tornado.httpclient.HTTPClientError, match="403"):
        jp_asyncio_loop.run_until_complete(jp_ws_fetch("synapse", "api", "events", headers={"Authorization": ""}))


def test_status_says_how_plugins_are_isolated(fetch: Fetch) -> None:
    status, body = fetch("GET", "status")
    assert status == 200
    assert body["level"] in ("nsjail", "nsjail-nocgroup", "process")
    assert body["allowed"] is (body["level"] != "process")
    assert body["registry"] is True  # synapse_nb.registry is installed


def test_plugins_lists_valid_and_invalid_folders_with_located_problems(fetch: Fetch, root: Path) -> None:
    status, body = fetch("GET", "plugins")
    assert status == 200
    by_path = {p["path"]: p for p in body["plugins"]}
    assert sorted(by_path) == ["plugins/broken", "plugins/echo"]
    echo = by_path["plugins/echo"]
    assert (echo["name"], echo["version"], echo["valid"]) == ("echo", "0.1.0", True)
    assert echo["signature"]["status"] == "verified"
    assert echo["signature"]["signer"].startswith("CN=")
    assert echo["abspath"] == str((root / "plugins" / "echo").resolve())
    broken = by_path["plugins/broken"]
    assert broken["valid"] is False
    typo = next(p for p in broken["problems"] if "nmae" in p["message"])
    where = (typo["file"], typo["line"], typo["pointer"], typo["hint"])
    assert where == ("plugins/broken/manifest.yaml", 4, "/metadata/nmae", "name")
    assert body["installed_available"] is False
    assert body["truncated"] == []


def test_a_quick_listing_reads_only_the_manifests(fetch: Fetch) -> None:
    _, body = fetch("GET", "plugins?quick=1")
    echo = next(p for p in body["plugins"] if p["path"] == "plugins/echo")
    assert (echo["name"], echo["version"], echo["checked"]) == ("echo", "0.1.0", False)
    fetch("GET", "plugins")
    _, again = fetch("GET", "plugins?quick=1")
    assert next(p for p in again["plugins"] if p["path"] == "plugins/echo")["checked"] is True  # checked since


def test_installed_plugins_are_listed_in_their_own_scope(fetch: Fetch, tmp_path: Path) -> None:
    create_plugin("shared-tool", template="python", directory=tmp_path / "installed" / "shared-tool" / "1.0.0")
    _, body = fetch("GET", "plugins")
    installed = [p for p in body["plugins"] if p["scope"] == "installed"]
    assert [(p["name"], p["path"]) for p in installed] == [("shared-tool", "shared-tool/1.0.0")]
    status, detail = fetch("GET", "plugin?scope=installed&path=shared-tool/1.0.0")
    assert status == 200
    assert detail["name"] == "shared-tool"
    status, refused = fetch("POST", "actions/sign", {"scope": "installed", "path": "shared-tool/1.0.0"})
    assert status == 403
    assert "installed plugins keep the signature" in refused["error"]["message"]


def test_discovery_is_bounded_in_depth_and_says_so_when_it_stops_early(fetch: Fetch, root: Path) -> None:
    create_plugin("deep", template="python", directory=root / "a" / "b" / "c" / "deep")  # depth 4 > 3
    _, body = fetch("GET", "plugins")
    assert "deep" not in {p["name"] for p in body["plugins"]}


def test_discovery_stops_at_the_plugin_limit(jp_serverapp: Any, fetch: Fetch) -> None:
    jp_serverapp.web_app.settings["synapse_nb"].workspace.limits = type(
        jp_serverapp.web_app.settings["synapse_nb"].workspace.limits
    )(max_depth=3, max_plugins=1, timeout_s=2.0)
    _, body = fetch("GET", "plugins")
    assert len(body["plugins"]) == 1
    assert body["truncated"] == ["workspace: listing the first 1 plugins (discovery_max_plugins)"]


def test_plugin_detail_has_schemas_permissions_and_secrets(fetch: Fetch, root: Path) -> None:
    manifest = root / "plugins" / "echo" / "manifest.yaml"
    manifest.write_text(manifest.read_text() + "  secrets: [ECHO_TOKEN]\n")
    status, detail = fetch("GET", "plugin?scope=workspace&path=plugins/echo")
    assert status == 200
    assert detail["manifest"]["name"] == "echo"
    assert detail["schemas"]["input_schema.json"]["type"] == "object"
    assert detail["permissions"]["network_access"]["domains"] == []
    assert detail["permissions"]["system_resources"]["memory_mb"] == 512
    assert detail["secrets"] == ["ECHO_TOKEN"]
    assert detail["signature"]["status"] == "tampered"  # the manifest changed after signing
    assert detail["history"] == {"calls": [], "benchmarks": []}


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("plugins/nothing", 404, "no plugin folder at 'plugins/nothing'"),
        ("../outside", 403, "outside the workspace folder"),
        ("/etc", 403, "absolute paths are refused"),
        ("plugins/escape", 403, "outside the workspace folder"),
    ],
)
def test_unknown_plugins_and_paths_outside_the_root_are_refused(
    fetch: Fetch, root: Path, tmp_path: Path, path: str, status: int, message: str
) -> None:
    outside = create_plugin("outside", template="python", directory=tmp_path / "outside")
    (root / "plugins" / "escape").symlink_to(outside)
    for method, route, body in (
        ("GET", f"plugin?scope=workspace&path={path}", None),
        ("POST", "actions/validate", {"scope": "workspace", "path": path}),
        ("POST", "actions/run", {"scope": "workspace", "path": path, "payload": {}}),
    ):
        code, answer = fetch(method, route, body)
        assert code == status, (route, answer)
        assert message in answer["error"]["message"]
        assert answer["error"]["code"] == "usage"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("{not json", "request body is not JSON"),
        ("[1, 2]", "request body must be a JSON object, got list"),
        ('{"scope": "workspace"}', "name the plugin with 'scope'"),
        ('{"scope": "elsewhere", "path": "plugins/echo"}', "unknown scope 'elsewhere'"),
    ],
)
def test_bad_request_bodies_get_a_one_line_400(fetch: Fetch, body: str, message: str) -> None:
    status, answer = fetch("POST", "actions/validate", body)
    assert status == 400
    assert message in answer["error"]["message"]
    assert "\n" not in answer["error"]["message"]


def test_unknown_actions_and_missing_payloads_are_refused(fetch: Fetch) -> None:
    status, answer = fetch("POST", "actions/explode", {"path": "plugins/echo"})
    assert status == 404
    assert "unknown action 'explode'" in answer["error"]["message"]
    status, answer = fetch("POST", "actions/run", {"path": "plugins/echo"})
    assert status == 400
    assert "'payload' is missing" in answer["error"]["message"]


def test_validate_reports_every_located_problem(fetch: Fetch) -> None:
    status, ok = fetch("POST", "actions/validate", {"path": "plugins/echo"})
    assert status == 200
    assert ok["ok"] is True
    assert ok["result"]["plugin"] == "echo"
    _, bad = fetch("POST", "actions/validate", {"path": "plugins/broken"})
    assert bad["ok"] is False
    assert bad["error"]["code"] == "invalid"
    assert bad["error"]["exit_code"] == 3
    assert any(p["pointer"] == "/metadata/nmae" for p in bad["error"]["problems"])


def test_validation_never_imports_the_handler(fetch: Fetch, root: Path, tmp_path: Path) -> None:
    marker = tmp_path / "imported"
    handler = root / "plugins" / "echo" / "handler.py"
    handler.write_text(f"open({str(marker)!r}, 'w').write('ran')\n" + handler.read_text())
    fetch("GET", "plugins")
    fetch("GET", "plugin?scope=workspace&path=plugins/echo")
    fetch("POST", "actions/validate", {"path": "plugins/echo"})
    assert not marker.exists()


def test_sign_then_verify_and_verify_names_what_changed(fetch: Fetch, root: Path) -> None:
    (root / "plugins" / "echo" / "synapse.sig.json").unlink()
    _, unsigned = fetch("POST", "actions/verify", {"path": "plugins/echo"})
    assert (unsigned["ok"], unsigned["error"]["reason"], unsigned["error"]["exit_code"]) == (False, "unsigned", 4)
    _, signed = fetch("POST", "actions/sign", {"path": "plugins/echo"})
    assert signed["ok"] is True
    assert signed["result"]["signer"].startswith("CN=")
    _, verified = fetch("POST", "actions/verify", {"path": "plugins/echo"})
    assert verified["ok"] is True
    (root / "plugins" / "echo" / "handler.py").write_text("# changed\n")
    _, tampered = fetch("POST", "actions/verify", {"path": "plugins/echo"})
    assert tampered["error"]["reason"] == "tampered"
    assert "handler.py" in tampered["error"]["message"]


def test_diagnostics_locate_problems_in_unsaved_manifest_text(fetch: Fetch) -> None:
    text = "apiVersion: synapse.io/v1\nkind: AIPlugin\nmetadata:\n  name: echo\n  verison: 1.0.0\n"
    text += "spec:\n  runtime: python3\n"
    status, body = fetch("POST", "diagnostics", {"path": "plugins/echo/manifest.yaml", "text": text})
    assert status == 200
    assert body["ok"] is False
    typo = next(p for p in body["problems"] if p["pointer"] == "/metadata/verison")
    assert (typo["line"], typo["col"], typo["hint"]) == (5, 3, "version")
    _, clean = fetch("POST", "diagnostics", {"path": "plugins/echo/manifest.yaml"})  # the file on disk
    assert clean == {"ok": True, "path": "plugins/echo/manifest.yaml", "problems": []}
    status, _ = fetch("POST", "diagnostics", {"path": "../elsewhere/manifest.yaml", "text": text})
    assert status == 403
    status, _ = fetch("POST", "diagnostics", {"path": "plugins/echo/handler.py", "text": text})
    assert status == 400


def test_registry_search_and_install_go_through_the_cli(fetch: Fetch) -> None:
    status, found = fetch("GET", "registry/search?q=sentiment")
    assert status == 200
    assert found["ok"] is True
    assert "sentiment-analyzer" in [p["name"] for p in found["result"]]
    status, missing = fetch("POST", "registry/install", {"spec": "no-such-plugin"})
    assert status == 200
    assert (missing["ok"], missing["error"]["code"], missing["error"]["exit_code"]) == (False, "registry", 9)
    assert "no-such-plugin" in missing["error"]["message"]
    status, _ = fetch("POST", "registry/install", {"spec": ""})
    assert status == 400


def test_registry_routes_say_clearly_when_the_registry_is_not_there(
    fetch: Fetch, monkeypatch: pytest.MonkeyPatch
) -> None:
    from synapse_nb.server import registry

    monkeypatch.setattr(registry, "available", lambda: False)  # an installation without synapse_nb.registry
    routes = (("GET", "registry/search?q=sentiment", None), ("POST", "registry/install", {"spec": "a"}))
    for method, route, body in routes:
        status, answer = fetch(method, route, body)
        assert status == 501
        assert answer["error"]["code"] == "registry"
        assert "registry is not available" in answer["error"]["message"]


def test_the_event_stream_pushes_states_from_the_log(jp_ws_fetch: Fetch, jp_asyncio_loop: Any, root: Path) -> None:
    asyncio.set_event_loop(jp_asyncio_loop)

    async def scenario() -> list[dict[str, Any]]:
        socket = await jp_ws_fetch("synapse", "api", "events")
        hello = json.loads(await asyncio.wait_for(socket.read_message(), 10))
        assert hello["type"] == "hello"
        folder = str((root / "plugins" / "echo").resolve())
        eventlog.EventLog().append(
            "lifecycle", "echo", version="0.1.0", stage="ACTIVE", path=folder, data={"isolation": "nsjail"}
        )
        got = []
        t0 = time.monotonic()
        while time.monotonic() - t0 < 10:
            message = json.loads(await asyncio.wait_for(socket.read_message(), 10))
            got.append(message)
            if message["type"] == "state":
                break
        socket.close()
        return got

    messages = jp_asyncio_loop.run_until_complete(scenario())
    state = messages[-1]["state"]
    assert (state["plugin"], state["stage"], state["isolation"]) == ("echo", "ACTIVE", "nsjail")
    assert state["processes"] == [{"pid": os.getpid(), "source": eventlog.EventLog().source, "stage": "ACTIVE"}]
    assert [m["type"] for m in messages] == ["event", "state"]


def test_run_and_test_go_through_the_sandbox_and_nothing_else_is_written(fetch: Fetch, root: Path) -> None:
    require_nsjail()
    before = tree(root)
    fetch("GET", "plugins")
    fetch("GET", "plugin?scope=workspace&path=plugins/echo")
    fetch("POST", "actions/validate", {"path": "plugins/echo"})
    fetch("POST", "actions/verify", {"path": "plugins/echo"})
    fetch("POST", "diagnostics", {"path": "plugins/echo/manifest.yaml"})
    status, ran = fetch("POST", "actions/run", {"path": "plugins/echo", "payload": {"text": "hello world"}})
    assert status == 200
    assert ran["ok"] is True, ran
    assert ran["meta"]["isolation"].startswith("nsjail")
    assert ran["result"]["result"]["words"] == 2
    _, invalid = fetch("POST", "actions/run", {"path": "plugins/echo", "payload": {"text": 5}})
    assert invalid["ok"] is False
    assert (invalid["error"]["code"], invalid["error"]["pointer"]) == ("invalid", "/text")
    _, tested = fetch("POST", "actions/test", {"path": "plugins/echo"})
    assert tested["ok"] is True, tested
    assert tested["result"]["passed"] >= 1
    assert tree(root) == before
    fetch("POST", "actions/sign", {"path": "plugins/echo"})
    after = tree(root)
    assert {k for k in after if after[k] != before.get(k)} == {"plugins/echo/synapse.sig.json"}
    eventlog.flush()
    _, detail = fetch("GET", "plugin?scope=workspace&path=plugins/echo")
    errors = [c["data"].get("error") for c in detail["history"]["calls"]]
    assert errors == ["invalid", None]  # newest first: the server's own manager logs its calls too


def test_jupyter_checkpoints_never_make_a_plugin_look_tampered(fetch: Fetch, root: Path) -> None:
    from synapse_nb.signing import take_snapshot

    checkpoints = root / "plugins" / "echo" / ".ipynb_checkpoints"
    checkpoints.mkdir()
    (checkpoints / "manifest-checkpoint.yaml").write_text("written by JupyterLab when the manifest was opened\n")
    _, verified = fetch("POST", "actions/verify", {"path": "plugins/echo"})
    assert verified["ok"] is True, verified
    snapshot = take_snapshot(root / "plugins" / "echo")
    assert not (snapshot.path / ".ipynb_checkpoints").exists()  # left out: it never reaches a worker
