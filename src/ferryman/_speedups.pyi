# Types of the optional compiled module (src/ferryman/_speedups.c); see its docstrings.
from collections.abc import Callable
from typing import Any

def clf_lines(batch: list[tuple[Any, ...]], bit: int, offset: int, count: int,
              parts: dict[tuple[Any, ...], tuple[str, str]], make_parts: Callable[[tuple[Any, ...]], tuple[str, str]],
              stamp: Callable[[int], str], /) -> tuple[bytes, int, int]: ...
def json_lines(batch: list[tuple[Any, ...]], bit: int, offset: int, count: int, keep: int,
               start_clock: Callable[[int], tuple[str, str, str]], end_clock: Callable[[int], tuple[str, str, str]],
               headers: tuple[dict[bytes, tuple[str, int]], Callable[[bytes], tuple[str, int]]] | None,
               /) -> tuple[bytes, int, int]: ...
def metrics_add(batch: list[tuple[Any, ...]], bit: int, slots: dict[Any, list[Any]], width: int,
                bounds: tuple[int, ...], rare: bool, /) -> tuple[int, list[tuple[Any, ...]]]: ...

class Finisher:
    def __init__(self, mask: int, internal_mask: int, internal: set[str | None], pending: list[tuple[Any, ...]],
                 scan: int, websocket_bit: int, fallback: Callable[..., None], json: int = 0, /) -> None: ...
    def __call__(self, ex: Any, trailers: Any = None, status: int = 0, /) -> None: ...
