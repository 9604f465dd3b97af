"""HTTP/2 DATA within the flow-control windows: the one send loop both HTTP/2 sides use
(the downstream server's responses and the upstream pool's request bodies)."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from h2.connection import H2Connection

if TYPE_CHECKING:
    from ferryman.http.exchange import Headers

__all__ = ["send_queued"]


def send_queued(h2: H2Connection, sid: int, buf: deque[bytes], end: tuple[Headers | None] | None) -> tuple[int, bool]:
    """Send ``buf``'s chunks on stream ``sid`` as far as the stream and connection windows and the
    peer's frame size allow (a chunk larger than that is split; its rest stays at the front).

    ``end`` is ``(trailers,)`` once the producer has ended: without trailers the last chunk carries
    END_STREAM (no empty DATA frame). Returns ``(bytes sent, whether END_STREAM was sent)``."""
    sent = 0
    max_frame = h2.max_outbound_frame_size
    while buf:
        window = h2.local_flow_control_window(sid)
        if window <= 0:
            break
        chunk = buf[0]
        n = min(window, max_frame, len(chunk))
        if n < len(chunk):
            h2.send_data(sid, chunk[:n])
            buf[0] = chunk[n:]
        else:
            buf.popleft()
            if not buf and end is not None and not end[0]:
                h2.send_data(sid, chunk, end_stream=True)
                return sent + n, True
            h2.send_data(sid, chunk)
        sent += n
    return sent, False
