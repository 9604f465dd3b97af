"""Which domains a resolver asks for, and which resolver configurations are refused."""

from __future__ import annotations

from typing import Any

import pytest

from ferryman.acme.manager import _check, covers, split_covered, store_names, wanted_domains
from ferryman.dynamic.merge import EntryPointInfo, MergeSettings, merge
from ferryman.dynamic.models import Configuration, RouterTLS, TLSConfiguration
from ferryman.static.models import StaticConfig
from ferryman.tls.store import TLSStore
from tests.integration.tls.pki import CA

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


def test_domains_covered_by_a_store_certificate_are_not_ordered() -> None:
    """Traefik's getUncheckedDomains: a domain list is ordered unless every name is covered (exactly
    or by a one-label wildcard) by a certificate of the store or the default certificate; the
    certificates the resolvers published themselves do not count."""
    ca = CA()
    user = ca.issue("user.example.com", dns=("user.example.com", "*.wild.example.com"))
    default = ca.issue("default.example.org", dns=("default.example.org",))
    mine = ca.issue("mine.example.net", dns=("mine.example.net",))
    store = TLSStore.build(TLSConfiguration.model_validate({
        "certificates": [{"certFile": user.cert_pem, "keyFile": user.key_pem},
                         {"certFile": mine.cert_pem, "keyFile": mine.key_pem}],
        "stores": {"default": {"defaultCertificate": {"certFile": default.cert_pem, "keyFile": default.key_pem}}}}))
    names = store_names(store, {mine.cert_pem.encode()})
    assert "mine.example.net" not in names
    assert {"user.example.com", "*.wild.example.com", "default.example.org"} <= names
    wanted = {
        ("user.example.com",): ["a@file"],
        ("a.wild.example.com", "user.example.com"): ["b@file"],
        ("default.example.org",): ["c@file"],
        ("a.b.wild.example.com",): ["d@file"],  # a wildcard covers one label only
        ("user.example.com", "new.example.com"): ["e@file"],  # one name not covered: ordered whole
        ("wild.example.com",): ["f@file"],
        ("mine.example.net",): ["g@file"],  # the resolver's own certificate: renewed, not skipped
    }
    kept, covered = split_covered(wanted, names)
    assert covered == [("user.example.com",), ("a.wild.example.com", "user.example.com"), ("default.example.org",)]
    assert list(kept) == [("a.b.wild.example.com",), ("user.example.com", "new.example.com"), ("wild.example.com",),
                          ("mine.example.net",)]
    assert kept[("user.example.com", "new.example.com")] == ["e@file"]
    assert store_names(None, set()) == set()
    assert split_covered(wanted, set()) == (wanted, [])
