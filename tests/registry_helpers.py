"""Helpers for registry tests: a real registry server on loopback, zips built by hand, config entries."""

from __future__ import annotations

import io
import os
import stat
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from synapse_nb.cli import main as cli
from synapse_nb.registry.server import RegistryServer, create_app
from synapse_nb.registry.store import RegistryStore
from synapse_nb.registry.tokens import load_clients_file
from synapse_nb.signing import ensure_developer_key

CLIENT_SECRET = "correct-horse-battery-staple-42"
READER_SECRET = "reader-secret-0123456789"


@dataclass
class Registry:
    """A running registry: its folder, store, URL and the path of its root certificate."""

    folder: Path
    store: RegistryStore
    server: RegistryServer

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def root(self) -> Path:
        return self.folder / "keys" / "registry-ca.pem"

    def token(self, client_id: str = "ci", secret: str = CLIENT_SECRET, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        answer = httpx.post(f"{self.url}/oauth/token", data=form, auth=(client_id, secret))
        answer.raise_for_status()
        return str(answer.json()["access_token"])


def write_clients(path: Path, *, ttl: int = 3600, anonymous_read: bool = False, extra: str = "") -> Path:
    path.write_text(
        "clients:\n"
        "  - client_id: ci\n"
        "    client_secret: ${TEST_CI_SECRET}\n"
        "    scopes: [read, publish]\n"
        "  - client_id: reader\n"
        f"    client_secret: {READER_SECRET}\n"
        "    scopes: [read]\n"
        f"token_ttl: {ttl}\n"
        f"anonymous_read: {'true' if anonymous_read else 'false'}\n" + extra
    )
    return path


@contextmanager
def running_registry(folder: Path, *, ttl: int = 3600, anonymous_read: bool = False, extra: str = "",
                     trust_developer: bool = True, **store_kwargs: object) -> Iterator[Registry]:  # fmt: skip
    """A registry server on 127.0.0.1:<free port> in a thread, stopped on exit.

    It trusts the developer CA of the current SYNAPSE_HOME for uploads; the current SYNAPSE_HOME trusts its
    index root.
    """
    os.environ["TEST_CI_SECRET"] = CLIENT_SECRET
    store = RegistryStore(folder, **store_kwargs)  # type: ignore[arg-type]
    if trust_developer:
        store.add_trusted_root(ensure_developer_key().ca_cert_path)
    settings = load_clients_file(write_clients(folder.parent / f"{folder.name}-clients.yaml", ttl=ttl,
                                               anonymous_read=anonymous_read, extra=extra))  # fmt: skip
    server = RegistryServer(create_app(store, settings)).start()
    registry = Registry(folder, store, server)
    assert cli(["keys", "trust", str(registry.root)]) == 0
    try:
        yield registry
    finally:
        server.stop()


def configure(home: Path, text: str) -> None:
    (home / "config").write_text(text)


def client_credentials_entry(registry: Registry, name: str = "corp", scope: str = "read publish") -> str:
    return (
        "registries:\n"
        f"  - name: {name}\n"
        f"    endpoint: {registry.url}\n"
        "    auth:\n"
        "      type: oauth2\n"
        f"      token_url: {registry.url}/oauth/token\n"
        "      client_id: ci\n"
        "      client_secret: ${TEST_CI_SECRET}\n"
        f"      scope: {scope}\n"
    )


def hand_zip(
    entries: list[tuple[str, bytes]], *, symlink: str | None = None, method: int = zipfile.ZIP_DEFLATED
) -> bytes:
    """A zip written entry by entry (names are not checked): the attacker's archive."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFLNK | 0o777 if name == symlink else stat.S_IFREG | 0o644) << 16
            info.compress_type = method
            zf.writestr(info, data)
    return buffer.getvalue()


def entries_of(archive: Path) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(archive) as zf:
        return [(i.filename, zf.read(i)) for i in zf.infolist()]
