"""The label grammar (``ferryman.dynamic.labels``) and the container → configuration rules
(``ferryman.providers.docker_config``) beyond Traefik's own test vectors."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.dynamic.decode import validate_elements
from ferryman.dynamic.labels import decode_labels, decode_paths
from ferryman.errors import ConfigError
from ferryman.providers.docker_config import (
    ContainerInfo,
    DockerSettings,
    TemplateError,
    build_configuration,
    container_from_inspect,
    normalize,
    render_default_rule,
    service_name,
)

# --------------------------------------------------------------------------------------------
# Label grammar


def test_labels_nested_case_insensitive_and_first_spelling_kept() -> None:
    got = decode_labels({
        "traefik.http.routers.Web.rule": "Host(`a`)",
        "TRAEFIK.HTTP.ROUTERS.web.EntryPoints": "web,websecure",
        "traefik.enable": "true",
        "traefik.docker.network": "front",
        "com.example": "x",
    })
    assert got.errors == ()
    # labels are applied in sorted order; the first spelling of a name is kept
    assert got.raw == {"http": {"routers": {"web": {"EntryPoints": "web,websecure", "rule": "Host(`a`)"}}}}
    router = validate_elements(got.raw, "t").config.http.routers["web"]
    assert router.entry_points == ("web", "websecure")


def test_labels_indexed_lists_map_keys_and_true_sections() -> None:
    got = decode_labels({
        "traefik.http.routers.r.tls": "true",
        "traefik.http.routers.r.tls.certresolver": "le",
        "traefik.http.routers.r.tls.domains[1].main": "b.example",
        "traefik.http.routers.r.tls.domains[0].main": "a.example",
        "traefik.http.routers.r.tls.domains[0].sans": "x.a.example, y.a.example",
        "traefik.http.middlewares.h.headers.customrequestheaders.X-Foo": "bar",
        "traefik.http.middlewares.c.compress": "true",
        "traefik.http.routers.s.tls": "true",
    })
    assert got.errors == ()
    cfg = validate_elements(got.raw, "t").config
    tls = cfg.http.routers["r"].tls
    assert tls is not None and tls.cert_resolver == "le"
    assert [d.main for d in tls.domains] == ["a.example", "b.example"]
    assert tls.domains[0].sans == ("x.a.example", "y.a.example")
    assert cfg.http.routers["s"].tls is not None
    headers = cfg.http.middlewares["h"].headers
    assert headers is not None and headers.custom_request_headers == {"X-Foo": "bar"}
    assert cfg.http.middlewares["c"].kind == "compress"


@pytest.mark.parametrize(("label", "fragment"), [
    ("traefik.http.routers.r.tls.domains[x].main", "malformed path element"),
    ("traefik.http.routers.r..rule", "malformed path element"),
    ("traefik.http.routers.a@b.rule", "'@' is not allowed"),
])
def test_label_error_names_label_and_drops_only_its_element(label: str, fragment: str) -> None:
    got = decode_labels({label: "v", "traefik.http.routers.ok.rule": "Host(`ok`)",
                         "traefik.http.routers.r.rule": "Host(`r`)"})
    assert len(got.errors) == 1
    err = got.errors[0]
    assert err.label == label and fragment in err.message and label in str(err)
    assert err.kind == "http.routers"
    assert "ok" in got.raw["http"]["routers"]
    assert err.name not in got.raw["http"]["routers"]


def test_label_unknown_kind_is_an_error_without_element() -> None:
    got = decode_labels({"traefik.http.routres.r.rule": "x", "traefik.wrong.label": "1"})
    assert [e.label for e in got.errors] == ["traefik.http.routres.r.rule"]
    assert "unknown key 'routres'" in got.errors[0].message
    assert got.errors[0].name == ""


def test_list_and_mapping_clash() -> None:
    got = decode_labels({"traefik.http.routers.r.tls.domains[0].main": "a",
                         "traefik.http.routers.r.tls.domains.main": "b"})
    assert len(got.errors) == 1 and "both" in got.errors[0].message


def test_decode_paths_is_the_kv_entry_point() -> None:
    got = decode_paths({"traefik/http/services/s/loadbalancer/servers/0/url":
                        (["http", "services", "s", "loadbalancer", "servers[0]", "url"], "http://a:1")})
    svc = validate_elements(got.raw, "kv").config.http.services["s"]
    assert svc.load_balancer is not None and svc.load_balancer.servers[0].url == "http://a:1"


# --------------------------------------------------------------------------------------------
# Names and templates


def test_normalize_and_compose_service_name() -> None:
    assert normalize("go_blog") == "go-blog"
    assert normalize("/a..b--c") == "a-b-c"
    c = ContainerInfo(id="1", name="/blog-go-1",
                      labels={"com.docker.compose.service": "go", "com.docker.compose.project": "blog"})
    assert service_name(c) == "go-blog"
    assert service_name(ContainerInfo(id="1", name="/my_app")) == "my-app"


def test_default_rule_template() -> None:
    model = {"Name": "go-blog", "ContainerName": "blog-go-1", "Labels": {"domain": "example.com"}}
    assert render_default_rule("Host(`{{ normalize .Name }}`)", model) == "Host(`go-blog`)"
    assert render_default_rule('Host(`{{ .ContainerName }}.{{ index .Labels "domain" }}`)', model) == \
        "Host(`blog-go-1.example.com`)"
    assert render_default_rule("Host(`{{ .Name | upper }}`)", model) == "Host(`GO-BLOG`)"
    assert render_default_rule('{{ index .Labels "missing" }}', model) == ""
    assert render_default_rule('Host(`{{ normalize (index .Labels "domain") }}`)', model) == "Host(`example-com`)"
    for bad in ("{{ .Toto }}", "{{ nope .Name }}", "{{ .Name", "{{ (.Name }}"):
        with pytest.raises(TemplateError):
            render_default_rule(bad, model)


# --------------------------------------------------------------------------------------------
# Containers → configuration


def web(name: str = "/app", labels: dict[str, str] | None = None, **kw: object) -> ContainerInfo:
    base: dict[str, object] = {"id": name.strip("/"), "name": name, "labels": labels or {},
                               "networks": {"bridge": "172.17.0.2"}, "ports": ("8080/tcp", "80/tcp")}
    base.update(kw)
    return ContainerInfo(**base)  # type: ignore[arg-type]


def test_defaults_lowest_port_router_and_service() -> None:
    cfg, problems, _ = build_configuration([web()])
    assert problems == []
    assert cfg.http.routers["app"].rule == "Host(`app`)"
    assert cfg.http.routers["app"].service == "app"
    lb = cfg.http.services["app"].load_balancer
    assert lb is not None and [s.url for s in lb.servers] == ["http://172.17.0.2:80"]


def test_host_network_and_ipv6() -> None:
    cfg, _, _ = build_configuration([web(network_mode="host", networks={})])
    lb = cfg.http.services["app"].load_balancer
    assert lb is not None and lb.servers[0].url == "http://127.0.0.1:80"
    cfg, _, _ = build_configuration([web(networks={"v6": "fd00::2"})])
    lb = cfg.http.services["app"].load_balancer
    assert lb is not None and lb.servers[0].url == "http://[fd00::2]:80"


def test_network_label_picks_the_network() -> None:
    c = web(labels={"traefik.docker.network": "back"}, networks={"front": "10.0.0.2", "back": "10.1.0.2"})
    cfg, _, _ = build_configuration([c])
    lb = cfg.http.services["app"].load_balancer
    assert lb is not None and lb.servers[0].url == "http://10.1.0.2:80"


def test_exposed_by_default_false_and_enable_label() -> None:
    s = DockerSettings(exposed_by_default=False)
    cfg, _, _ = build_configuration([web("/a"), web("/b", {"traefik.enable": "true"})], s)
    assert set(cfg.http.services) == {"b"}


@pytest.mark.parametrize(("expr", "kept"), [
    ('Label("env", "prod")', {"a"}),
    ('!Label("env", "prod")', {"b"}),
    ('Label("env", "prod") || Label("team", "x")', {"a", "b"}),
    ('LabelRegex("env", "pr.*") && !Label("team", "x")', {"a"}),
    ('LabelRegex("env", "p")', set()),
])
def test_constraints(expr: str, kept: set[str]) -> None:
    cs = [web("/a", {"env": "prod"}), web("/b", {"env": "dev", "team": "x"})]
    cfg, problems, _ = build_configuration(cs, DockerSettings(constraints=expr))
    assert problems == []
    assert set(cfg.http.services) == kept


def test_bad_constraints_reported() -> None:
    cfg, problems, _ = build_configuration([web()], DockerSettings(constraints='Label("a")'))
    assert cfg.http.services == {} and problems and "constraints" in problems[0].message


def test_stopped_unhealthy_and_allow_non_running() -> None:
    cfg, _, _ = build_configuration([web(state="exited"), web("/h", health="unhealthy"),
                                     web("/s", health="starting")])
    assert cfg.http.services == {}
    cfg, _, _ = build_configuration([web(state="exited", labels={"traefik.docker.allownonrunning": "true"})])
    lb = cfg.http.services["app"].load_balancer
    assert lb is not None and lb.servers == () and "app" in cfg.http.routers


def test_replicas_merge_and_conflicts_reported() -> None:
    lbl = {"com.docker.compose.service": "api", "com.docker.compose.project": "shop",
           "traefik.http.routers.api.rule": "Host(`api.example`)"}
    r1 = web("/shop-api-1", lbl, networks={"n": "10.0.0.1"})
    r2 = web("/shop-api-2", lbl, networks={"n": "10.0.0.2"})
    other = web("/other", {"traefik.http.routers.api.rule": "Host(`other.example`)"})
    cfg, problems, _ = build_configuration([r2, r1, other])
    lb = cfg.http.services["api-shop"].load_balancer
    assert lb is not None and [s.url for s in lb.servers] == ["http://10.0.0.1:80", "http://10.0.0.2:80"]
    assert "api" not in cfg.http.routers
    assert [p.name for p in problems] == ["api"]
    assert "defined multiple times with different configurations" in problems[0].message
    assert "other" in problems[0].message


def test_bad_label_disables_only_that_element() -> None:
    c = web(labels={"traefik.http.routers.bad.tls.domains[x].main": "a",
                    "traefik.http.routers.good.rule": "Host(`good`)",
                    "traefik.http.middlewares.m.ratelimit.average": "many"})
    cfg, problems, _ = build_configuration([c])
    assert set(cfg.http.routers) == {"good"} and cfg.http.middlewares == {}
    messages = " | ".join(p.message for p in problems)
    assert "traefik.http.routers.bad.tls.domains[x].main" in messages and "container 'app'" in messages
    assert "http.middlewares.m" in messages


def test_port_and_url_labels() -> None:
    c = web(labels={"traefik.http.services.s.loadbalancer.server.port": "9000",
                    "traefik.http.services.s.loadbalancer.server.scheme": "h2c"})
    cfg, _, _ = build_configuration([c])
    lb = cfg.http.services["s"].load_balancer
    assert lb is not None and lb.servers[0].url == "h2c://172.17.0.2:9000"
    c = web(labels={"traefik.http.services.s.loadbalancer.server.url": "http://x:1",
                    "traefik.http.services.s.loadbalancer.server.port": "9000"})
    cfg, problems, _ = build_configuration([c])
    assert cfg.http.services == {} and "URL is defined" in problems[0].message


def test_no_port_skips_container_with_problem() -> None:
    cfg, problems, _ = build_configuration([web(ports=())])
    assert cfg.http.services == {} and "port is missing" in problems[0].message


def test_container_from_inspect() -> None:
    c = container_from_inspect({
        "Id": "abc", "Name": "/web-1",
        "Config": {"Labels": {"a": "b"}, "ExposedPorts": {"8080/tcp": {}, "443/tcp": {}}},
        "State": {"Status": "running", "Health": {"Status": "healthy"}},
        "HostConfig": {"NetworkMode": "bridge"},
        "NetworkSettings": {"Ports": {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}], "443/tcp": None},
                            "Networks": {"bridge": {"IPAddress": "172.17.0.3"}}},
    })
    assert c.container_name == "web-1" and c.ports == ("443/tcp", "8080/tcp")
    assert c.port_bindings["8080/tcp"] == (("0.0.0.0", "18080"),) and c.port_bindings["443/tcp"] == ()
    assert c.networks == {"bridge": "172.17.0.3"} and c.health == "healthy"


# --------------------------------------------------------------------------------------------
# Properties: the parsers only ever fail with their own errors


_KEY_PARTS = st.sampled_from(["traefik", "http", "tcp", "udp", "tls", "routers", "services", "middlewares",
                              "r", "R", "rule", "tls", "domains[0]", "domains[x]", "[1]", "", "a@b",
                              "loadbalancer", "server", "port", "servers[2]", "headers", "X-Foo"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.lists(_KEY_PARTS, min_size=1, max_size=7).map(".".join),
                       st.sampled_from(["true", "false", "", "80", "a,b", "Host(`x`)"]), max_size=8))
def test_label_decoder_never_raises(labels: dict[str, str]) -> None:
    got = decode_labels(labels)
    for err in got.errors:
        assert err.label in labels
    with contextlib.suppress(ConfigError):  # a structural problem is a reported error, never a crash
        validate_elements(got.raw, "prop")
    cfg, _problems, _warnings = build_configuration([web(labels=labels)])
    assert cfg is not None


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet='{}. |()"`\\abNmeizLl-', max_size=30))
def test_template_fails_only_with_template_error(template: str) -> None:
    with contextlib.suppress(TemplateError):
        render_default_rule(template, {"Name": "n", "ContainerName": "c", "Labels": {"a": "b"}})
