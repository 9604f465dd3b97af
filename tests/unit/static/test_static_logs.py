"""ferryman's own logs: Traefik's level names, zerolog console and JSON formats, file output."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ferryman.observability.logs import LEVELS, PANIC, TRACE, get_logger, setup_logging
from ferryman.static.models import Log


@pytest.fixture(autouse=True)
def _restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def test_common_format_is_zerolog_console_style() -> None:
    out = io.StringIO()
    setup_logging(Log(level="INFO"), stream=out)
    log = get_logger("providers.file")
    assert log.name == "ferryman.providers.file"
    log.info("Configuration loaded", extra={"fields": {"providerName": "file", "count": 3,
                                                      "path": "/a b", "ok": True}})
    log.debug("hidden")
    line = out.getvalue()
    assert re.fullmatch(STAMP + r' INF Configuration loaded count=3 ok=true path="/a b" providerName=file\n', line)


def test_levels_and_abbreviations() -> None:
    out = io.StringIO()
    setup_logging(Log(level="TRACE"), stream=out)
    log = get_logger("x")
    log.log(TRACE, "t")
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    log.critical("f")
    log.log(PANIC, "p")
    shorts = [line.split(" ")[1] for line in out.getvalue().splitlines()]
    assert shorts == ["TRC", "DBG", "INF", "WRN", "ERR", "FTL", "PNC"]
    # at DEBUG and below the caller is shown, as zerolog does
    assert re.search(r" DBG \S*test_static_logs\.py:\d+ > d$", out.getvalue().splitlines()[1])


@pytest.mark.parametrize(("level", "shown"), [("ERROR", ["e"]), ("WARN", ["w", "e"]), ("DISABLED", [])])
def test_level_filters(level: str, shown: list[str]) -> None:
    out = io.StringIO()
    setup_logging(Log.model_validate({"level": level}), stream=out)
    log = get_logger("ferryman.x")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [line.rsplit(" ", 1)[-1] for line in out.getvalue().splitlines()] == shown


def test_level_map_is_traefiks() -> None:
    assert LEVELS["WARN"] == logging.WARNING and LEVELS["FATAL"] == logging.CRITICAL
    assert LEVELS["TRACE"] < logging.DEBUG < LEVELS["INFO"] and LEVELS["PANIC"] > logging.CRITICAL


def test_json_format() -> None:
    out = io.StringIO()
    setup_logging(Log(level="INFO", format="json"), stream=out)
    get_logger("x").warning("slow backend", extra={"fields": {"service": "api@file", "ms": 1200}})
    record = json.loads(out.getvalue())
    assert record["level"] == "warn" and record["message"] == "slow backend"
    assert record["service"] == "api@file" and record["ms"] == 1200
    assert re.fullmatch(STAMP, record["time"])


def test_exceptions_are_logged_with_their_error() -> None:
    out = io.StringIO()
    setup_logging(Log(level="INFO", format="json"), stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("x").exception("failed")
    record = json.loads(out.getvalue())
    assert record["error"] == "boom" and "Traceback" in record["stack"]
    out = io.StringIO()
    setup_logging(Log(level="INFO"), stream=out)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        get_logger("x").exception("failed")
    assert out.getvalue().splitlines()[0].endswith("ERR failed error=boom")


def test_file_path_and_idempotence(tmp_path: Path) -> None:
    path = tmp_path / "ferryman.log"
    setup_logging(Log(level="INFO", file_path=str(path)))
    setup_logging(Log(level="INFO", file_path=str(path)))  # replaces, does not duplicate
    get_logger("x").info("to the file")
    ours = [h for h in logging.getLogger().handlers
            if isinstance(h, logging.FileHandler) and h.baseFilename == str(path)]
    assert len(ours) == 1
    ours[0].flush()
    assert path.read_text().count("to the file") == 1
