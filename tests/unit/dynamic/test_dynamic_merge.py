"""Merge: qualified names, references, internal elements, entry-point models, statuses."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest

from ferryman.dynamic.decode import decode_document
from ferryman.dynamic.merge import (
    DEFAULT_PRECEDENCE,
    MAX_INT,
    MAX_USER_PRIORITY,
    EntryPointInfo,
    Merged,
    MergeSettings,
    Redirect,
    merge,
    normalize,
)
from ferryman.dynamic.models import Configuration, RouterObservability, RouterTLS

WEB = EntryPointInfo("web", port=80)
WEBSECURE = EntryPointInfo("websecure", port=443)
SETTINGS = MergeSettings(entry_points=(WEB, WEBSECURE))

SERVICE = """
  services:
    api:
      loadBalancer:
        servers: [{url: "http://10.0.0.1:8080"}]
"""


def cfg(text: str) -> Configuration:
    decoded = decode_document(text, source="test.yml", fmt="yaml")
    assert decoded.errors == [], decoded.errors
    return decoded.config


def run(text: str, settings: MergeSettings = SETTINGS, **others: Configuration) -> Merged:
    return merge({"file": cfg(text), **others}, settings)


def test_names_are_qualified_and_references_resolve_in_the_provider() -> None:
    m = run("""
http:
  routers:
    web:
      rule: "Host(`example.com`)"
      entryPoints: [web]
      service: api
      middlewares: [https]
  middlewares:
    https: {redirectScheme: {scheme: https}}
""" + SERVICE)
    router = m.routers["web@file"]
    assert router.status == "enabled", router.errors
    assert router.provider == "file"
    assert router.config is not None
    assert router.config.service == "api@file"
    assert router.config.middlewares == ("https@file",)
    assert router.middleware_chain == ("https@file",)
    assert router.priority == len("Host(`example.com`)")
    assert router.rule is not None and router.rule.text == "Host(`example.com`)"
    assert router.using == ("web",)
    assert m.services["api@file"].used_by == ("web@file",)
    assert m.middlewares["https@file"].used_by == ("web@file",)


def test_cross_provider_reference() -> None:
    docker = cfg("http:\n  services:\n    whoami:\n      loadBalancer: {servers: [{url: 'http://172.17.0.2:80'}]}\n")
    m = run("""
http:
  routers:
    r: {rule: "Path(`/`)", service: whoami@docker}
""", docker=docker)
    assert m.routers["r@file"].status == "enabled"
    assert m.routers["r@file"].service == "whoami@docker"
    assert m.services["whoami@docker"].used_by == ("r@file",)


def test_unqualified_reference_does_not_cross_providers() -> None:
    docker = cfg("http:\n  services:\n    whoami:\n      loadBalancer: {servers: [{url: 'http://a:1'}]}\n")
    m = run('http:\n  routers:\n    r: {rule: "Path(`/`)", service: whoami}\n', docker=docker)
    router = m.routers["r@file"]
    assert router.status == "disabled"
    assert router.errors == ('service "whoami@file" does not exist (did you mean "whoami@docker"? '
                             "known: noop@internal, whoami@docker)",)


# --------------------------------------------------------------------------------------------
# Internal provider


def test_entry_point_redirect_creates_traefiks_internal_router_and_middleware() -> None:
    settings = MergeSettings(entry_points=(
        EntryPointInfo("web", port=80, redirect=Redirect(to="websecure")),
        EntryPointInfo("websecure", port=443),
    ))
    m = merge({}, settings)
    router = m.routers["web-to-websecure@internal"]
    assert router.status == "enabled", router.errors
    assert router.config is not None
    assert router.config.rule == "HostRegexp(`^.+$`)"
    assert router.config.service == "noop@internal"
    assert router.config.middlewares == ("redirect-web-to-websecure@internal",)
    assert router.entry_points == ("web",)
    assert router.priority == MAX_INT - 1 == 2**63 - 2
    mw = m.middlewares["redirect-web-to-websecure@internal"]
    assert mw.config is not None and mw.config.redirect_scheme is not None
    # Exactly what internal.go produces: the target's port as a string; the redirectScheme
    # middleware drops the scheme's default port (443 for https) when it builds the URL.
    assert mw.config.redirect_scheme.model_dump() == {"scheme": "https", "port": "443", "permanent": True}
    assert m.services["noop@internal"].kind == "internal"
    assert m.services["noop@internal"].used_by == ("web-to-websecure@internal",)
    assert m.diagnostics == []


def test_redirect_to_a_port_and_its_options() -> None:
    settings = MergeSettings(entry_points=(
        EntryPointInfo("web", port=80, allow_acme_bypass=True,
                       redirect=Redirect(to=":8443", scheme="https", permanent=False, priority=10)),
    ))
    m = merge({}, settings)
    router = m.routers["web-to-8443@internal"]  # provider.Normalize("web-to-:8443")
    assert router.config is not None
    assert router.config.rule == "HostRegexp(`^.+$`) && !PathPrefix(`/.well-known/acme-challenge/`)"
    assert router.priority == 10
    mw = m.middlewares["redirect-web-to-8443@internal"].config
    assert mw is not None and mw.redirect_scheme is not None
    assert (mw.redirect_scheme.port, mw.redirect_scheme.permanent) == ("8443", False)


def test_redirect_to_unknown_entry_point_is_reported() -> None:
    m = merge({}, MergeSettings(entry_points=(EntryPointInfo("web", port=80, redirect=Redirect(to="webscure")),
                                              WEBSECURE)))
    assert not any(name.endswith("@internal") for name in m.routers)
    assert [(d.kind, d.name, d.level) for d in m.diagnostics] == [("entryPoint", "web", "error")]
    assert "non-existing entry point 'webscure'" in m.diagnostics[0].message
    assert 'did you mean "websecure"?' in m.diagnostics[0].message


def test_user_router_may_not_use_internal_priorities_but_internal_may() -> None:
    m = run(f"""
