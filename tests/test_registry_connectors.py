"""The public Slack and Salesforce connectors, run in the jail against local fakes of their documented APIs.

The connectors may reach only their API's domains (slack.com, *.my.salesforce.com). For the test, a variant of
each manifest lists ``localhost:PORT`` instead (the egress proxy allows loopback only for a literal
``localhost`` entry) and passes the fake's base URL as one more secret; it is re-signed with the test's
developer key. The handler code is the shipped one, byte for byte.
"""

from __future__ import annotations

import http.server
import json
import shutil
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

import synapse_nb
from synapse_nb.errors import PluginFailed
from synapse_nb.registry.public import PUBLIC_DIR
from synapse_nb.signing import sign_folder

from .network_helpers import RecordingServer, recording_server
from .sandbox_helpers import require_nsjail

TOKEN = "xoxb-test-token-1234"
SF_TOKEN = "00Dxx0000001gPF!AQ4AQ.test"


class _Fake(http.server.BaseHTTPRequestHandler):
    """Slack's chat.postMessage and Salesforce's query endpoints, as their documentation describes them."""

    server: RecordingServer  # type: ignore[assignment]

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # Slack chat.postMessage
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        self.server.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers), "body": body})
        if self.path != "/api/chat.postMessage":
            self._reply(404, {"ok": False, "error": "unknown_method"})
        elif self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._reply(200, {"ok": False, "error": "invalid_auth"})
        elif body.get("channel") == "C0NOTFOUND":
            self._reply(200, {"ok": False, "error": "channel_not_found"})
        else:
            message = {"type": "message", "text": body["text"], "ts": "1503435956.000247", "bot_id": "B123"}
            self._reply(200, {"ok": True, "channel": body["channel"], "ts": "1503435956.000247", "message": message})

    def do_GET(self) -> None:  # Salesforce REST query and its next page
        self.server.requests.append({"method": "GET", "path": self.path, "headers": dict(self.headers)})
        if self.headers.get("Authorization") != f"Bearer {SF_TOKEN}":
            self._reply(401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
            return
        parts = urllib.parse.urlsplit(self.path)
        if parts.path == "/services/data/v59.0/query":
            soql = urllib.parse.parse_qs(parts.query)["q"][0]
            if not soql.upper().startswith("SELECT ID, NAME FROM ACCOUNT"):
                self._reply(400, [{"message": "unexpected token", "errorCode": "MALFORMED_QUERY"}])
                return
            self._reply(200, {"totalSize": 3, "done": False, "nextRecordsUrl": "/services/data/v59.0/query/01gD0-2",
                              "records": [_account("001A", "Acme"), _account("001B", "Globex")]})  # fmt: skip
        elif parts.path == "/services/data/v59.0/query/01gD0-2":
            self._reply(200, {"totalSize": 3, "done": True, "records": [_account("001C", "Initech")]})
        else:
            self._reply(404, [{"message": "not found", "errorCode": "NOT_FOUND"}])

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _account(record_id: str, name: str) -> dict[str, Any]:
    url = f"/services/data/v59.0/sobjects/Account/{record_id}"
    return {"attributes": {"type": "Account", "url": url}, "Id": record_id, "Name": name}


def local_variant(name: str, tmp_path: Path, port: int, extra_secret: str | None = None) -> Path:
    """The shipped plugin with its domains pointed at localhost:PORT and one more secret; re-signed here."""
    target = tmp_path / name
    shutil.copytree(PUBLIC_DIR / "src" / name, target, ignore=shutil.ignore_patterns("__pycache__"))
    manifest = target / "manifest.yaml"
    text = manifest.read_text()
    start = text.index('domains: ["') + len('domains: ["')
    text = text[:start] + f"localhost:{port}" + text[text.index('"]', start) :]
    if extra_secret:
        text = text.replace("  secrets: [", f"  secrets: [{extra_secret}, ")
    manifest.write_text(text)
    sign_folder(target)
    return target


@pytest.fixture(autouse=True)
def _jail() -> None:
    require_nsjail()


def test_the_slack_connector_posts_with_chat_post_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synapse_home: Path
) -> None:
    (synapse_home / "config").write_text("secrets:\n  allow: [SLACK_BOT_TOKEN, SLACK_API_BASE]\n")
    with recording_server(_Fake) as api:
        folder = local_variant("slack-notifier", tmp_path, api.port, "SLACK_API_BASE")
        monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("SLACK_API_BASE", f"http://localhost:{api.port}/api")
        with synapse_nb.load(folder) as plugin:
            out = plugin.run({"channel": "C024BE91L", "text": "deploy finished"})
            assert out == {"ok": True, "channel": "C024BE91L", "ts": "1503435956.000247"}
            with pytest.raises(PluginFailed, match="Slack refused the message: channel_not_found"):
                plugin.run({"channel": "C0NOTFOUND", "text": "hello"})
        (request, _) = api.requests
        assert request["path"] == "/api/chat.postMessage"
        assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert request["headers"]["Content-Type"] == "application/json; charset=utf-8"
        assert request["body"] == {"channel": "C024BE91L", "text": "deploy finished"}


def test_the_salesforce_connector_runs_soql_and_follows_next_records_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, synapse_home: Path
) -> None:
    (synapse_home / "config").write_text("secrets:\n  allow: [SALESFORCE_INSTANCE_URL, SALESFORCE_ACCESS_TOKEN]\n")
    with recording_server(_Fake) as api:
        folder = local_variant("salesforce-query", tmp_path, api.port)
        monkeypatch.setenv("SALESFORCE_INSTANCE_URL", f"http://localhost:{api.port}")
        monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", SF_TOKEN)
        with synapse_nb.load(folder) as plugin:
            out = plugin.run({"soql": "SELECT Id, Name FROM Account"})
            names = [
                {"Id": "001A", "Name": "Acme"},
                {"Id": "001B", "Name": "Globex"},
                {"Id": "001C", "Name": "Initech"},
            ]
            assert out == {"total_size": 3, "pages": 2, "records": names}
            with pytest.raises(PluginFailed, match="Salesforce answered HTTP 400: MALFORMED_QUERY: unexpected token"):
                plugin.run({"soql": "SELECT Nope FROM Account"})
        first = api.requests[0]
        assert first["path"] == "/services/data/v59.0/query?q=SELECT+Id%2C+Name+FROM+Account"
        assert first["headers"]["Authorization"] == f"Bearer {SF_TOKEN}"


def test_the_shipped_connectors_may_reach_only_their_apis() -> None:
    import yaml

    slack = yaml.safe_load((PUBLIC_DIR / "src" / "slack-notifier" / "manifest.yaml").read_text())["spec"]
    salesforce = yaml.safe_load((PUBLIC_DIR / "src" / "salesforce-query" / "manifest.yaml").read_text())["spec"]
    assert slack["permissions"]["network_access"]["domains"] == ["slack.com"]
    assert slack["secrets"] == ["SLACK_BOT_TOKEN"]
    assert salesforce["permissions"]["network_access"]["domains"] == ["*.my.salesforce.com"]
    assert salesforce["secrets"] == ["SALESFORCE_INSTANCE_URL", "SALESFORCE_ACCESS_TOKEN"]
