"""Start the real `hpo dashboard` server for a benchmark (a subprocess on a free port)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def dashboard(storage: str, *args: str, timeout: float = 120.0) -> Iterator[str]:
    """``hpo dashboard --storage STORAGE --port 0 ARGS``; yields its base URL."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("HPO_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpo.cli", "dashboard", "--storage", storage, "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    try:
        deadline = time.monotonic() + timeout
        url = None
        seen = []
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                raise RuntimeError("hpo dashboard did not start:\n" + "".join(seen))
            seen.append(line)
            if line.startswith("hpo dashboard on "):
                url = line.split()[3].rstrip("/")
        if url is None:
            raise RuntimeError("hpo dashboard did not start in time:\n" + "".join(seen))
        # Keep reading its output so a chatty server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
        while True:
            try:
                urllib.request.urlopen(url + "/api/config", timeout=5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
