"""The GPU scope: NVIDIA files found on fake /dev trees (pure), bound only for ``gpu: true``, and a clear refusal
of ``gpu: true`` on a host without them (this one, under the real nsjail)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from synapse_nb.cli import main
from synapse_nb.errors import SandboxError
from synapse_nb.plugin import load
from synapse_nb.sandbox.gpu import GpuFiles, find_gpu, parse_ldconfig
from synapse_nb.sandbox.host import detect_host
from synapse_nb.sandbox.isolation import admit
from synapse_nb.sandbox.jail import build_jail
from synapse_nb.sandbox.policy import SandboxPolicy

from .network_helpers import write_network_plugin
from .sandbox_helpers import require_nsjail
from .test_sandbox_jail import HOST, LAYOUT

LDCONFIG = """\
1234 libs found in cache `/etc/ld.so.cache'
\tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1
\tlibnvidia-ml.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1
\tlibnvidia-ptxjitcompiler.so.1 (libc6,x86-64) => /opt/driver/libnvidia-ptxjitcompiler.so.1
\tlibcudart.so.12 (libc6,x86-64) => /usr/local/cuda/lib64/libcudart.so.12
\tlibc.so.6 (libc6,x86-64, OS ABI: Linux 3.2.0) => /lib/x86_64-linux-gnu/libc.so.6
"""


def fake_dev(root: Path, names: list[str]) -> Path:
    dev = root / "dev"
    dev.mkdir(parents=True)
    for name in names:
        path = dev / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    return dev


def test_device_nodes_of_the_nvidia_driver_are_found_and_nothing_else(tmp_path: Path) -> None:
    dev = fake_dev(
        tmp_path,
        ["null", "nvme0", "nvidia0", "nvidia1", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset",
         "nvidia-smi", "nvidiafoo", "nvidia-caps/nvidia-cap1", "nvidia-caps/nvidia-cap2"],
    )  # fmt: skip
    files = find_gpu(dev)
    assert [p.relative_to(dev).as_posix() for p in files.devices] == [
        "nvidia-caps/nvidia-cap1",
        "nvidia-caps/nvidia-cap2",
        "nvidia-modeset",
        "nvidia-uvm",
        "nvidia-uvm-tools",
        "nvidia0",
        "nvidia1",
        "nvidiactl",
    ]
    assert files.available
    assert files.describe().startswith("2 NVIDIA GPU(s)")


def test_driver_libraries_come_from_ldconfig_and_driver_dirs_but_not_the_cuda_toolkit(tmp_path: Path) -> None:
    dev = fake_dev(tmp_path, ["nvidia0", "nvidiactl"])
    extra = tmp_path / "nvidia" / "lib64"
    extra.mkdir(parents=True)
    (extra / "libnvidia-encode.so.535.104").write_text("")
    (extra / "libcudnn.so.8").write_text("")
    files = find_gpu(dev, ldconfig_output=LDCONFIG, driver_dirs=[extra, tmp_path / "missing"])
    assert [str(p) for p in files.libraries] == [
        "/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1",
        "/opt/driver/libnvidia-ptxjitcompiler.so.1",
        str(extra / "libnvidia-encode.so.535.104"),
    ]


def test_without_device_nodes_there_is_no_gpu_whatever_ldconfig_says(tmp_path: Path) -> None:
    files = find_gpu(fake_dev(tmp_path, ["null", "zero"]), ldconfig_output=LDCONFIG)
    assert files == GpuFiles()
    assert not files.available
    assert files.describe() == "no NVIDIA device nodes (/dev/nvidia*)"
    assert not find_gpu(fake_dev(tmp_path / "x", ["nvidia-uvm"])).available  # no control node, no GPU node


def test_parse_ldconfig_keeps_paths_of_driver_libraries_only() -> None:
    assert [p.name for p in parse_ldconfig(LDCONFIG)] == [
        "libcuda.so.1",
        "libnvidia-ml.so.1",
        "libnvidia-ptxjitcompiler.so.1",
    ]


GPU_HOST = dataclasses.replace(
    HOST,
    gpu=GpuFiles(
        devices=(Path("/dev/nvidia0"), Path("/dev/nvidiactl"), Path("/dev/nvidia-uvm")),
        libraries=(Path("/usr/lib/x86_64-linux-gnu/libcuda.so.1"), Path("/usr/local/nvidia/lib64/libcuda.so.1")),
        tools=(Path("/usr/bin/nvidia-smi"),),
    ),
)


def test_gpu_false_binds_no_nvidia_file_even_on_a_gpu_host() -> None:
    mounts = build_jail(SandboxPolicy(gpu=False), LAYOUT, GPU_HOST).mounts()
    assert not [m for m in mounts if "nvidia" in m["dst"] or "libcuda" in m["dst"]]
    assert sorted(m["dst"] for m in mounts if m["dst"].startswith("/dev/")) == [
        "/dev/null",
        "/dev/urandom",
        "/dev/zero",
    ]


def test_gpu_true_binds_device_nodes_read_write_and_driver_files_read_only() -> None:
    mounts = {m["dst"]: m for m in build_jail(SandboxPolicy(gpu=True), LAYOUT, GPU_HOST).mounts()}
    for dev in ("/dev/nvidia0", "/dev/nvidiactl", "/dev/nvidia-uvm"):
        assert mounts[dev]["rw"] is True
    assert mounts["/usr/local/nvidia/lib64/libcuda.so.1"]["rw"] is False
    assert mounts["/usr/bin/nvidia-smi"]["rw"] is False
    # Already visible through the read-only /usr/lib bind: not mounted twice.
    assert "/usr/lib/x86_64-linux-gnu/libcuda.so.1" not in mounts


def test_gpu_true_is_admitted_only_where_a_gpu_exists() -> None:
    runnable = Path("/bin/true")  # admission only checks that an nsjail binary is there and executable
    assert admit(dataclasses.replace(GPU_HOST, nsjail=runnable), SandboxPolicy(gpu=True)) == "nsjail-nocgroup"
    with pytest.raises(
        SandboxError, match=r"asks for a GPU \(system_resources.gpu: true\) but this host has no NVIDIA"
    ):
        admit(dataclasses.replace(HOST, nsjail=runnable), SandboxPolicy(gpu=True), plugin="needs-gpu")


def test_a_gpu_false_jail_shows_no_nvidia_device(tmp_path: Path) -> None:
    require_nsjail()
    body = "return {'dev': sorted(os.listdir('/dev'))}"
    plugin = load(write_network_plugin(tmp_path / "nogpu", body, [], name="no-gpu"))
    try:
        assert plugin.run({}) == {"dev": ["null", "urandom", "zero"]}
    finally:
        plugin.teardown()


def test_gpu_true_on_a_host_without_one_fails_with_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    require_nsjail()
    body = "return {'dev': sorted(os.listdir('/dev'))}"
    folder = write_network_plugin(tmp_path / "gpu", body, [], name="wants-gpu", gpu=True)
    if detect_host().gpu.available:  # a GPU runner: the devices are there
        plugin = load(folder)
        try:
            assert "nvidiactl" in plugin.run({})["dev"]
        finally:
            plugin.teardown()
        return
    with pytest.raises(SandboxError) as info:
        load(folder)
    assert info.value.exit_code == 8
    assert str(info.value) == (
        "wants-gpu: asks for a GPU (system_resources.gpu: true) but this host has no NVIDIA device nodes "
        "(/dev/nvidia*); run it on a host with an NVIDIA GPU and driver, or set gpu: false"
    )
    assert main(["plugin", "run", str(folder), "--input", "{}", "--json"]) == 8
    captured = capsys.readouterr()
    assert json.loads(captured.out)["error"]["code"] == "sandbox"
    assert captured.err.startswith("error: wants-gpu: asks for a GPU")
