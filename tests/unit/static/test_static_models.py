"""Static configuration models: Traefik's defaults, key case-insensitivity, implicit entry points."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from ferryman.static.models import (
    MAX_INT,
    PROVIDER_NAMES,
    Acme,
    Api,
    EntryPoint,
    Metrics,
    Ping,
    StaticConfig,
)


def test_top_level_keys_are_traefiks() -> None:
    aliases = [f.alias for f in StaticConfig.model_fields.values()]
    assert aliases == [
        "global", "serversTransport", "tcpServersTransport", "entryPoints", "providers", "api",
        "metrics", "ping", "log", "accessLog", "tracing", "hostResolver", "certificatesResolvers",
        "experimental", "core", "spiffe", "ocsp",
    ]


def test_entry_point_defaults_match_traefik() -> None:
    ep = EntryPoint(address=":80")
    assert (ep.as_default, ep.reuse_port, ep.allow_acme_by_pass) == (False, False, False)
    rt = ep.transport.responding_timeouts
    assert (rt.read_timeout, rt.write_timeout, rt.idle_timeout) == (60.0, 0.0, 180.0)
    lc = ep.transport.life_cycle
    assert (lc.request_accept_grace_timeout, lc.grace_time_out) == (0.0, 10.0)
    assert (ep.transport.keep_alive_max_requests, ep.transport.keep_alive_max_time) == (0, 0.0)
    assert ep.http.max_header_bytes == 1048576
    assert ep.http.sanitize_path is True
    assert ep.http.encode_query_semicolons is False
    assert ep.http.underscore_headers_strategy == "keep"
    assert ep.http.middlewares == ()
    assert ep.http.tls is None and ep.http.redirections is None
    enc = ep.http.encoded_characters
    assert all(getattr(enc, name) is True for name in type(enc).model_fields)
    assert ep.forwarded_headers.insecure is False and ep.forwarded_headers.trusted_ips == ()
    assert ep.proxy_protocol is None
    assert (ep.http2.max_concurrent_streams, ep.http2.max_decoder_header_table_size,
            ep.http2.max_encoder_header_table_size) == (250, 4096, 4096)
    assert ep.http3 is None
    assert ep.udp.timeout == 3.0
    obs = ep.observability
    assert (obs.access_logs, obs.metrics, obs.tracing, obs.trace_verbosity) == (True, True, True, "minimal")


def test_redirection_defaults() -> None:
    ep = EntryPoint.model_validate({"address": ":80", "http": {"redirections": {"entryPoint": {"to": "websecure"}}}})
    assert ep.http.redirections is not None
    redirect = ep.http.redirections.entry_point
    assert redirect is not None
    assert (redirect.to, redirect.scheme, redirect.permanent) == ("websecure", "https", True)
    assert redirect.priority == MAX_INT - 1 == 9223372036854775806


def test_redirection_needs_a_target() -> None:
    with pytest.raises(ValidationError):
        EntryPoint.model_validate({"address": ":80", "http": {"redirections": {"entryPoint": {}}}})


def test_global_defaults_match_traefik() -> None:
    c = StaticConfig()
    assert c.entry_points == {}
    assert c.providers.providers_throttle_duration == 2.0
    assert c.providers.precedence == PROVIDER_NAMES
    assert c.providers.precedence[:7] == ("kubernetesgateway", "kubernetescrd", "kubernetes",
                                          "kubernetesingressnginx", "swarm", "docker", "file")
    assert c.providers.file is None
    assert (c.log.level, c.log.format, c.log.file_path, c.log.no_color) == ("ERROR", "common", "", False)
    st = c.servers_transport
    assert (st.insecure_skip_verify, st.root_cas, st.max_idle_conns_per_host) == (False, (), 200)
    ft = st.forwarding_timeouts
    assert (ft.dial_timeout, ft.response_header_timeout, ft.idle_conn_timeout) == (30.0, 0.0, 90.0)
    assert st.spiffe is None
    tcp = c.tcp_servers_transport
    assert (tcp.dial_keep_alive, tcp.dial_timeout, tcp.termination_delay) == (15.0, 30.0, 0.1)
    assert c.core.default_rule_syntax == "v3"
    assert c.global_.check_new_version is True and c.global_.send_anonymous_usage is False
    assert c.api is None and c.ping is None and c.metrics is None and c.access_log is None
    assert c.tracing is None and c.certificates_resolvers == {} and c.experimental is None


def test_optional_sections_defaults() -> None:
    api = Api()
    assert (api.base_path, api.insecure, api.dashboard, api.debug) == ("/", False, True, False)
    ping = Ping()
    assert (ping.entry_point, ping.manual_routing, ping.terminating_status_code) == ("traefik", False, 503)
    prom = Metrics.model_validate({"prometheus": {}}).prometheus
    assert prom is not None
    assert prom.buckets == (0.1, 0.3, 1.2, 5.0)
    assert (prom.add_entry_points_labels, prom.add_routers_labels, prom.add_services_labels) == (True, False, True)
    assert (prom.entry_point, prom.manual_routing) == ("traefik", False)


def test_access_log_defaults() -> None:
    c = StaticConfig.model_validate({"accessLog": {}})
    al = c.access_log
    assert al is not None
    assert (al.file_path, al.format, al.buffering_size) == ("", "common", 0)
    assert al.fields.default_mode == "keep"
    assert al.fields.headers.default_mode == "drop"
    assert al.fields.query_parameters.default_mode == "keep"
    assert al.filters.min_duration == 0.0 and al.filters.status_codes == ()


def test_acme_defaults() -> None:
    acme = Acme()
    assert acme.ca_server == "https://acme-v02.api.letsencrypt.org/directory"
    assert (acme.storage, acme.key_type, acme.certificates_duration) == ("acme.json", "RSA4096", 2160)
    assert (acme.client_timeout, acme.client_response_header_timeout, acme.certificate_timeout) == (120.0, 30.0, 30.0)
    resolver = StaticConfig.model_validate({"certificatesResolvers": {"le": {"acme": {
        "email": "a@example.com", "httpChallenge": {"entryPoint": "web"},
        "dnsChallenge": {"provider": "cloudflare", "propagation": {"delayBeforeChecks": "5s"}}}}}})
    le = resolver.certificates_resolvers["le"].acme
    assert le is not None and le.http_challenge is not None and le.dns_challenge is not None
    assert le.http_challenge.entry_point == "web"
    assert le.dns_challenge.propagation is not None
    assert le.dns_challenge.propagation.delay_before_checks == 5.0


def test_acme_and_tailscale_are_exclusive() -> None:
    with pytest.raises(ValidationError, match="mutually exclusive"):
        StaticConfig.model_validate({"certificatesResolvers": {"x": {"acme": {}, "tailscale": {}}}})


def test_keys_are_case_insensitive_but_map_keys_keep_their_case() -> None:
    c = StaticConfig.model_validate({
        "ENTRYPOINTS": {"WebSecure": {"ADDRESS": ":443", "Http": {"MaxHeaderBytes": 10}}},
        "providers": {"FILE": {"DIRECTORY": "/d"}, "providersthrottleduration": "5s"},
        "Log": {"LEVEL": "debug"},
    })
    assert list(c.entry_points) == ["WebSecure"]
    assert c.entry_points["WebSecure"].http.max_header_bytes == 10
    assert c.providers.file is not None and c.providers.file.directory == "/d"
    assert c.providers.providers_throttle_duration == 5.0
    assert c.log.level == "DEBUG"


def test_keys_folding_to_the_same_field_are_an_error() -> None:
    with pytest.raises(ValidationError, match="same key"):
        StaticConfig.model_validate({"entryPoints": {}, "entrypoints": {}})


def test_python_names_are_accepted_too() -> None:
    ep = EntryPoint(address=":80", as_default=True)
    assert ep.as_default is True
    assert EntryPoint.model_validate({"address": ":80", "asdefault": True}).as_default is True


def test_models_are_frozen_and_compare_by_value() -> None:
    a = StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80"}}})
    b = StaticConfig.model_validate({"entrypoints": {"web": {"address": ":80"}}})
    assert a == b
    with pytest.raises(ValidationError):
        a.log = a.log  # type: ignore[misc]


def test_unknown_keys_are_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        StaticConfig.model_validate({"entryPoints": {"web": {"address": ":80", "adress": ":81"}}})
    assert info.value.errors()[0]["type"] == "extra_forbidden"


def test_lists_accept_comma_separated_strings() -> None:
    ep = EntryPoint.model_validate({"address": ":80", "http": {"middlewares": "a@file, b@file"},
                                    "forwardedHeaders": {"trustedIPs": "10.0.0.0/8,127.0.0.1"}})
    assert ep.http.middlewares == ("a@file", "b@file")
    assert ep.forwarded_headers.trusted_ips == ("10.0.0.0/8", "127.0.0.1")


def test_trusted_ips_must_be_ips_or_cidrs() -> None:
    with pytest.raises(ValidationError, match="not an IP address"):
        EntryPoint.model_validate({"address": ":80", "proxyProtocol": {"trustedIPs": ["10.0.0.0/33"]}})


def test_numbers_are_accepted_for_strings() -> None:
    assert StaticConfig.model_validate({"ping": {"entryPoint": 8082}}).ping == Ping(entry_point="8082")


def test_precedence_is_lower_cased_and_checked() -> None:
    c = StaticConfig.model_validate({"providers": {"precedence": ["File", "Docker"]}})
    assert c.providers.precedence == ("file", "docker")
    with pytest.raises(ValidationError, match='did you mean "docker"'):
        StaticConfig.model_validate({"providers": {"precedence": ["dokcer"]}})


@pytest.mark.parametrize("file_cfg", [{}, {"filename": "a.yml", "directory": "/d"}])
def test_file_provider_needs_exactly_one_source(file_cfg: dict[str, str]) -> None:
    with pytest.raises(ValidationError, match="filename"):
        StaticConfig.model_validate({"providers": {"file": file_cfg}})


def test_file_provider_defaults() -> None:
    c = StaticConfig.model_validate({"providers": {"file": {"filename": "dyn.yml"}}})
    assert c.providers.file is not None
    assert (c.providers.file.watch, c.providers.file.debug_log_generated_template) == (True, False)


def test_rule_syntax_and_api_base_path_are_checked() -> None:
    assert StaticConfig.model_validate({"core": {"defaultRuleSyntax": "V2"}}).core.default_rule_syntax == "v2"
    with pytest.raises(ValidationError):
        StaticConfig.model_validate({"core": {"defaultRuleSyntax": "v4"}})
    with pytest.raises(ValidationError, match="basePath"):
        StaticConfig.model_validate({"api": {"basePath": "no-slash"}})


# -- implicit entry points (Traefik's SetEffectiveConfiguration) -----------------------------------


def _eps(data: dict[str, object]) -> dict[str, str]:
    c = StaticConfig.model_validate(data).with_implicit_entry_points()
    return {name: ep.address for name, ep in c.entry_points.items()}


def test_no_entry_points_gives_http_on_80() -> None:
    assert _eps({}) == {"http": ":80"}


def test_defined_entry_points_are_kept_alone() -> None:
    assert _eps({"entryPoints": {"web": {"address": ":8000"}}}) == {"web": ":8000"}


@pytest.mark.parametrize("data", [
    {"api": {"insecure": True}},
    {"ping": {}},
    {"metrics": {"prometheus": {}}},
    {"providers": {"rest": {"insecure": True}}},
])
def test_internal_entry_point_is_added(data: dict[str, object]) -> None:
    assert _eps({"entryPoints": {"web": {"address": ":80"}}, **data}) == {"web": ":80", "traefik": ":8080"}


@pytest.mark.parametrize("data", [
    {"api": {}},
    {"ping": {"manualRouting": True}},
    {"ping": {"entryPoint": "web"}},
    {"metrics": {"prometheus": {"entryPoint": "web"}}},
    {"metrics": {"prometheus": {"manualRouting": True}}},
])
def test_internal_entry_point_is_not_added(data: dict[str, object]) -> None:
    assert _eps({"entryPoints": {"web": {"address": ":80"}}, **data}) == {"web": ":80"}


def test_user_defined_traefik_entry_point_wins() -> None:
    assert _eps({"entryPoints": {"traefik": {"address": ":9000"}}, "ping": {}}) == {"traefik": ":9000"}


def test_default_entry_points() -> None:
    c = StaticConfig.model_validate({"entryPoints": {
        "web": {"address": ":80"}, "websecure": {"address": ":443"}, "dns": {"address": ":53/udp"},
        "traefik": {"address": ":8080"}}})
    assert c.default_entry_points() == ("web", "websecure")
    marked = StaticConfig.model_validate({"entryPoints": {
        "web": {"address": ":80"}, "websecure": {"address": ":443", "asDefault": True}}})
    assert marked.default_entry_points() == ("websecure",)