http:
  routers:
    bar: {{rule: "Host(`foo.bar`)", service: api, priority: {MAX_INT}}}
    ok: {{rule: "Host(`foo.bar`)", service: api, priority: {MAX_USER_PRIORITY}}}
""" + SERVICE, internal=cfg(f"""
http:
  routers:
    top: {{rule: "Host(`foo.bar`)", service: noop, priority: {MAX_INT}}}
"""))
    assert m.routers["bar@file"].status == "disabled"
    assert m.routers["bar@file"].errors == (
        f"the router priority {MAX_INT} exceeds the max user-defined priority {MAX_USER_PRIORITY} "
        "(fix: use a lower priority)",)
    assert m.routers["ok@file"].status == "enabled"
    assert m.routers["top@internal"].status == "enabled"
    assert m.routers["top@internal"].service == "noop@internal"


def test_default_transport_is_always_known() -> None:
    m = run("""
http:
  routers:
    r: {rule: "Path(`/`)", service: api}
  services:
    api:
      loadBalancer:
        serversTransport: default@internal
        servers: [{url: "http://a:1"}]
""")
    assert m.services["api@file"].status == "enabled"
    assert m.servers_transports["default@internal"].used_by == ("api@file",)
    assert m.servers_transports["default@internal"].config is None


# --------------------------------------------------------------------------------------------
# Entry points


def test_router_without_entry_points_uses_all_http_entry_points() -> None:
    settings = MergeSettings(entry_points=(
        EntryPointInfo("web", port=80), EntryPointInfo("dns", port=53, protocol="udp"),
        EntryPointInfo("traefik", port=8080), EntryPointInfo("alt", port=81)))
    m = run('http:\n  routers:\n    r: {rule: "Path(`/`)", service: api}\n' + SERVICE, settings)
    assert m.routers["r@file"].entry_points == ("alt", "web")


def test_router_without_entry_points_uses_the_as_default_ones() -> None:
    settings = MergeSettings(entry_points=(EntryPointInfo("web", port=80),
                                           EntryPointInfo("websecure", port=443, as_default=True)))
    m = run('http:\n  routers:\n    r: {rule: "Path(`/`)", service: api}\n' + SERVICE, settings)
    assert m.routers["r@file"].entry_points == ("websecure",)


def test_unknown_entry_point_is_a_non_critical_error() -> None:
    m = run('http:\n  routers:\n    r: {rule: "Path(`/`)", service: api, entryPoints: [web, wbe]}\n' + SERVICE)
    router = m.routers["r@file"]
    assert router.status == "warning"
    assert router.using == ("web",)
    assert router.errors == ('entryPoint "wbe" doesn\'t exist (did you mean "web"? known: web, websecure)',)


def test_no_valid_entry_point_disables_the_router() -> None:
    m = run('http:\n  routers:\n    r: {rule: "Path(`/`)", service: api, entryPoints: [nope]}\n' + SERVICE)
    router = m.routers["r@file"]
    assert router.status == "disabled"
    assert "no valid entryPoint for this router" in router.errors


def test_entry_point_model_splits_routers_as_traefik_does() -> None:
    settings = MergeSettings(entry_points=(
        EntryPointInfo("web", port=80),
        EntryPointInfo("websecure", port=443, tls=RouterTLS(cert_resolver="le"), middlewares=("hsts",),
                       observability=RouterObservability(access_logs=False)),
    ))
    m = run("""
