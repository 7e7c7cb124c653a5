"""Running a node: the SCP, the check queue and the HTTP server together, until stopped."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
import socket
import sys
from collections.abc import Callable
from typing import Any

from rtcheck.serve import ServeError
from rtcheck.serve.node import Node, NodeConfig


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (only this machine can reach it)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_binding(config: NodeConfig) -> None:
    """Binding the HTTP side beyond loopback needs a token.

    Raises
    ------
    ServeError
        ``--http`` is not a loopback address and no token was given.
    """
    if not is_loopback(config.http_host) and not config.token:
        raise ServeError(f"--http {config.http_host}:{config.http_port}: serving beyond this "
                         "machine needs an access token (--token or RTCHECK_TOKEN)")


def bind_http(host: str, port: int) -> socket.socket:
    """The HTTP listening socket, bound here so that a port in use is one clear line.

    Raises
    ------
    ServeError
        The address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as exc:
        sock.close()
        raise ServeError(f"--http {host}:{port}: cannot listen ({exc.strerror or exc})") from exc
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def serve(config: NodeConfig, announce: Callable[[str], None] = lambda s: print(
        s, file=sys.stderr, flush=True)) -> None:
    """Run a node until SIGINT or SIGTERM (uvicorn's handlers stop the HTTP server; the
    SCP and the check queue are stopped after it).

    Raises
    ------
    ServeError
        Anything that stops the node from starting, in one line.
    """
    import uvicorn

    from rtcheck.serve.app import create_app
    from rtcheck.serve.scp import start_scp

    check_binding(config)
    logging.basicConfig(format="rtcheck serve: %(levelname)s: %(message)s",
                        level=logging.WARNING)
    sock = bind_http(config.http_host, config.http_port)
    node = Node(config)
    scp: Any = None
    try:
        summary = node.start()
        scp = start_scp(node)
        dicom_host, dicom_port = scp.server_address[:2]
        if node.config.dicom_port != dicom_port:  # --dicom-port 0: the port the system chose
            node.config = dataclasses.replace(node.config, dicom_port=dicom_port)
        http_host, http_port = sock.getsockname()[:2]
        announce(f"rtcheck serve: store {node.store.root} (start-up: {summary['indexed']} "
                 f"file(s) indexed, {summary['vanished']} vanished, {summary['temporary']} "
                 f"unfinished transfer(s) removed, {summary['rerun']} plan(s) to check)")
        announce(f"rtcheck serve: ready: dicom={config.ae_title}@{dicom_host}:{dicom_port} "
                 f"http=http://{http_host}:{http_port}/")
        server = uvicorn.Server(uvicorn.Config(create_app(node), log_level="warning",
                                               access_log=False, lifespan="off"))
        server.run(sockets=[sock])
    finally:
        if scp is not None:
            scp.shutdown()
        node.stop()
        sock.close()
