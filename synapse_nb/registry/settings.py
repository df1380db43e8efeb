"""Which registries a user has: the config's ``registries`` list, the built-in ``public`` one, and their auth.

A registry entry is the spec's block::

    registries:
      - name: corporate-registry
        endpoint: https://plugins.acme.com
        auth: {type: oauth2, token: ${SECURE_STORE_KEY}}                      # a static bearer token, or
        # auth: {type: oauth2, token_url: https://idp/token, client_id: ci,  # the client-credentials grant
        #        client_secret: ${CI_SECRET}, scope: "read publish"}

``${VAR}`` is expanded only when the value is used. Entries come from ``$SYNAPSE_HOME/config`` (trusted) or a
project's ``.synapse/config`` (not trusted: anyone who can write the project folder chose them). A project entry
that carries credentials is used only after ``synapse-cli registry login NAME`` approved exactly that entry on
this machine, so that a cloned repository cannot ship ``token: ${SOME_SECRET}`` with its own endpoint and
collect the secret. Bearer credentials are never sent over plain HTTP except to a loopback address.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from ..config import Config, expand_env, load_config
from ..errors import RegistryError, UsageError
from ..paths import atomic_write, synapse_home

__all__ = [
    "PUBLIC",
    "RegistryConfig",
    "approve",
    "check_transport",
    "configured_registries",
    "get_registry",
    "is_loopback",
    "registry_dir",
]

PUBLIC = "public"
Source = Literal["home", "project", "builtin"]


def registry_dir(name: str | None = None) -> Path:
    """``$SYNAPSE_HOME/registry`` (or the folder of one registry's cached index, state and token)."""
    base = synapse_home() / "registry"
    return base if name is None else base / name


def is_loopback(host: str) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1)."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def check_transport(url: str, *, registry: str, what: str = "credentials") -> None:
    """Refuse to send bearer credentials over plain HTTP to anything but a loopback address (exit 9)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https":
        return
    if parts.scheme == "http" and is_loopback(parts.hostname or ""):
        return
    raise RegistryError(
        f"registry {registry!r}: refusing to send {what} over plain {parts.scheme or '?'}:// to "
        f"{parts.hostname!r}; use an https:// endpoint (plain HTTP is allowed only for loopback addresses)"
    )


@dataclass(frozen=True)
class RegistryConfig:
    """One configured registry. ``auth`` holds the raw values (``${VAR}`` unexpanded)."""

    name: str
    endpoint: str
    auth: dict[str, str] | None = None
    source: Source = "home"

    @property
    def kind(self) -> str:
        """``none``, ``token`` (static bearer) or ``client_credentials``."""
        if not self.auth:
            return "none"
        return "token" if "token" in self.auth else "client_credentials"

    def entry(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "endpoint": self.endpoint}
        if self.auth:
            out["auth"] = dict(self.auth)
        return out

    def fingerprint(self) -> str:
        """sha256 of the entry as written: what ``registry login`` approves for a project entry."""
        return hashlib.sha256(json.dumps(self.entry(), sort_keys=True).encode()).hexdigest()

    def expanded(self, key: str) -> str:
        """An auth value with ``${VAR}`` replaced from the environment (ConfigError naming a missing one)."""
        if not self.auth or key not in self.auth:
            raise UsageError(f"registry {self.name!r} has no auth.{key}")
        return expand_env(self.auth[key], where=f"registry {self.name!r} auth.{key}")

    def describe_auth(self) -> str:
        """The auth without any secret: variable names are shown, literal secrets are not."""
        if not self.auth:
            return "none"
        if "token" in self.auth:
            return f"oauth2 static token ({_describe_secret(self.auth['token'])})"
        scope = f", scope {self.auth['scope']!r}" if self.auth.get("scope") else ""
        return (
            f"oauth2 client credentials (client {self.auth.get('client_id')!r} at {self.auth.get('token_url')}, "
            f"secret {_describe_secret(self.auth.get('client_secret', ''))}{scope})"
        )

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "endpoint": self.endpoint, "auth": self.describe_auth(), "source": self.source}


def _describe_secret(value: str) -> str:
    stripped = value.strip()
    if stripped.startswith("${") and stripped.endswith("}") and stripped.count("${") == 1:
        return stripped
    return "literal value, hidden"


def _home_entries() -> list[dict[str, Any]]:
    """The registries written in ``$SYNAPSE_HOME/config`` itself (load_config has validated that file)."""
    import yaml

    path = synapse_home() / "config"
    try:
        data = yaml.safe_load(path.read_bytes())
    except (OSError, yaml.YAMLError):
        return []
    entries = data.get("registries") if isinstance(data, dict) else None
    return list(entries) if isinstance(entries, list) else []


def configured_registries(config: Config | None = None) -> list[RegistryConfig]:
    """The registries of the merged configuration, in order, with where each one came from."""
    data = (config or load_config()).data
    home = _home_entries()
    out = []
    for entry in data.get("registries", []):
        if entry["name"] == PUBLIC:
            raise UsageError(f"registry name {PUBLIC!r} is reserved for the built-in public index; rename it")
        source: Source = "home" if entry in home else "project"
        out.append(RegistryConfig(entry["name"], entry["endpoint"].rstrip("/"), entry.get("auth"), source))
    return out


def get_registry(name: str, config: Config | None = None) -> RegistryConfig:
    """The configured registry called ``name`` (UsageError listing the known ones)."""
    registries = configured_registries(config)
    for registry in registries:
        if registry.name == name:
            return registry
    known = ", ".join([PUBLIC, *(r.name for r in registries)])
    raise UsageError(f"no registry named {name!r} (configured: {known}); add one with `synapse-cli registry add`")


def _approved_path() -> Path:
    return registry_dir() / "approved.json"


def _approved() -> dict[str, str]:
    try:
        data = json.loads(_approved_path().read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def is_approved(registry: RegistryConfig) -> bool:
    """Home entries always are; project entries once ``registry login`` approved this exact entry."""
    return registry.source != "project" or _approved().get(registry.name) == registry.fingerprint()


def approve(registry: RegistryConfig) -> None:
    """Record that the user approved sending this entry's credentials to its endpoint."""
    approved = _approved()
    approved[registry.name] = registry.fingerprint()
    registry_dir().mkdir(parents=True, exist_ok=True)
    atomic_write(_approved_path(), json.dumps(approved, indent=2, sort_keys=True).encode(), 0o600)