http:
  routers:
    app: {rule: "Host(`a.example`)", service: api, entryPoints: [web, websecure], middlewares: [gz]}
    only: {rule: "Host(`b.example`)", service: api, entryPoints: [websecure]}
  middlewares:
    hsts: {redirectScheme: {scheme: https}}
    gz: {redirectScheme: {scheme: https}}
""" + SERVICE, settings)
    assert set(m.routers) == {"app@file", "websecure-app@file", "only@file"}
    plain, secure, only = m.routers["app@file"], m.routers["websecure-app@file"], m.routers["only@file"]
    assert (plain.entry_points, plain.tls, plain.middleware_chain) == (("web",), False, ("gz@file",))
    assert (secure.entry_points, secure.tls, secure.middleware_chain) == (
        ("websecure",), True, ("hsts@file", "gz@file"))
    assert secure.origin == "app@file" and secure.provider == "file"
    assert secure.config is not None and secure.config.tls is not None
    assert secure.config.tls.cert_resolver == "le"
    assert secure.config.observability == RouterObservability(access_logs=False)
    assert secure.tls_options == "default"
    assert only.entry_points == ("websecure",) and only.tls  # single entry point: name unchanged
    # Same priority and provider: the name decides.
    assert m.routers_on("websecure", tls=True) == [only, secure]
    assert m.routers_on("web", tls=False) == [plain]


def test_core_rule_syntax_makes_every_entry_point_a_model() -> None:
    settings = MergeSettings(entry_points=(WEB, WEBSECURE), core_rule_syntax=True)
    m = run('http:\n  routers:\n    r: {rule: "Path(`/`)", service: api}\n' + SERVICE, settings)
    assert set(m.routers) == {"web-r@file", "websecure-r@file"}


# --------------------------------------------------------------------------------------------
# Router checks


def test_missing_rule() -> None:
    m = run('http:\n  routers:\n    r: {service: api}\n' + SERVICE)
    assert m.routers["r@file"].status == "disabled"
    assert m.routers["r@file"].errors == ('rule is missing (fix: add a rule such as "Host(`example.com`)")',)


def test_bad_rule_shows_the_caret_and_neighbours_survive() -> None:
    m = run("""
http:
  routers:
    bad: {rule: "Host(`a`) && Pth(`/`)", service: api}
    good: {rule: "Host(`b`)", service: api}
""" + SERVICE)
    bad = m.routers["bad@file"]
    assert bad.status == "disabled" and bad.rule is None
    assert len(bad.errors) == 1 and bad.errors[0].startswith("rule is invalid: ")
    lines = bad.errors[0].splitlines()
    assert lines[1] == "    Host(`a`) && Pth(`/`)"
    assert lines[2] == "    " + " " * len("Host(`a`) && ") + "^"
    assert bad.priority == len("Host(`a`) && Pth(`/`)")
    assert m.routers["good@file"].status == "enabled"


def test_rule_syntax_is_deprecated() -> None:
    m = run('http:\n  routers:\n    r: {rule: "Path(`/`)", service: api, ruleSyntax: v3}\n' + SERVICE)
    router = m.routers["r@file"]
    assert router.status == "warning"
    assert router.warnings == ("ruleSyntax is deprecated (fix: rewrite the rule in v3 syntax and remove "
                               "ruleSyntax)",)


def test_missing_service() -> None:
    m = run('http:\n  routers:\n    r: {rule: "Path(`/`)", service: apj}\n' + SERVICE)
    assert m.routers["r@file"].errors == (
        'service "apj@file" does not exist (did you mean "api@file"? known: api@file, noop@internal)',)
    assert m.routers["r@file"].status == "disabled"


def test_router_without_service() -> None:
    m = run('http:\n  routers:\n    r: {rule: "Path(`/`)"}\n')
    assert m.routers["r@file"].errors == ("the router has no service (fix: add service: <name>)",)


def test_missing_middleware_lists_the_known_ones() -> None:
    m = run("""
