"""Reusable helpers for ferryman's tests: starting real processes and polling with deadlines."""

from .procs import (
    HELLO,
    REPO_ROOT,
    VENV_BIN,
    ProcessGroup,
    free_port,
    http_request,
    poll_until,
    process_group,
    read_json_line,
    start_hello,
    stop_process,
    wait_port,
)

__all__ = [
    "HELLO",
    "REPO_ROOT",
    "VENV_BIN",
    "ProcessGroup",
    "free_port",
    "http_request",
    "poll_until",
    "process_group",
    "read_json_line",
    "start_hello",
    "stop_process",
    "wait_port",
]
