"""The HTTP listener of a real server on loopback: POST PATH, problem details, health, listing, limits, auth."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .serve_helpers import background_server, make_probe, module_home

TOKEN = "another-token-for-http-tests-0123"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with module_home(tmp_path_factory) as home, background_server([make_probe(home)], grpc=False) as running:
        yield running


def request(
    url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, json.loads(data) if data else None
    finally:
        conn.close()


def post(
    server: Any, path: str, payload: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    body = json.dumps(payload).encode()
    return request(server.urls()["http"], "POST", path, body, {"Content-Type": "application/json", **(headers or {})})


def test_post_to_the_endpoint_path_returns_result_and_meta(server: Any) -> None:
    status, headers, body = post(server, "/probe/run", {"id": 3, "n": 1})
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert body["result"] == {"id": 3, "method": "alt", "n": 1}  # the endpoint key names the handler method
    assert body["meta"]["endpoint"] == "alt"
    assert body["meta"]["plugin"] == "probe"
    assert body["meta"]["version"] == "1.0.0"


def test_post_path_batch_runs_one_execute_batch(server: Any) -> None:
    status, _headers, body = post(server, "/probe/run:batch", [{"id": i} for i in range(4)])
    assert status == 200
    assert [r["id"] for r in body["result"]] == [0, 1, 2, 3]
    status, _headers, body = post(server, "/probe/run:batch", {"id": 1})
    assert status == 400
    assert "takes a JSON array" in body["detail"]


def test_a_batch_fails_with_its_first_failed_item_unless_errors_are_asked_for_in_place(server: Any) -> None:
    items = [{"id": 0}, {"op": "refuse"}, {"id": 2}]
    status, _headers, body = post(server, "/probe/run:batch", items)
    assert (status, body["error"]["code"]) == (500, "plugin-failed")
    status, _headers, body = post(server, "/probe/run:batch", items, {"Synapse-Return-Exceptions": "true"})
    assert status == 200
    assert body["result"] == [{"id": 0, "method": "alt", "n": None}, None, {"id": 2, "method": "alt", "n": None}]
    (index, error), *_ = body["errors"].items()
    assert (index, error["class"], error["exit_code"]) == ("1", "PluginFailed", 7)
    assert "probe was asked to refuse this item" in error["message"]
    assert post(server, "/probe/run:batch", [{"id": 0}], {"Synapse-Return-Exceptions": "true"})[2]["errors"] == {}
    status, _headers, body = post(server, "/probe/run", {"id": 1}, {"Synapse-Return-Exceptions": "true"})
    assert (status, body["detail"]) == (400, "header Synapse-Return-Exceptions is for a batch (POST PATH:batch)")
    status, _headers, body = post(server, "/probe/run:batch", items, {"Synapse-Return-Exceptions": "maybe"})
    assert (status, body["detail"]) == (400, "header Synapse-Return-Exceptions: 'maybe' is not true or false")


def test_a_grpc_endpoint_is_not_served_over_http(server: Any) -> None:
    status, headers, body = post(server, "/probe.v1.Probe/Run", {"id": 1})
    assert status == 404
    assert headers["content-type"] == "application/problem+json"
    assert body["error"]["exit_code"] == 2


def test_healthz_and_plugins(server: Any) -> None:
    status, _headers, body = request(server.urls()["http"], "GET", "/healthz")
    assert (status, body) == (200, {"status": "SERVING", "plugins": {"probe": "SERVING"}})
    status, _headers, body = request(server.urls()["http"], "GET", "/v1/plugins")
    (plugin,) = body["plugins"]
    assert (plugin["name"], plugin["version"], plugin["serving"]) == ("probe", "1.0.0", True)
    assert [i["served_over"] for i in plugin["interfaces"]] == [[], ["http"]]  # no gRPC listener here
    assert plugin["schemas"]["input"]["properties"]["op"]["enum"][0] == "echo"


@pytest.mark.parametrize(
    ("payload", "status", "exit_code", "code"),
    [
        ({"op": "nope"}, 422, 3, "invalid"),
        ({"op": "raise"}, 500, 7, "plugin-failed"),
        ({"op": "crash"}, 500, 7, "plugin-failed"),
        ({"op": "sleep", "ms": 1500}, 504, 5, "timeout"),
        ({"op": "big", "bytes": 70_000}, 429, 6, "limit"),
        ({"id": "x" * 70_000}, 413, 6, "limit"),
    ],
    ids=["invalid-input", "raised", "crashed", "plugin-timeout", "output-too-large", "payload-too-large"],
)
def test_each_error_class_is_rfc9457_problem_details(
    server: Any, payload: dict[str, Any], status: int, exit_code: int, code: str
) -> None:
    got, headers, body = post(server, "/probe/run", payload)
    assert got == status
    assert headers["content-type"] == "application/problem+json"
    assert body["type"] == f"urn:synapse-nb:problem:{code}"
    assert body["status"] == status
    assert body["instance"] == "/probe/run"
    assert (body["error"]["exit_code"], body["error"]["plugin"]) == (exit_code, "probe")
    assert body["detail"] == body["error"]["message"]
    assert post(server, "/probe/run", {"id": 8})[2]["result"]["id"] == 8  # still serving


@pytest.mark.parametrize(
    ("body", "content_type", "status", "detail"),
    [
        (b'{"id": ', "application/json", 400, "is not valid JSON"),
        (b"\xff\xfe", "application/json", 400, "not UTF-8"),
        (b"[" * 200 + b"]" * 200, "application/json", 400, "nested deeper than 128 levels"),
        (b"1" * 5000, "application/json", 400, "an integer of 5000 digits"),
        (b"[NaN]", "application/json", 400, "NaN is not a JSON number"),
        (b"id=1", "application/x-www-form-urlencoded", 400, "must be JSON"),
    ],
    ids=["truncated", "not-utf8", "too-deep", "huge-int", "nan", "form"],
)
def test_a_malformed_body_is_a_clear_400_and_the_server_keeps_serving(
    server: Any, body: bytes, content_type: str, status: int, detail: str
) -> None:
    got, _headers, problem = request(server.urls()["http"], "POST", "/probe/run", body, {"Content-Type": content_type})
    assert got == status
    assert detail in problem["detail"]
    assert problem["error"]["exit_code"] == 3
    assert post(server, "/probe/run", {"id": 9})[2]["result"]["id"] == 9


def test_a_body_over_the_request_bound_is_refused_before_it_is_read(server: Any) -> None:
    limit = server.service.manager.config.sandbox.max_payload_bytes + 64 * 1024
    status, _headers, body = request(
        server.urls()["http"], "POST", "/probe/run", b" " * (limit + 1), {"Content-Type": "application/json"}
    )
    assert status == 413
    assert body["error"]["limit"] == "max_request_bytes"


def test_wrong_method_and_unknown_path_are_problems(server: Any) -> None:
    status, headers, body = request(server.urls()["http"], "GET", "/probe/run")
    assert (status, headers["allow"]) == (405, "POST")
    assert headers["content-type"] == "application/problem+json"
    status, _headers, body = request(server.urls()["http"], "DELETE", "/healthz")
    assert status == 405
    status, _headers, body = post(server, "/nothing/here", {})
    assert status == 404
    assert "no endpoint is served at /nothing/here" in body["detail"]


def test_the_deadline_header_answers_504_at_the_deadline(server: Any) -> None:
    status, _headers, body = post(server, "/probe/run", {"op": "sleep", "ms": 800}, {"Synapse-Timeout-Ms": "200"})
    assert status == 504
    assert int(body["error"]["value"].removesuffix("ms")) <= 150  # the deadline less 50 ms to answer: the timeout
    assert "its worker was killed" in body["detail"]
    status, _headers, body = post(server, "/probe/run", {"id": 1}, {"Synapse-Timeout-Ms": "soon"})
    assert status == 400


def test_an_idempotency_key_header_is_honoured(server: Any) -> None:
    key = {"Idempotency-Key": f"http-{uuid.uuid4()}"}
    status, headers, first = post(server, "/probe/run", {"id": 21}, key)
    assert (status, headers["idempotent-replayed"], first["meta"]["idempotency"]) == (200, "false", "stored")
    status, headers, again = post(server, "/probe/run", {"id": 21}, key)
    assert (status, headers["idempotent-replayed"], again["meta"]["idempotency"]) == (200, "true", "replayed")
    assert again["result"] == first["result"] == {"id": 21, "method": "alt", "n": None}
    # The same key with another payload: 422, as the IETF Idempotency-Key draft says (Stripe answers 400).
    status, _headers, body = post(server, "/probe/run", {"id": 22}, key)
    assert status == 422
    assert "reused with a different payload" in body["detail"]
    assert body["error"]["exit_code"] == 3
    assert "idempotent-replayed" not in post(server, "/probe/run", {"id": 21})[1]  # no key, no header


@pytest.mark.parametrize(
    ("key", "said"),
    [(b"", "is empty"), (b"x" * 256, "is 256 characters long"), ("cl\u00e9".encode("latin-1"), "holds 'é'")],
    ids=["empty", "too-long", "not-ascii"],
)
def test_a_malformed_idempotency_key_is_a_clear_400(server: Any, key: bytes, said: str) -> None:
    host, port = server.urls()["http"].removeprefix("http://").rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest("POST", "/probe/run")
        conn.putheader("Content-Type", "application/json")
        conn.putheader("Idempotency-Key", key)
        conn.putheader("Content-Length", "9")
        conn.endheaders(b'{"id": 1}')
        response = conn.getresponse()
        status, body = response.status, json.loads(response.read())
    finally:
        conn.close()
    assert status == 400
    assert f"header Idempotency-Key {said}" in body["detail"]
    assert body["error"]["exit_code"] == 3


def test_with_a_token_every_request_needs_it(tmp_path: Path) -> None:
    with background_server([make_probe(tmp_path)], token=TOKEN, grpc=False) as running:
        url = running.urls()["http"]
        for headers in ({}, {"Authorization": "Bearer not-the-token-at-all!"}, {"Authorization": f"Basic {TOKEN}"}):
            status, got, body = request(url, "GET", "/healthz", headers=headers)
            assert status == 401
            assert got["www-authenticate"].startswith("Bearer")
            assert body["error"]["exit_code"] == 9
        status, _headers, body = post(running, "/probe/run", {"id": 4}, {"Authorization": f"bearer {TOKEN}"})
        assert (status, body["result"]["id"]) == (200, 4)
