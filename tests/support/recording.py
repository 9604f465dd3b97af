"""A client connection without sockets, for tests of the recording seam."""

from __future__ import annotations

from typing import Any


class RecordingClient:
    """The client side of an exchange, doing what a client connection does for the recording
    seam (status, body bytes, the head while observed, ``finish`` at the end), without sockets."""

    write_paused = False

    def __init__(self) -> None:
        self.ex: Any = None

    def send_info(self, status: int, headers: list[tuple[bytes, bytes]]) -> None: ...

    def send_head(self, status: int, headers: list[tuple[bytes, bytes]], length: int) -> None:
        self.ex.status = status
        if self.ex.obs is not None:
            self.ex.resp_headers, self.ex.resp_length = headers, length

    def send_data(self, data: bytes) -> None:
        self.ex.sent += len(data)

    def send_end(self, trailers: list[tuple[bytes, bytes]] | None) -> None:
        if self.ex.obs is not None:
            self.ex.obs.finish(self.ex, trailers)

    def abort(self) -> None: ...
    def pause_body(self) -> None: ...
    def resume_body(self) -> None: ...
    def start_tunnel(self, peer: object) -> None: ...
    def flush(self) -> None: ...
