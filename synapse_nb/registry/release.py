"""Maintainer script: rebuild and re-sign the public index shipped in the package.

::

    python -m synapse_nb.registry.release --key DIR [--years N]

``DIR`` holds the project's release identity (``project-ca.key.pem``, ``project-ca.pem``, ``project.key.pem``,
``project.pem``: see :mod:`.pki`); it is created on first use and must never be committed (keep it offline).
Every source plugin (``public/src/*`` and the spec's ``examples/sentiment-analyzer``) is copied, signed with
the project key, packed into ``public/archives/NAME-VERSION.synapse``; then ``public/index.json`` is written
with the next index version and an expiry of ``--years`` (default 3, capped by the certificate), signed by
the same key, and ``public/project-ca.pem`` is refreshed. Only public material is written into the package.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
from pathlib import Path

from ..signing.certs import subject, to_pem, utc
from ..signing.trust import TrustStore
from .archive import archive_name, pack
from .index import Index, PluginEntry, Release, sign_index
from .pki import ensure_identity
from .public import INDEX_FILE, PROJECT_CA, PUBLIC_DIR

__all__ = ["SOURCES", "main", "release"]

EXAMPLES = PUBLIC_DIR.parent.parent / "examples"
SOURCES = [EXAMPLES / "sentiment-analyzer", *sorted(p for p in (PUBLIC_DIR / "src").iterdir() if p.is_dir())]


def _previous_version() -> int:
    try:
        envelope = json.loads(INDEX_FILE.read_bytes())
        import base64

        return int(json.loads(base64.b64decode(envelope["payload"]))["version"])
    except (OSError, ValueError, KeyError):
        return 0


def release(key_dir: Path, *, years: int = 3, now: dt.datetime | None = None) -> Index:
    """Sign, pack and index every source plugin; returns the new index."""
    from ..signing import sign_folder

    moment = utc(now).replace(microsecond=0)
    identity, created = ensure_identity(
        key_dir, "project", "synapse_nb public plugins", ca_days=365 * (years + 3), leaf_days=365 * (years + 1),
        now=moment,
    )  # fmt: skip
    if created:
        print(f"created the project release key in {key_dir} (keep it there; never commit it)", file=sys.stderr)
    trust = TrustStore(roots=(identity.ca,))
    archives = PUBLIC_DIR / "archives"
    if archives.exists():
        shutil.rmtree(archives)
    archives.mkdir(parents=True)
    plugins: dict[str, PluginEntry] = {}
    with tempfile.TemporaryDirectory(prefix="synapse-release-") as tmp:
        for source in SOURCES:
            folder = Path(tmp) / source.name
            shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
            sign_folder(folder, key_path=key_dir / "project.key.pem", cert_path=key_dir / "project.pem", now=moment)
            packed = pack(folder, archives, trust=trust, now=moment)
            from ..manifest import load_manifest

            manifest = load_manifest(folder)
            category = manifest.category or (manifest.interfaces[0].type if manifest.interfaces else None)
            url = f"archives/{archive_name(packed.name, packed.version)}"
            release_entry = Release(url, packed.sha256, packed.size, False, packed.platforms)
            plugins[packed.name] = PluginEntry(
                packed.name, {packed.version: release_entry}, category, manifest.tags, manifest.description
            )
            print(f"  {packed.name} {packed.version}: {packed.sha256[:16]} ({packed.size} bytes)", file=sys.stderr)
    not_after = identity.chain[0].not_valid_after_utc - dt.timedelta(days=1)
    expires = min(moment + dt.timedelta(days=365 * years), not_after)
    index = Index(_previous_version() + 1, expires, plugins)
    INDEX_FILE.write_bytes(sign_index(index, identity.key, identity.chain))
    PROJECT_CA.write_text(to_pem(identity.ca))
    print(
        f"public index v{index.version} signed by {subject(identity.chain[0])}, expires {expires:%Y-%m-%d}",
        file=sys.stderr,
    )
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m synapse_nb.registry.release", description=__doc__)
    parser.add_argument("--key", required=True, type=Path, help="folder of the project release key (not in git)")
    parser.add_argument("--years", type=int, default=3, help="how long the index stays valid (default 3)")
    args = parser.parse_args(argv)
    release(args.key, years=args.years)
    return 0


if __name__ == "__main__":
    sys.exit(main())
