"""gunicorn's gthread worker, with every read and write on a connection bounded in time.

gthread reads a request's line and headers in blocking mode with no deadline: a client that
sends half a request line holds a worker thread for good (tests/test_chalice_local.py). Here a
connection's socket, whenever gthread makes it blocking, gets REQUEST_READ_TIMEOUT instead, the
bound devstack/chalice_local.py gives `chalice local` (StreamRequestHandler.timeout).
"""
from __future__ import annotations

import socket

from gunicorn.workers.gthread import ThreadWorker

from chalicelib.settings import load_settings


class BoundedSocket(socket.socket):
    """A socket whose blocking mode waits at most `timeout` s for each read or write."""

    bound: float = 30.0

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(self.bound)
        else:
            super().setblocking(False)


class BoundedThreadWorker(ThreadWorker):

    def init_process(self) -> None:
        BoundedSocket.bound = load_settings().request_read_timeout
        super().init_process()

    def handle(self, conn):  # type: ignore[no-untyped-def]
        if not isinstance(conn.sock, BoundedSocket) and isinstance(conn.sock, socket.socket):
            plain = conn.sock
            conn.sock = BoundedSocket(plain.family, plain.type, plain.proto, fileno=plain.detach())
        return super().handle(conn)