http:
  routers:
    r: {rule: "Path(`/`)", service: api, middlewares: [auth]}
  middlewares:
    a: {redirectScheme: {}}
    b: {redirectScheme: {}}
""" + SERVICE)
    assert m.routers["r@file"].errors == ('middleware "auth@file" does not exist (known: a@file, b@file)',)
    assert m.routers["r@file"].status == "disabled"


def test_unimplemented_middleware_disables_its_routers() -> None:
    m = run("""
http:
  routers:
    r: {rule: "Path(`/`)", service: api, middlewares: [auth]}
  middlewares:
    auth: {plugin: {demo: {}}}
""" + SERVICE)
    assert m.routers["r@file"].errors == (
        'middleware "auth@file" is a plugin middleware, which ferryman does not implement yet',)
    assert m.middlewares["auth@file"].status == "disabled"


def test_chains_are_flattened_in_order() -> None:
    m = run("""
http:
  routers:
    r: {rule: "Path(`/`)", service: api, middlewares: [outer, c]}
  middlewares:
    outer: {chain: {middlewares: [a, inner]}}
    inner: {chain: {middlewares: [b, c]}}
    a: {redirectScheme: {}}
    b: {redirectScheme: {}}
    c: {redirectScheme: {}}
""" + SERVICE)
    assert m.routers["r@file"].middleware_chain == ("a@file", "b@file", "c@file", "c@file")
    assert m.middlewares["outer@file"].expanded == ("a@file", "b@file", "c@file")
    assert m.middlewares["outer@file"].config is not None
    chain = m.middlewares["outer@file"].config.chain
    assert chain is not None and chain.middlewares == ("a@file", "inner@file")
    assert m.middlewares["c@file"].used_by == ("inner@file", "r@file")


def test_chain_cycle_disables_the_chain_and_its_users() -> None:
    m = run("""
http:
  routers:
    r: {rule: "Path(`/`)", service: api, middlewares: [top]}
  middlewares:
    top: {chain: {middlewares: [a]}}
    a: {chain: {middlewares: [b]}}
    b: {chain: {middlewares: [a]}}
""" + SERVICE)
    cycle = "recursion detected: middleware:a@file -> middleware:b@file -> middleware:a@file"
    assert m.middlewares["a@file"].status == "disabled"
    assert m.middlewares["a@file"].errors[0].startswith(cycle)
    assert m.middlewares["b@file"].errors[0].startswith(cycle)
    assert m.middlewares["top@file"].errors == (f'middleware "a@file" is disabled: {m.middlewares["a@file"].errors[0]}',)
    assert m.routers["r@file"].status == "disabled"


def test_chain_with_missing_member() -> None:
    m = run('http:\n  middlewares:\n    c: {chain: {middlewares: [nope@docker]}}\n')
    assert m.middlewares["c@file"].errors == ('middleware "nope@docker" does not exist (known: c@file)',)


def test_unknown_tls_options() -> None:
    m = run("""
http:
  routers:
    r: {rule: "Host(`a`)", service: api, tls: {options: modrn}}
    d: {rule: "Host(`b`)", service: api, tls: {}}
""" + SERVICE + """
tls:
  options:
    modern: {minVersion: VersionTLS13}
""")
    assert m.routers["r@file"].errors == (
        'unknown TLS options: modrn@file (did you mean "modern@file"? known: default, modern@file)',)
    assert m.routers["d@file"].status == "enabled"
    assert m.routers["d@file"].tls_options == "default"
    assert set(m.tls.options) == {"default", "modern@file"}
    assert m.tls.options["default"].min_version == "VersionTLS12"


def test_default_tls_options_in_two_providers_is_a_conflict() -> None:
    tls = "tls:\n  options:\n    default: {minVersion: VersionTLS13}\n"
    m = run('http:\n  routers:\n    r: {rule: "Host(`a`)", service: api, tls: {}}\n' + SERVICE + tls,
            docker=cfg(tls))
    assert "default" not in m.tls.options
    assert m.routers["r@file"].status == "disabled"
    assert m.routers["r@file"].errors[0].startswith('TLS options "default" cannot be used: the default TLS '
                                                    "options are defined in several providers (docker, file)")


def test_routers_of_one_host_with_different_tls_options_fall_back_to_default() -> None:
    m = run("""
