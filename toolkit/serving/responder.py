"""A tiny HTTP responder that owns the listening socket while the model loads.

gunicorn binds only after ``model_fn`` has run in the master (preload), which can take minutes;
until then the platform would see "connection refused" and cannot tell a slow start from a dead
one. So ``optml serve`` binds the port itself within milliseconds of starting, answers every
request with 503 and a JSON reason from this stdlib-only thread, then hands the same socket to
gunicorn (``fd://``). Connections that arrive during the hand-over wait in the listen backlog;
none is refused. After a fatal start-up error it keeps answering 503 with that error.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import stat
import threading
from collections.abc import Callable

_HEADER_LIMIT = 64 * 1024
_IO_TIMEOUT = 2.0


def bind_listener(port: int, host: str = "0.0.0.0",  # noqa: S104 - the contract's 0.0.0.0:8080
                  backlog: int = 2048) -> socket.socket:
    """Bind and listen now; inheritable so gunicorn can adopt it by file descriptor."""

    def bind(sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))

    return _listening(socket.socket(socket.AF_INET, socket.SOCK_STREAM), bind, backlog)


def bind_unix_listener(path: str, backlog: int = 2048) -> socket.socket:
    """A listening Unix socket at ``path`` (a stale socket file there is replaced), open to any
    local user like the TCP port is: local mode's router may run as another uid than the
    container. Inheritable, like :func:`bind_listener`."""
    if os.path.exists(path) and stat.S_ISSOCK(os.lstat(path).st_mode):
        os.unlink(path)

    def bind(sock: socket.socket) -> None:
        sock.bind(path)
        os.chmod(path, 0o777)  # noqa: S103 - open to any local user, as the TCP port is

    return _listening(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), bind, backlog)


def _listening(sock: socket.socket, bind: Callable[[socket.socket], None],
               backlog: int) -> socket.socket:
    """``bind(sock)`` and listen; the socket is closed on any failure, and made inheritable on
    success (gunicorn adopts it by descriptor)."""
    try:
        bind(sock)
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


class PreBindResponder:
    """Answers 503 on ``listener`` in a background thread until :meth:`stop`."""

    def __init__(self, listener: socket.socket) -> None:
        self._listener = listener
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._answering: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._body = self._encode("service_unavailable", "the model is loading")

    @staticmethod
    def _encode(error: str, message: str) -> bytes:
        return json.dumps({"error": error, "message": message}).encode()

    def set_failed(self, message: str) -> None:
        """From now on every answer carries the fatal start-up error."""
        self._body = self._encode("model_load_failed", message)

    def start(self) -> PreBindResponder:
        self._thread = threading.Thread(target=self._serve, name="optml-prebind", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting and finish answers in progress; the socket stays open and listening."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            answering = list(self._answering)
        for thread in answering:
            thread.join(timeout=2 * _IO_TIMEOUT)
        self._listener.setblocking(True)

    def _serve(self) -> None:
        self._listener.setblocking(False)
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not selector.select(timeout=0.05):
                    continue
                try:
                    conn, _ = self._listener.accept()
                except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                    continue
                thread = threading.Thread(target=self._answer, args=(conn,), daemon=True,
                                          name="optml-prebind-conn")
                with self._lock:
                    self._answering.add(thread)
                thread.start()

    def _answer(self, conn: socket.socket) -> None:
        try:
            with conn:
                conn.setblocking(True)
                conn.settimeout(_IO_TIMEOUT)
                head = b""
                while b"\r\n\r\n" not in head and len(head) < _HEADER_LIMIT:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                body = self._body
                conn.sendall(b"HTTP/1.1 503 Service Unavailable\r\n"
                             b"Content-Type: application/json\r\n"
                             b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                             b"Retry-After: 1\r\nConnection: close\r\n\r\n" + body)
                conn.shutdown(socket.SHUT_WR)
                drained = 0
                while drained < _HEADER_LIMIT:  # let the client finish sending before close
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    drained += len(chunk)
        except OSError:
            pass
        finally:
            with self._lock:
                self._answering.discard(threading.current_thread())
