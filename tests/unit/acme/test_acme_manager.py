"""Which domains a resolver asks for, and which resolver configurations are refused."""

from __future__ import annotations

from typing import Any

import pytest

from ferryman.acme.manager import _check, covers, wanted_domains
from ferryman.dynamic.merge import EntryPointInfo, MergeSettings, merge
from ferryman.dynamic.models import Configuration, RouterTLS
from ferryman.static.models import StaticConfig

SETTINGS = MergeSettings(entry_points=(EntryPointInfo("web", port=80),
                                       EntryPointInfo("websecure", port=443,
                                                      tls=RouterTLS(cert_resolver="ep-le"))))


def _merged(routers: dict[str, Any]) -> Any:
    config = Configuration.model_validate({"http": {
        "routers": routers, "services": {"s": {"loadBalancer": {"servers": [{"url": "http://127.0.0.1:1"}]}}}}})
    return merge({"file": config}, SETTINGS)


def test_domains_from_tls_domains_or_from_host_rules() -> None:
    merged = _merged({
        "hosts": {"rule": "Host(`A.example.com`) || (Host(`b.example.com`) && Path(`/x`))", "service": "s",
                  "entryPoints": ["web"], "tls": {"certResolver": "le"}},
        "listed": {"rule": "Host(`ignored.example`)", "service": "s", "entryPoints": ["web"],
                   "tls": {"certResolver": "le", "domains": [{"main": "main.example", "sans": ["www.main.example"]},
                                                             {"main": "other.example"}]}},
        "same": {"rule": "Host(`a.example.com`) || Host(`b.example.com`)", "service": "s", "entryPoints": ["web"],
                 "tls": {"certResolver": "le"}},
        "nohost": {"rule": "PathPrefix(`/`)", "service": "s", "entryPoints": ["web"],
                   "tls": {"certResolver": "le"}},
        "plain": {"rule": "Host(`plain.example`)", "service": "s", "entryPoints": ["web"]},
        "from-ep": {"rule": "Host(`ep.example`)", "service": "s", "entryPoints": ["websecure"]},
    })
    wanted, empty = wanted_domains(merged)
    assert wanted["le"] == {
        ("a.example.com", "b.example.com"): ["hosts@file", "same@file"],
        ("main.example", "www.main.example"): ["listed@file"],
        ("other.example",): ["listed@file"],
    }
    assert wanted["ep-le"] == {("ep.example",): ["from-ep@file"]}  # the entry point's certResolver
    assert empty == [("nohost@file", "le")]


def test_wildcard_coverage() -> None:
    assert covers({"*.example.com"}, "a.example.com")
    assert not covers({"*.example.com"}, "a.b.example.com")
    assert not covers({"*.example.com"}, "example.com")


@pytest.mark.parametrize(("acme", "message"), [
    ({"dnsChallenge": {"provider": "x"}}, "DNS-01 challenge is not supported yet"),
    ({}, "no challenge configured"),
    ({"httpChallenge": {"entryPoint": "nope"}}, "entry point 'nope' does not exist (known: web)"),
    ({"httpChallenge": {}}, "httpChallenge.entryPoint is required"),
])
def test_unusable_resolvers_are_refused_with_the_reason(acme: dict[str, Any], message: str) -> None:
    static = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}},
                                          "certificatesResolvers": {"le": {"acme": acme}}})
    problems = _check("le", static.certificates_resolvers["le"], static)
    assert any(message in p for p in problems), problems
    assert all(p.startswith("certificatesResolvers.le") for p in problems)


def test_usable_resolvers() -> None:
    static = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}, "certificatesResolvers": {
        "le": {"acme": {"httpChallenge": {"entryPoint": "web"}, "tlsChallenge": {}}},
        "local": {"localCA": {}}}})
    assert _check("le", static.certificates_resolvers["le"], static) == []
    assert _check("local", static.certificates_resolvers["local"], static) == []
    assert static.certificates_resolvers["local"].local_ca is not None
    assert static.certificates_resolvers["local"].local_ca.certificates_duration == 12 * 3600
