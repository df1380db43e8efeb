"""Local wheelhouses for environment tests: wheels written with zipfile, and sdists with an in-tree backend.

Nothing here needs an index or a network: a wheel is a zip with ``*.dist-info/{METADATA,WHEEL,RECORD}``, and
the sdists build with a PEP 517 backend that ships inside them (``backend-path = ["."]``, no build requires).
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import textwrap
import zipfile
from pathlib import Path

__all__ = ["make_sdist", "make_wheel", "sha256_of"]


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def sha256_of(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def make_wheel(
    dest: Path,
    name: str,
    version: str = "1.0",
    files: dict[str, str | bytes] | None = None,
    *,
    requires: tuple[str, ...] = (),
    compress: bool = True,
) -> Path:
    """Write ``{name}-{version}-py3-none-any.whl`` into ``dest``; ``files`` maps archive paths to contents.

    Without ``files``, the wheel holds a module ``{name}.py`` with ``VERSION = "{version}"``.
    """
    dest.mkdir(parents=True, exist_ok=True)
    dist = name.replace("-", "_")
    module = dist.lower()
    contents: dict[str, bytes] = {}
    for path, body in (files or {f"{module}.py": f'VERSION = "{version}"\n'}).items():
        contents[path] = body.encode() if isinstance(body, str) else body
    info = f"{dist}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {r}\n" for r in requires)
    contents[f"{info}/METADATA"] = metadata.encode()
    wheel = "Wheel-Version: 1.0\nGenerator: synapse-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    contents[f"{info}/WHEEL"] = wheel.encode()
    record = "".join(f"{p},{_record_hash(b)},{len(b)}\n" for p, b in contents.items()) + f"{info}/RECORD,,\n"
    contents[f"{info}/RECORD"] = record.encode()
    target = dest / f"{dist}-{version}-py3-none-any.whl"
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(target, "w", method) as zf:
        for path, body in contents.items():
            zf.writestr(path, body)
    return target


# A PEP 517 backend that runs setup.py (as setuptools would) and packs what it returns into a wheel.
BACKEND = """
import base64, hashlib, json, os, runpy, time, zipfile

NAME, VERSION = "{name}", "{version}"


def get_requires_for_build_wheel(config_settings=None):
    return []


def _hash(data):
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    time.sleep({sleep})
    seen = runpy.run_path("setup.py")["SEEN"]
    dist = NAME.replace("-", "_")
    info = f"{{dist}}-{{VERSION}}.dist-info"
    files = {{
        f"{{dist}}_seen.py": ("SEEN = " + repr(seen) + "\\n").encode(),
        f"{{info}}/METADATA": f"Metadata-Version: 2.1\\nName: {{NAME}}\\nVersion: {{VERSION}}\\n".encode(),
        f"{{info}}/WHEEL": b"Wheel-Version: 1.0\\nGenerator: spy\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
    }}
    record = "".join(f"{{p}},{{_hash(b)}},{{len(b)}}\\n" for p, b in files.items()) + f"{{info}}/RECORD,,\\n"
    files[f"{{info}}/RECORD"] = record.encode()
    filename = f"{{dist}}-{{VERSION}}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(wheel_directory, filename), "w") as zf:
        for path, body in files.items():
            zf.writestr(path, body)
    return filename
"""


def make_sdist(dest: Path, name: str, version: str, setup_py: str, *, sleep: float = 0.0) -> Path:
    """Write ``{name}-{version}.tar.gz``: an sdist whose build runs ``setup_py`` (which must define ``SEEN``).

    The built wheel holds a module ``{name}_seen`` with ``SEEN``: what the build saw, readable afterwards from
    the environment. ``sleep`` seconds pass before setup.py runs (to kill a build half-way).
    """
    dest.mkdir(parents=True, exist_ok=True)
    top = f"{name}-{version}"
    members = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        "pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n',
        "backend.py": BACKEND.format(name=name, version=version, sleep=sleep),
        "setup.py": textwrap.dedent(setup_py),
    }
    target = dest / f"{top}.tar.gz"
    with tarfile.open(target, "w:gz") as tar:
        for path, text in members.items():
            data = text.encode()
            member = tarfile.TarInfo(f"{top}/{path}")
            member.size = len(data)
            member.mode = 0o644
            tar.addfile(member, io.BytesIO(data))
    return target