http:
  routers:
    a: {rule: "Host(`x.example`)", service: api, tls: {options: modern}}
    b: {rule: "Host(`x.example`) && Path(`/b`)", service: api, tls: {}}
    c: {rule: "Host(`y.example`)", service: api, tls: {options: modern}}
""" + SERVICE + """
tls:
  options:
    modern: {minVersion: VersionTLS13}
""", MergeSettings(entry_points=(WEBSECURE,)))
    a, b, c = (m.routers[f"{n}@file"] for n in "abc")
    assert a.tls_options == "default" and a.status == "warning"
    assert "host 'x.example' is served by routers with different TLS options (a@file, b@file)" in a.warnings[0]
    assert b.status == "warning"
    assert c.tls_options == "modern@file" and c.status == "enabled"


# --------------------------------------------------------------------------------------------
# Services


def test_weighted_services_must_exist() -> None:
    m = run("""
http:
  services:
    split:
      weighted:
        services: [{name: v1, weight: 90}, {name: v2, weight: 10}]
    v1: {loadBalancer: {servers: [{url: "http://a:1"}]}}
""")
    split = m.services["split@file"]
    assert split.status == "disabled"
    assert split.errors == ('service "v2@file" does not exist (known: noop@internal, split@file, v1@file)',)
    assert split.children == ("v1@file", "v2@file")
    assert split.config is not None and split.config.weighted is not None
    assert [s.name for s in split.config.weighted.services] == ["v1@file", "v2@file"]
    assert m.services["v1@file"].used_by == ("split@file",)


def test_service_cycle() -> None:
    m = run("""
http:
  services:
    a: {weighted: {services: [{name: b}]}}
    b: {failover: {service: a, fallback: c}}
    c: {loadBalancer: {servers: [{url: "http://a:1"}]}}
""")
    assert m.services["a@file"].errors[0].startswith(
        "recursion detected: service:a@file -> service:b@file -> service:a@file")
    assert m.services["b@file"].status == "disabled"
    assert m.services["c@file"].status == "enabled"


def test_disabled_child_disables_the_parent() -> None:
    m = run("""
http:
  routers:
    r: {rule: "Path(`/`)", service: split}
  services:
    split: {weighted: {services: [{name: bad}]}}
    bad: {loadBalancer: {servers: [{url: "ftp://a"}]}}
""")
    assert m.services["bad@file"].errors == (
        "loadBalancer.servers[0].url 'ftp://a' is invalid: unsupported scheme 'ftp' "
        '(fix: write it as "http://host:port", "https://..." or "h2c://...")',)
    assert m.services["split@file"].errors[0].startswith('service "bad@file" is disabled: loadBalancer')
    assert m.routers["r@file"].errors[0].startswith('service "split@file" is disabled: ')


@pytest.mark.parametrize(("url", "problem"), [
    ("", "the URL is empty"),
    ("10.0.0.1:80", "the URL has no scheme"),
    ("tcp://10.0.0.1:80", "unsupported scheme 'tcp'"),
    ("http://", "the URL has no host"),
    ("http://a:notaport", "Port could not be cast to integer value as 'notaport'"),
    ("backend", "the URL has no scheme"),
])
def test_bad_server_urls(url: str, problem: str) -> None:
    m = run(f'http:\n  services:\n    s: {{loadBalancer: {{servers: [{{url: "{url}"}}]}}}}\n')
    assert m.services["s@file"].status == "disabled"
    assert problem in m.services["s@file"].errors[0]


def test_load_balancer_without_servers_serves_503() -> None:
    # Traefik builds the balancer anyway; it answers 503 "no available server".
    m = run('http:\n  routers:\n    r: {rule: "Path(`/`)", service: s}\n  services:\n    s: {loadBalancer: {}}\n')
    assert m.services["s@file"].status == "warning"
    assert m.services["s@file"].warnings[0].startswith("the service has no servers: it answers 503")
    assert m.routers["r@file"].status == "enabled"


def test_servers_transport_must_exist() -> None:
    m = run("""
http:
  services:
    s: {loadBalancer: {serversTransport: tls-skip, servers: [{url: "https://a"}]}}
    t: {loadBalancer: {serversTransport: mine, servers: [{url: "https://a"}]}}
  serversTransports:
    mine: {insecureSkipVerify: true}
""")
    assert m.services["s@file"].errors == (
        'serversTransport "tls-skip@file" does not exist (known: default@internal, mine@file)',)
    assert m.services["t@file"].status == "enabled"
    assert m.services["t@file"].config is not None
    lb = m.services["t@file"].config.load_balancer
    assert lb is not None and lb.servers_transport == "mine@file"
    assert m.servers_transports["mine@file"].used_by == ("t@file",)


def test_service_middlewares_are_checked() -> None:
    m = run("""
