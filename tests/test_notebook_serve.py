"""``%synapse serve`` logic (notebook/serve_view.py) with a real IPython shell and real servers on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

import synapse_nb
from synapse_nb.errors import RegistryError, UsageError
from synapse_nb.notebook.magics import SynapseMagics
from synapse_nb.notebook.serve_view import ServingView, serve_command, stop_serving

HANDLER = """
from synapse.sdk import BaseHandler

class Shout(BaseHandler):
    def execute(self, data):
        return {"said": data["text"].upper() + MARK}
"""


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[InteractiveShell]:
    """test_notebook's ``shell`` fixture; the notebook's server (if any) stopped afterwards."""
    ip: InteractiveShell = request.getfixturevalue("shell")
    yield ip
    stop_serving(session_of(ip))


def session_of(ip: InteractiveShell) -> Any:
    return next(m for m in ip.magics_manager.registry.values() if isinstance(m, SynapseMagics)).session


def define(ip: InteractiveShell, mark: str = "!") -> None:
    line = '%%synapse_plugin shout --example \'{"text": "hi"}\''
    body = HANDLER.replace("MARK", repr(mark))
    assert ip.run_cell(f"{line}\n{body}").success


def test_a_notebook_serves_the_plugin_it_just_wrote_with_one_line(served: InteractiveShell) -> None:
    define(served)
    session = session_of(served)
    view = serve_command(session, "shout")
    assert isinstance(view, ServingView)
    assert set(view.urls) == {"grpc", "http"}  # a notebook plugin's local interface, exposed over both
    for url in view.urls.values():
        with synapse_nb.connect(url) as plugin:
            assert plugin.run({"text": "hey"}) == {"said": "HEY!"}
    text = repr(view)
    assert 'grpcurl -plaintext -d \'{"text": "hello"}\'' in text
    assert (
        f"curl -sS -H 'content-type: application/json' -d '{{\"text\": \"hello\"}}' {view.urls['http']}/v1/shout"
        in text
    )
    assert f"synapse_nb.connect({view.urls['grpc']!r})" in text
    assert "%synapse serve --stop" in view._repr_html_()
    assert serve_command(session, "shout").urls == view.urls  # re-running the line shows the same server


def test_a_redefined_cell_is_served_at_once(served: InteractiveShell) -> None:
    define(served)
    session = session_of(served)
    view = serve_command(session, "shout --http :0")
    assert set(view.urls) == {"http"}
    plugin = synapse_nb.connect(view.urls["http"])
    assert plugin.run({"text": "a"}) == {"said": "A!"}
    define(served, mark="?")
    assert plugin.run({"text": "a"}) == {"said": "A?"}
    plugin.close()


def test_stop_ends_the_server_and_leaves_the_plugin_running(
    served: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    define(served)
    session = session_of(served)
    url = serve_command(session, "shout --grpc 127.0.0.1:0").urls["grpc"]
    assert serve_command(session, "--stop") is None
    assert "server stopped" in capsys.readouterr().out
    with pytest.raises(RegistryError, match="cannot reach"):
        synapse_nb.connect(url, timeout=2)
    assert session.plugin("shout").run({"text": "b"}) == {"said": "B!"}
    serve_command(session, "--stop")
    assert "no server is running" in capsys.readouterr().out


def test_serve_usage_errors(served: InteractiveShell) -> None:
    session = session_of(served)
    with pytest.raises(UsageError, match="no plugin named 'ghost'"):
        serve_command(session, "ghost")
    with pytest.raises(UsageError, match="name the plugin"):
        serve_command(session, "")
    with pytest.raises(UsageError, match="unknown option '--bogus'"):
        serve_command(session, "shout --bogus")
    with pytest.raises(UsageError, match="--grpc needs a value"):
        serve_command(session, "shout --grpc")
    define(served)
    with pytest.raises(UsageError, match=r"refusing to listen on 0\.0\.0\.0"):
        serve_command(session, "shout --http 0.0.0.0:0")
