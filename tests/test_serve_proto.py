"""The committed protobuf code is what grpcio-tools generates from the committed .proto (`make proto`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "synapse_nb" / "serve" / "proto"
GENERATED = ["synapse/v1/plugin_host_pb2.py", "synapse/v1/plugin_host_pb2.pyi"]


def test_regenerating_from_the_proto_gives_the_committed_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT), f"--python_out={tmp_path}",
         f"--pyi_out={tmp_path}", "synapse/v1/plugin_host.proto"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    for name in GENERATED:
        assert (tmp_path / name).read_bytes() == (ROOT / name).read_bytes(), f"{name} is stale: run make proto"


def test_the_generated_module_describes_the_plugin_host_service() -> None:
    from synapse_nb.serve.proto.synapse.v1 import plugin_host_pb2

    service = plugin_host_pb2.DESCRIPTOR.services_by_name["PluginHost"]
    assert [m.name for m in service.methods] == ["Invoke", "InvokeBatch", "ListPlugins"]
    assert service.full_name == "synapse.v1.PluginHost"