http:
  services:
    s:
      loadBalancer:
        servers: [{url: "http://a:1"}]
        middlewares: [m, missing]
  middlewares:
    m: {redirectScheme: {}}
""")
    assert m.services["s@file"].errors == ('middleware "missing@file" does not exist (known: m@file)',)
    assert m.middlewares["m@file"].used_by == ("s@file",)


# --------------------------------------------------------------------------------------------
# Rejected elements, precedence, purity


@dataclass(frozen=True)
class Problem:
    kind: str
    name: str
    message: str


def test_rejected_elements_appear_disabled_and_explain_their_users() -> None:
    decoded = decode_document("""
http:
  routers:
    r: {rule: "Path(`/`)", service: api}
    broken: {rule: "Path(`/x`)", service: api, priorty: 1}
  services:
    api: {loadBalancer: {servers: [{url: "http://a:1"}], passHostHeader: maybe}}
""", source="dyn.yml", fmt="yaml")
    m = merge({"file": decoded.config}, SETTINGS, rejected={"file": decoded.errors})
    assert m.routers["broken@file"].status == "disabled"
    assert m.routers["broken@file"].config is None
    assert m.routers["broken@file"].errors == (
        'dyn.yml: http.routers.broken.priorty: unknown key (did you mean "priority"?)',)
    assert m.services["api@file"].status == "disabled"
    assert m.routers["r@file"].errors == (
        'service "api@file" is disabled: dyn.yml: http.services.api.loadBalancer.passHostHeader: '
        "expected true or false, got 'maybe'",)
    # ElementProblem-like objects from other providers work too.
    m2 = merge({"file": decoded.config}, SETTINGS,
               rejected={"docker": [Problem("http.middlewares", "auth", "label: bad")]})
    assert m2.middlewares["auth@docker"].errors == ("label: bad",)


def test_provider_rank_follows_precedence() -> None:
    text = 'http:\n  routers:\n    r: {rule: "Path(`/`)", service: noop@internal}\n'
    m = merge({"file": cfg(text), "docker": cfg(text), "mine": cfg(text)}, SETTINGS)
    assert m.routers["r@docker"].provider_rank == DEFAULT_PRECEDENCE.index("docker")
    assert m.routers["r@file"].provider_rank == DEFAULT_PRECEDENCE.index("file")
    assert m.routers["r@mine"].provider_rank == len(DEFAULT_PRECEDENCE)
    assert [r.name for r in m.routers_on("web", tls=False)] == ["r@docker", "r@file", "r@mine"]


def test_merge_is_pure_and_deterministic() -> None:
    text = """
http:
  routers:
    r: {rule: "Path(`/`)", service: api, middlewares: [c]}
    x: {rule: "Path(`/x`)", service: nope}
  middlewares:
    c: {chain: {middlewares: [a]}}
    a: {redirectScheme: {}}
""" + SERVICE
    configs = {"file": cfg(text), "docker": cfg(text)}
    before = copy.deepcopy(configs)
    first = merge(configs, SETTINGS)
    second = merge(dict(reversed(list(configs.items()))), SETTINGS)
    assert configs == before
    assert configs["file"].http.routers["r"].service == "api"  # input not qualified in place
    assert [(k, v.status, v.errors) for k, v in first.routers.items()] == \
        [(k, v.status, v.errors) for k, v in second.routers.items()]
    assert first.diagnostics == second.diagnostics
    assert list(first.routers) == sorted(first.routers)


def test_diagnostics_collect_everything() -> None:
    m = run("""
http:
  routers:
    r: {rule: "Path(`/`)", service: nope, entryPoints: [web, wbe]}
  services:
    s: {loadBalancer: {}}
""")
    rendered = [d.render() for d in m.diagnostics]
    assert rendered[0] == 'router "r@file": entryPoint "wbe" doesn\'t exist (did you mean "web"? known: web, websecure)'
    assert any(r.startswith('router "r@file": service "nope@file" does not exist') for r in rendered)
    assert any(d.kind == "service" and d.level == "warning" for d in m.diagnostics)


def test_normalize() -> None:
    assert normalize("web-to-:443") == "web-to-443"
    assert normalize("go_blog") == "go-blog"
    assert normalize("a..b") == "a-b"
