"""64 concurrent clients x 200 requests against a served echo plugin: every request answered exactly once."""

from __future__ import annotations

import collections
import concurrent.futures
from pathlib import Path

import pytest

import synapse_nb

from .serve_helpers import CliServer, make_echo

CLIENTS = 64
REQUESTS = 200


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_every_request_of_64_concurrent_clients_is_answered_once_with_its_own_result(
    tmp_path: Path, protocol: str
) -> None:
    echo = make_echo(tmp_path)
    with CliServer([str(echo), f"--{protocol}", "127.0.0.1:0"]) as server:
        handles = [synapse_nb.connect(server.urls[protocol], timeout=60) for _ in range(CLIENTS)]

        def client(c: int) -> list[tuple[int, int]]:
            got = []
            for i in range(REQUESTS):
                answer = handles[c].run({"client": c, "request": i, "pad": "x" * (i % 17)})
                assert answer == {"client": c, "request": i, "pad": "x" * (i % 17)}  # no result crossed requests
                got.append((answer["client"], answer["request"]))
            return got

        with concurrent.futures.ThreadPoolExecutor(CLIENTS) as pool:
            answers = [pair for f in [pool.submit(client, c) for c in range(CLIENTS)] for pair in f.result()]
        for handle in handles:
            handle.close()
        counts = collections.Counter(answers)
        assert len(answers) == CLIENTS * REQUESTS
        assert set(counts.values()) == {1}
        assert set(counts) == {(c, i) for c in range(CLIENTS) for i in range(REQUESTS)}
        assert server.stop() == 0
