"""Run the app with uvicorn on a socket we bind ourselves (clear errors, port 0 works)."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

from hpo.exceptions import HpoError
from hpo.storage import Store

__all__ = ["check_bind", "is_loopback", "serve"]


def is_loopback(host: str) -> bool:
    """Whether every address ``host`` names is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def check_bind(host: str, token: str | None) -> None:
    """Refuse to listen beyond this machine without a token (anyone could write studies).

    Raises:
        HpoError: ``host`` is not a loopback address and no token is set.
    """
    if not token and not is_loopback(host):
        raise HpoError(
            f"refusing to listen on {host} without a token: anyone who reaches it could write "
            "to your studies; pass --token (or set HPO_TOKEN), or bind 127.0.0.1."
        )


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as e:
        raise HpoError(f"cannot listen on {host}: {e.strerror or e}.") from None
    family, kind, proto, _, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as e:
        sock.close()
        hint = "; pass another --port (0 picks a free one)" if e.errno == 98 else ""
        raise HpoError(f"cannot listen on {host}:{port}: {e.strerror or e}{hint}.") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(
    storage: str | Store | None,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    token: str | None = None,
    token_reads: bool = False,
    mlflow_ui: str | None = None,
    poll_interval: float = 2.0,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the dashboard and API until interrupted. ``on_ready(url)`` is called once the
    socket listens (with the real port when ``port`` is 0)."""
    check_bind(host, token)
    if token_reads and not token:
        raise HpoError("--token-reads needs a token: pass --token (or set HPO_TOKEN).")
    import uvicorn

    from hpo.server._app import create_app

    app = create_app(
        storage,
        token=token or None,
        token_reads=token_reads,
        mlflow_ui=mlflow_ui,
        poll_interval=poll_interval,
    )
    sock = _bind(host, port)
    bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    if on_ready is not None:
        on_ready(f"http://{shown}:{bound}")
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass  # uvicorn shut down cleanly, then passed Ctrl-C on: stopping is all it means
    finally:
        sock.close()
