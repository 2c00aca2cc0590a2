"""Reaching a Ray cluster: its address, whether it answers, whether it can run a study."""

from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Any

from hpo.exceptions import HpoError

__all__ = ["gist", "host_port", "import_ray", "pickle_by_value", "probe", "shareable_url"]

log = logging.getLogger("hpo")

CLUSTER_HELP = "start one with `ray start --head`, or check the address"


def shareable_url(url: str) -> str:
    """The study's storage URL as workers must open it (an absolute SQLite path).

    Raises:
        HpoError: the study lives in memory, which no other process can reach.
    """
    if url in ("sqlite://", "sqlite:///:memory:"):
        raise HpoError(
            "an in-memory study cannot be shared with Ray workers; give it a storage: "
            "sqlite:///hpo.db (one machine) or postgresql://USER@HOST/DB (a cluster)."
        )
    if url.startswith("sqlite"):
        scheme, rest = url.split("://", 1)
        path = rest[1:] if rest.startswith("/") else rest
        return f"{scheme}:///{os.path.abspath(os.path.expanduser(path))}"
    return url


def host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of a ``HOST:PORT`` or ``ray://HOST:PORT`` address; None for auto.

    Raises:
        HpoError: the address has neither form.
    """
    if address == "auto":
        return None
    rest = address[len("ray://") :] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit() or "/" in rest or not 0 < int(port) < 65536:
        raise HpoError(
            "the Ray address must be auto, HOST:PORT (the head's GCS port, 6379 by default) "
            f"or ray://HOST:PORT (its client port, 10001), got {address!r}."
        )
    return host.strip("[]"), int(port)


# HTTP/2's client connection preface and an empty SETTINGS frame: how a gRPC client opens.
_H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def probe(address: str, timeout: float = 5.0) -> None:
    """Fail at once when nothing listens at the address, or when what listens is no Ray
    head: Ray itself retries a dead GCS address for minutes before it gives up (14 min
    measured here), and hangs as long on a port where, say, a web server listens (issue 17).

    Both of a head's ports (the GCS, and the client server behind ``ray://``) speak gRPC, so
    they answer HTTP/2's connection preface with a SETTINGS frame; anything else does not.
    """
    hp = host_port(address)
    if hp is None:
        return
    try:
        with socket.create_connection(hp, timeout=timeout) as conn:
            conn.settimeout(timeout)
            reply = b""
            try:
                conn.sendall(_H2_PREFACE)
                while len(reply) < 9:
                    chunk = conn.recv(9 - len(reply))
                    if not chunk:
                        break
                    reply += chunk
            except TimeoutError:
                pass
    except OSError as e:
        raise HpoError(
            f"cannot connect to the Ray cluster at {address!r}: nothing answers at "
            f"{hp[0]}:{hp[1]} ({e.strerror or type(e).__name__}); {CLUSTER_HELP}."
        ) from None
    if len(reply) < 9 or reply[3] != 0x04:  # byte 3 of a frame header: its type (4: SETTINGS)
        heard = (
            f"it answered {reply[:12].decode('latin-1')!r}..."
            if reply.startswith(b"HTTP/")
            else "it does not answer as a Ray head does"
            if reply
            else f"it sent nothing back within {timeout:g} s"
        )
        raise HpoError(
            f"cannot connect to the Ray cluster at {address!r}: something listens at "
            f"{hp[0]}:{hp[1]}, but it is not a Ray head ({heard}); give the head's GCS "
            "port (6379 by default) or ray://HOST:10001."
        )


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HpoError(
            "parallel trials need Ray, which is not installed: pip install 'hpo[ray]'."
        ) from None
    return ray


def pickle_by_value(ray: Any, objective: Any) -> None:
    """Ship the objective's own module by value when workers may not be able to import it
    (a script or a module in the current folder, not an installed package)."""
    module = sys.modules.get(getattr(objective, "__module__", "") or "")
    if module is None or module.__name__ == "__main__" or module.__name__.startswith("hpo"):
        return
    path = getattr(module, "__file__", None) or ""
    if "site-packages" in path or "dist-packages" in path:
        return
    try:
        ray.cloudpickle.register_pickle_by_value(module)
    except Exception as e:
        log.debug("cannot pickle %s by value: %s", module.__name__, e)


def gist(text: str) -> str:
    """The last non-empty line of a message or traceback: where the reason is."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else text
