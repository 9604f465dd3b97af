"""The registry of keys accepted but not implemented yet."""

from __future__ import annotations

import pytest

from ferryman.static.models import StaticConfig
from ferryman.static.not_implemented import NOT_IMPLEMENTED, not_implemented_keys, warning_for
from ferryman.static.schema import resolve


@pytest.mark.parametrize("entry", sorted(NOT_IMPLEMENTED))
def test_every_entry_is_a_real_key(entry: str) -> None:
    loc = ["web" if part == "*" else part for part in entry.split(".")]
    assert resolve(StaticConfig, loc) is not None, entry


def test_implemented_keys_are_not_listed() -> None:
    for key in ("entryPoints.*.address", "entryPoints.*.http.middlewares", "entryPoints.*.reusePort",
                "entryPoints.*.transport", "entryPoints.*.forwardedHeaders", "providers.file",
                "providers.providersThrottleDuration", "providers.precedence", "log.level", "log.format",
                "log.filePath", "serversTransport", "core", "ping", "global.checkNewVersion",
                "global.sendAnonymousUsage", "entryPoints.*.http.encodeQuerySemicolons",
                "metrics", "metrics.prometheus", "accessLog", "accessLog.filters", "accessLog.fields"):
        assert key not in NOT_IMPLEMENTED


def test_only_keys_actually_set_are_reported() -> None:
    quiet = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}, "log": {"level": "INFO"}})
    assert not_implemented_keys(quiet) == []
    loud = StaticConfig.model_validate({
        "entryPoints": {"a": {"address": ":1", "reusePort": False, "http": {"tls": {"certResolver": "le"}}},
                        "b": {"address": ":2", "udp": {"timeout": "5s"}}},
        "api": {"debug": True},
        "metrics": {"prometheus": {}, "datadog": {}},
        "serversTransport": {"spiffe": {"ids": ["spiffe://x"]}},
    })
    assert not_implemented_keys(loud) == [
        "serversTransport.spiffe",
        "entryPoints.b.udp",
        "metrics.datadog",
    ]


def test_custom_registry_and_message() -> None:
    config = StaticConfig.model_validate({"ping": {"manualRouting": True}})
    assert not_implemented_keys(config, frozenset({"ping.manualRouting"})) == ["ping.manualRouting"]
    assert warning_for("ping") == "ping: accepted but not implemented yet in ferryman 0.1; ignored"
