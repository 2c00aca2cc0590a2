"""Real processes for the multi-process tests: a loopback-only network namespace, a Ray
cluster of separate `ray start` nodes inside it, and a real `mlflow server`.

Ray binds its nodes to the machine's routable interface even when told 127.0.0.1; inside a
network namespace that has only loopback it uses 127.0.0.1, so test traffic stays on
loopback (see design.md). Every process of a test cluster lives in the namespace, which is
how it is cleaned up: `ip netns pids` lists them all, Ray workers included (they run in
process groups of their own, so killing a process group would miss them).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

PYTHON = sys.executable
RAY = str(Path(sys.executable).with_name("ray"))
PG_SOCKET = "/var/run/postgresql"


def netns_reason() -> str | None:
    """Why a network namespace can't be made here (None when it can)."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("ip") is None:
        return "no `ip` command (iproute2)"
    return None


class NetNS:
    """A network namespace holding only a loopback interface, and the processes in it."""

    def __init__(self) -> None:
        self.name = f"hpo-{os.getpid()}-{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(self.cmd(["ip", "link", "set", "lo", "up"]), check=True)

    def cmd(self, args: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *args]

    def pids(self) -> list[int]:
        out = subprocess.run(
            ["ip", "netns", "pids", self.name], capture_output=True, text=True
        ).stdout
        return [int(p) for p in out.split()]

    def kill_all(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.2)

    def close(self) -> None:
        self.kill_all()
        subprocess.run(["ip", "netns", "del", self.name], check=False)


def socket_url(tcp_url: str) -> str:
    """A PostgreSQL URL on 127.0.0.1:5432 rewritten for the Unix socket (usable in a netns)."""
    scheme, rest = tcp_url.split("://", 1)
    user, hostpart = rest.split("@", 1)
    db = hostpart.split("/", 1)[1].split("?", 1)[0]
    return f"{scheme}://{user}@/{db}?host={PG_SOCKET}"


class RayCluster:
    """A head node and more nodes, each its own `ray start --block` process in ``ns``.

    ``nodes`` describes each node: ``cpus``, optional ``gpus`` (declared, not real: Ray
    schedules on them and sets CUDA_VISIBLE_DEVICES as for real cards) and ``hostname`` (the
    node then runs in a UTS namespace of its own, so it looks like another machine).
    """

    def __init__(self, ns: NetNS, logs: Path, nodes: list[dict[str, Any]], **env: str) -> None:
        self.ns = ns
        self.logs = logs
        self.nodes = nodes
        self.port = 6380
        self.address = f"127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "RAY_USAGE_STATS_ENABLED": "0",
            # Ray 2.60 authenticates drivers and nodes with a shared token.
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": secrets.token_hex(16),
            "HPO_OFFLINE": "1",
            **env,
        }
        self.procs: list[subprocess.Popen[bytes]] = []

    def _start_node(self, i: int, spec: dict[str, Any]) -> None:
        args = [RAY, "start", "--block", "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
        if i == 0:
            args += ["--head", "--port", str(self.port), "--include-dashboard", "false"]
        else:
            args += ["--address", self.address]
        args += ["--num-cpus", str(spec.get("cpus", 1))]
        if spec.get("gpus"):
            args += ["--num-gpus", str(spec["gpus"])]
        if spec.get("hostname"):
            quoted = " ".join(f"'{a}'" for a in args)
            args = ["unshare", "--uts", "sh", "-c", f"hostname {spec['hostname']} && exec {quoted}"]
        log = open(self.logs / f"ray-node-{i}.log", "wb")  # noqa: SIM115 - lives with the node
        self.procs.append(
            subprocess.Popen(
                self.ns.cmd(args),
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )

    def start(self, timeout: float = 120.0) -> None:
        self._start_node(0, self.nodes[0])
        self._wait(1, timeout)
        for i, spec in enumerate(self.nodes[1:], start=1):
            self._start_node(i, spec)
        self._wait(len(self.nodes), timeout)

    def _wait(self, n: int, timeout: float) -> None:
        code = (
            f"import ray, json; ray.init(address={self.address!r}, logging_level='ERROR');"
            "print(json.dumps(sum(1 for x in ray.nodes() if x['Alive'])))"
        )
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"a Ray node exited; see {self.logs}")
            r = self.python(["-c", code], timeout=60)
            if r.returncode == 0 and json.loads(r.stdout.strip().splitlines()[-1]) >= n:
                return
            last = r.stderr[-2000:]
            time.sleep(1.0)
        raise RuntimeError(f"Ray cluster did not reach {n} node(s) in {timeout} s: {last}")

    def python(
        self, args: list[str], timeout: float = 300, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.ns.cmd([PYTHON, *args]),
            env=kw.pop("env", self.env),
            capture_output=True,
            text=True,
            timeout=timeout,
            **kw,
        )


class MlflowServer:
    """A real `mlflow server` inside ``ns`` on 127.0.0.1:5000, its store in ``root``."""

    def __init__(self, ns: NetNS, root: Path, env: dict[str, str]) -> None:
        self.ns = ns
        self.root = root
        self.url = "http://127.0.0.1:5000"
        log = open(root / "mlflow-server.log", "wb")  # noqa: SIM115 - lives with the server
        self.proc = subprocess.Popen(
            ns.cmd(
                [
                    PYTHON,
                    "-m",
                    "mlflow",
                    "server",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "5000",
                    "--workers",
                    "1",
                    "--backend-store-uri",
                    f"sqlite:///{root}/mlflow.db",
                    "--artifacts-destination",
                    str(root / "artifacts"),
                ]
            ),
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        code = (
            "import urllib.request as u, time\n"
            "for _ in range(240):\n"
            "    try:\n"
            f"        u.urlopen('{self.url}/health', timeout=2); break\n"
            "    except Exception: time.sleep(0.5)\n"
            "else: raise SystemExit(1)\n"
        )
        r = subprocess.run(ns.cmd([PYTHON, "-c", code]), capture_output=True, timeout=150)
        if r.returncode != 0:
            raise RuntimeError(f"mlflow server did not start; see {root / 'mlflow-server.log'}")

    def runs(self, experiment: str) -> list[dict[str, Any]]:
        """The experiment's runs (read in the namespace, where the server listens)."""
        code = (
            "import json, mlflow\n"
            f"c = mlflow.MlflowClient({self.url!r})\n"
            f"e = c.get_experiment_by_name({experiment!r})\n"
            "rs = c.search_runs([e.experiment_id], max_results=1000) if e else []\n"
            "print(json.dumps([{'tags': r.data.tags, 'status': r.info.status} for r in rs]))\n"
        )
        r = subprocess.run(
            self.ns.cmd([PYTHON, "-c", code]), capture_output=True, text=True, timeout=120
        )
        assert r.returncode == 0, r.stderr[-2000:]
        return list(json.loads(r.stdout.strip().splitlines()[-1]))