def require_approval(registry: RegistryConfig) -> None:
    """RegistryError (exit 9) when a project entry's credentials have not been approved on this machine."""
    if registry.auth and not is_approved(registry):
        raise RegistryError(
            f"registry {registry.name!r} comes from a project's .synapse/config and would send "
            f"{registry.describe_auth()} to {registry.endpoint}; approve this entry once with "
            f"`synapse-cli registry login {registry.name}` (needed again whenever the entry changes)"
        )


def add_registry(name: str, endpoint: str, auth: dict[str, str] | None) -> Path:
    """Append an entry to ``$SYNAPSE_HOME/config`` (validated like the rest of the file); returns the file."""
    import yaml

    from ..config import ConfigError

    path = synapse_home() / "config"
    try:
        data = yaml.safe_load(path.read_bytes()) or {}
    except FileNotFoundError:
        data = {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot update it ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: configuration must be a mapping of sections")
    registries = data.setdefault("registries", [])
    if name == PUBLIC or any(isinstance(r, dict) and r.get("name") == name for r in registries):
        raise UsageError(f"a registry named {name!r} already exists; choose another name")
    entry: dict[str, Any] = {"name": name, "endpoint": endpoint}
    if auth:
        entry["auth"] = auth
    registries.append(entry)
    text = yaml.safe_dump(data, sort_keys=False).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = path.read_bytes() if path.exists() else None
    atomic_write(path, text, 0o600)
    try:
        load_config()
    except UsageError:
        if previous is None:
            path.unlink()
        else:
            atomic_write(path, previous, 0o600)
        raise
    return path
