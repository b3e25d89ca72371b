"""The shared cache under real processes: a download killed mid-stream, two racing downloads."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from helpers.http_server import LoopbackServer

from siibrad.settings import Settings
from siibrad.store.fetch import HttpFetcher

FETCH_SCRIPT = """
import sys
from siibrad.settings import Settings
from siibrad.store.fetch import HttpFetcher
print(HttpFetcher(Settings.from_env()).fetch(sys.argv[1]), flush=True)
"""

BODY = bytes(range(256)) * 4096  # 1 MiB


def spawn(url: str) -> subprocess.Popen[str]:
    """A real process fetching ``url`` with the test's environment (its cache directory)."""
    return subprocess.Popen(
        [sys.executable, "-c", FETCH_SCRIPT, url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=dict(os.environ),
    )


def test_download_killed_midway_leaves_a_consistent_cache(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """SIGKILL during a download: nothing is published, and the next fetch completes cleanly."""
    url = http_server.add("/slow/map.bin", BODY)
    http_server.slow("/slow/map.bin", chunk_bytes=8192, delay_s=0.02)
    proc = spawn(url)
    try:
        assert http_server.wait_for(
            lambda: http_server.sent_bytes("/slow/map.bin") >= 64 * 1024, 60
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    fetcher = HttpFetcher(Settings.from_env())
    assert fetcher.cache.record(url) is None
    parts = list(fetcher.cache.temp_dir.glob(".part-*"))
    assert len(parts) == 1 and parts[0].stat().st_size < len(BODY)

    http_server.clear_faults()
    path = fetcher.fetch(url)
    assert path.read_bytes() == BODY
    assert not list(fetcher.cache.temp_dir.glob(".part-*"))  # the dead process's part is swept
    assert http_server.hits("/slow/map.bin") == 2


def test_two_processes_fetching_one_url_download_it_once(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """Two processes racing for one URL: the server sees one download, both get the file."""
    url = http_server.add("/slow/shared.bin", BODY)
    http_server.slow("/slow/shared.bin", chunk_bytes=32768, delay_s=0.03)
    first = spawn(url)
    assert http_server.wait_for(lambda: http_server.hits("/slow/shared.bin") == 1, 60)
    second = spawn(url)  # starts while the first one is still downloading
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    # stdout: structlog's default console lines, then the path on the last line.
    paths = {Path(out.strip().splitlines()[-1]) for out, _ in outputs}
    assert len(paths) == 1
    assert sum("fetch.done" in out for out, _ in outputs) == 1
    assert paths.pop().read_bytes() == BODY
    assert http_server.hits("/slow/shared.bin") == 1


MANY_SCRIPT = """
import hashlib, random, sys
from siibrad.settings import Settings
from siibrad.store.fetch import HttpFetcher
urls = sys.argv[2:]
random.Random(int(sys.argv[1])).shuffle(urls)
fetcher = HttpFetcher(Settings.from_env())
for url in urls:
    print(url, hashlib.sha256(fetcher.fetch(url).read_bytes()).hexdigest(), flush=True)
"""


def test_processes_sharing_the_cache_download_each_url_once(
    http_server: LoopbackServer, tmp_path: Path
) -> None:
    """Three processes fetching eight URLs in other orders: each downloaded once, all correct."""
    bodies = {f"/many/{i}.bin": bytes([i]) * (40_000 + i) for i in range(8)}
    urls = [http_server.add(path, body) for path, body in bodies.items()]
    for path in bodies:
        http_server.slow(path, chunk_bytes=10_000, delay_s=0.01)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MANY_SCRIPT, str(seed), *urls],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    expected = {
        http_server.url + path: hashlib.sha256(body).hexdigest() for path, body in bodies.items()
    }
    for out, _ in outputs:
        seen = dict(line.split(" ", 1) for line in out.splitlines() if line.startswith("http://"))
        assert seen == expected
    assert [http_server.hits(path) for path in bodies] == [1] * len(bodies)
    fetcher = HttpFetcher(Settings.from_env())
    assert sorted(r["url"] for r in fetcher.cache.entries()) == sorted(expected)
