"""Structured log events: one JSON object per event, Traefik's field names, a stable ``event``."""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ferryman.observability import events
from ferryman.observability.logs import get_logger, reopen_log_files, setup_logging
from ferryman.static.models import Log


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    setup_logging(Log(level="INFO", format="json"), stream=stream)
    yield stream
    setup_logging(Log(level="ERROR"), stream=io.StringIO())


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_config_applied(captured: io.StringIO) -> None:
    events.config_applied(routers=3, disabled=1, seconds=0.012345, providers={"file": 1, "docker": 2},
                          services=2, middlewares=0)
    (ev,) = lines(captured)
    assert ev["message"] == "configuration applied" and ev["level"] == "info"
    assert ev["event"] == "config.applied" and ev["routers"] == 3 and ev["disabled"] == 1
    assert ev["compileSeconds"] == 0.0123 and ev["providers"] == ["docker", "file"]
    assert ev["services"] == 2 and ev["middlewares"] == 0


def test_router_disabled_and_warning(captured: io.StringIO) -> None:
    events.element_problem("router", "web@docker", "error", 'service "nope@docker" does not exist')
    events.element_problem("middleware", "auth@file", "warning", "deprecated option")
    disabled, warning = lines(captured)
    assert disabled == {**disabled, "level": "error", "event": "router.disabled", "routerName": "web@docker",
                        "providerName": "docker", "error": 'service "nope@docker" does not exist',
                        "message": 'router "web@docker": service "nope@docker" does not exist'}
    assert warning["level"] == "warn" and warning["event"] == "middleware.warning"
    assert warning["middlewareName"] == "auth@file" and warning["providerName"] == "file"


def test_provider_error(captured: io.StringIO) -> None:
    events.provider_error("file", "yaml: line 3: bad indentation")
    (ev,) = lines(captured)
    assert ev["event"] == "provider.error" and ev["providerName"] == "file"
    assert ev["error"] == "yaml: line 3: bad indentation" and ev["level"] == "error"


def test_certificate_events(captured: io.StringIO) -> None:
    expiry = datetime.datetime(2027, 2, 23, 12, 0, tzinfo=datetime.UTC)
    events.certificate_obtained("le", ["example.com", "www.example.com"], not_after=expiry)
    events.certificate_renewed("local", ["example.com"], not_after=expiry, provider="local.localCA")
    events.certificate_failed("le", ["example.com"], "rejectedIdentifier", renewal=True)
    obtained, renewed, failed = lines(captured)
    assert obtained["event"] == "certificate.obtained" and obtained["resolver"] == "le"
    assert obtained["providerName"] == "le.acme" and obtained["domains"] == ["example.com", "www.example.com"]
    assert obtained["notAfter"] == "2027-02-23T12:00:00Z" and obtained["level"] == "info"
    assert renewed["event"] == "certificate.renewed" and renewed["providerName"] == "local.localCA"
    assert failed == {**failed, "event": "certificate.failed", "level": "error", "error": "rejectedIdentifier",
                      "renewal": True, "message": "cannot renew certificate"}


def test_nothing_formatted_below_the_level() -> None:
    stream = io.StringIO()
    setup_logging(Log(level="ERROR", format="json"), stream=stream)
    try:
        events.config_applied(routers=1, disabled=0, seconds=0.0)
        assert stream.getvalue() == ""
    finally:
        setup_logging(Log(level="ERROR"), stream=io.StringIO())


def test_log_file_reopened_after_rotation(tmp_path: Path) -> None:
    path = tmp_path / "ferryman.log"
    setup_logging(Log(level="INFO", format="json", file_path=str(path)))
    try:
        log = get_logger("rotation")
        log.info("before")
        path.rename(path.with_suffix(".log.1"))
        reopen_log_files()
        log.info("after")
        assert "after" in path.read_text() and "before" not in path.read_text()
        assert "before" in path.with_suffix(".log.1").read_text()
    finally:
        setup_logging(Log(level="ERROR"), stream=io.StringIO())
