"""Plugin repository: signed archives, registries (client and server), OAuth2, and installed plugins.

::

    archive      NAME-VERSION.synapse: reproducible zip of a signed folder; safe, verified unpacking
    index        the registry index: plugins, versions, digests; signed like a plugin (DSSE)
    resolve      npm-style version ranges: resolve(versions, range_text)
    settings     configured registries (config `registries`), credentials approval, plain-HTTP refusal
    auth         client-side OAuth2: static bearer token or client credentials, cached and refreshed once
    cache        what the client remembers per registry: index, search rows, rollback state
    client       the HTTP client of one registry (httpx, with a transport seam)
    installed    $SYNAPSE_HOME/plugins: installed versions and the registry pin of each name
    operations   search / install / publish / yank across registries (the CLI and notebooks call these)
    public       the public index and archives shipped in the package
    store        a registry's storage: content-addressed blobs, catalog, signed index
    tokens       server-side OAuth2: token endpoint, clients file, JWT access tokens (Authlib)
    server       the registry's HTTP API (Starlette + uvicorn)
    compat       the compatibility check seam the server asks before accepting a version
    pki          signing identities (CA + code-signing certificate) for registries and releases
    release      maintainer script: rebuild and re-sign the public index

Nothing here is imported by ``import synapse_nb``; httpx, Starlette and uvicorn are imported only when used.
"""

from __future__ import annotations

from .archive import ArchiveError, ArchiveLimits, VerifiedArchive, open_archive, pack
from .installed import installed_plugin_folders
from .resolve import resolve

__all__ = [
    "ArchiveError",
    "ArchiveLimits",
    "VerifiedArchive",
    "installed_plugin_folders",
    "open_archive",
    "pack",
    "resolve",
]
