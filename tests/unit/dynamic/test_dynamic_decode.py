"""The file provider's decoder: structural errors raise, element errors are isolated."""

from __future__ import annotations

import pytest

from ferryman.dynamic.decode import (
    Decoded,
    ElementError,
    decode_document,
    decode_files,
    format_for,
    validate_elements,
)
from ferryman.dynamic.models import Configuration
from ferryman.errors import ConfigError

SRC = "/etc/ferryman/dyn.yml"


def yaml_doc(text: str, source: str = SRC) -> Decoded:
    return decode_document(text.encode(), source=source, fmt="yaml")


def messages(decoded: Decoded) -> list[str]:
    return [e.message for e in decoded.errors]


SIMPLE_YAML = """
http:
  routers:
    web:
      rule: "Host(`example.com`)"
      entryPoints: [web]
      service: api
  services:
    api:
      loadBalancer:
        servers:
          - url: "http://10.0.0.1:8080"
"""

SIMPLE_TOML = """
[http.routers.web]
rule = "Host(`example.com`)"
entryPoints = ["web"]
service = "api"

[[http.services.api.loadBalancer.servers]]
url = "http://10.0.0.1:8080"
"""


def test_simple_yaml() -> None:
    d = yaml_doc(SIMPLE_YAML)
    assert d.errors == [] and d.warnings == []
    router = d.config.http.routers["web"]
    assert router.rule == "Host(`example.com`)"
    assert router.entry_points == ("web",)
    assert d.config.http.services["api"].load_balancer is not None
    assert d.config.http.services["api"].load_balancer.servers[0].url == "http://10.0.0.1:8080"


def test_toml_gives_the_same_configuration() -> None:
    toml = decode_document(SIMPLE_TOML, source="dyn.toml", fmt="toml")
    assert toml.errors == []
    assert toml.config == yaml_doc(SIMPLE_YAML).config


def test_unknown_key_names_file_key_path_and_suggestion() -> None:
    d = yaml_doc("""
http:
  routers:
    web:
      rule: "Path(`/`)"
      service: api
      priorty: 10
    ok:
      rule: "Path(`/ok`)"
      service: api
""")
    assert messages(d) == [
        '/etc/ferryman/dyn.yml: http.routers.web.priorty: unknown key (did you mean "priority"?)']
    err = d.errors[0]
    assert (err.kind, err.name, err.source, err.path) == ("http.routers", "web", SRC, "http.routers.web.priorty")
    # The broken router is dropped, its neighbour survives.
    assert list(d.config.http.routers) == ["ok"]


def test_nested_unknown_keys_get_suggestions_from_the_right_model() -> None:
    d = yaml_doc("""
http:
  services:
    api:
      loadBalancer:
        servers:
          - url: "http://a:1"
            weigth: 2
        healthCheck: {intervall: 5s}
  routers:
    r:
      rule: "Path(`/`)"
      service: api
      tls: {certresolvr: le}
""")
    assert sorted(messages(d)) == sorted([
        f'{SRC}: http.services.api.loadBalancer.servers[0].weigth: unknown key (did you mean "weight"?)',
        f'{SRC}: http.services.api.loadBalancer.healthCheck.intervall: unknown key (did you mean "interval"?)',
        f'{SRC}: http.routers.r.tls.certresolvr: unknown key (did you mean "certResolver"?)',
    ])
    assert d.config.http.routers == {} and d.config.http.services == {}


def test_type_errors_are_one_readable_line() -> None:
    d = yaml_doc("""
http:
  routers:
    a: {rule: "Path(`/`)", service: s, priority: high}
  services:
    s: {loadBalancer: {passHostHeader: maybe, healthCheck: {interval: soon}}}
    empty: {}
""")
    assert sorted(messages(d)) == sorted([
        f"{SRC}: http.routers.a.priority: expected an integer, got 'high'",
        f"{SRC}: http.services.s.loadBalancer.passHostHeader: expected true or false, got 'maybe'",
        f"{SRC}: http.services.s.loadBalancer.healthCheck.interval: invalid duration 'soon' "
        '(write e.g. "10s", "1m30s", "250ms")',
        f"{SRC}: http.services.empty: a service must define exactly one of loadBalancer, weighted, "
        "mirroring, failover, highestRandomWeight (found: none)",
    ])


def test_element_that_is_not_a_mapping() -> None:
    d = yaml_doc("http:\n  routers:\n    a: just-a-string\n    b:\n")
    assert messages(d) == [f"{SRC}: http.routers.a: expected a mapping, got the string 'just-a-string'"]
    assert "b" in d.config.http.routers  # an empty element decodes (merge reports what it lacks)


def test_keys_are_case_insensitive() -> None:
    d = yaml_doc("""
HTTP:
  Routers:
    web:
      RULE: "Host(`a`)"
      EntryPoints: [web]
      Service: api
  SERVICES:
    api:
      LoadBalancer:
        Servers: [{URL: "http://x:1"}]
""")
    assert d.errors == []
    assert d.config == yaml_doc("""
http:
  routers:
    web: {rule: "Host(`a`)", entryPoints: [web], service: api}
  services:
    api: {loadBalancer: {servers: [{url: "http://x:1"}]}}
""").config


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n", "---\n"])
def test_empty_document_is_an_empty_configuration(text: str) -> None:
    d = yaml_doc(text)
    assert d.config == Configuration() and d.errors == [] and d.warnings == []


def test_empty_toml() -> None:
    assert decode_document(b"", source="x.toml", fmt="toml").config == Configuration()


def test_yaml_syntax_error_has_file_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        yaml_doc("http:\n  routers:\n    web: {rule: x\n")
    assert info.value.source is not None and info.value.source.startswith(f"{SRC}:4:")
    assert "YAML syntax error" in str(info.value)


def test_yaml_tab_indentation_hint() -> None:
    with pytest.raises(ConfigError) as info:
        yaml_doc("http:\n\trouters: {}\n")
    assert info.value.source == f"{SRC}:2:1"
    assert info.value.fix == "indent with spaces, not tabs"


def test_yaml_duplicate_key_is_an_error_as_in_go_yaml_v3() -> None:
    with pytest.raises(ConfigError) as info:
        yaml_doc("http:\n  routers:\n    a: {rule: x}\n    a: {rule: y}\n")
    assert info.value.source == f"{SRC}:4:5"
    assert "mapping key 'a' already defined at line 3" in str(info.value)


def test_yaml_merge_keys_may_be_overridden() -> None:
    d = yaml_doc("""
x-defaults: &defaults
  entryPoints: [web]
  service: api
http:
  routers:
    a:
      <<: *defaults
      rule: "Path(`/a`)"
      service: other
""")
    assert d.errors == []
    assert d.config.http.routers["a"].service == "other"
    assert d.config.http.routers["a"].entry_points == ("web",)
    assert d.warnings == [f"{SRC}: x-defaults: unknown top-level key ignored (known sections: http, tcp, "
                          "udp, tls), as Traefik ignores it"]


def test_yaml_core_schema_scalars() -> None:
    # yaml.v3 (Traefik) reads YAML 1.2: on/yes are strings, 1:30 is not base 60, dates stay strings.
    d = yaml_doc("""
http:
  routers:
    on: {rule: "Path(`/`)", service: "1:30", middlewares: [yes]}
  middlewares:
    yes: {redirectScheme: {port: 0o17}}
""")
    assert d.errors == []
    router = d.config.http.routers["on"]
    assert router.service == "1:30" and router.middlewares == ("yes",)
    mw = d.config.http.middlewares["yes"].redirect_scheme
    assert mw is not None and mw.port == "15"


def test_toml_syntax_error_has_line_and_column() -> None:
    with pytest.raises(ConfigError) as info:
        decode_document("[http.routers.a]\nrule = \n", source="d.toml", fmt="toml")
    assert info.value.source == "d.toml:2:8"
    assert "TOML syntax error" in str(info.value)


def test_toml_error_at_end_of_document_points_at_the_last_line() -> None:
    with pytest.raises(ConfigError) as info:
        decode_document("[http.routers.a]\nrule = 'x'\nrule = 'y'", source="d.toml", fmt="toml")
    assert info.value.source == "d.toml:3"


@pytest.mark.parametrize("text", ["- http\n", "just text\n", "42\n"])
def test_top_level_must_be_a_mapping(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        yaml_doc(text)
    assert "the top level must be a mapping" in str(info.value)


def test_misspelled_top_level_section_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        yaml_doc("htttp:\n  routers: {}\n")
    assert str(info.value) == f'{SRC}: htttp: unknown section \'htttp\' (fix: did you mean "http"?)'


def test_misspelled_http_section_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        yaml_doc("http:\n  routres: {}\n")
    assert info.value.path == "http.routres"
    assert info.value.fix == 'did you mean "routers"?'


def test_section_that_is_not_a_mapping_is_an_error() -> None:
    with pytest.raises(ConfigError) as info:
        yaml_doc("http:\n  routers: [a, b]\n")
    assert info.value.path == "http.routers"


def test_invalid_utf8() -> None:
    with pytest.raises(ConfigError) as info:
        decode_document(b"http:\n  routers: {}\n# \xff\n", source=SRC, fmt="yaml")
    assert "line 3" in str(info.value)


def test_tcp_udp_and_unimplemented_middlewares_are_warnings() -> None:
    d = yaml_doc("""
http:
  middlewares:
    auth: {plugin: {demo: {}}}
    https: {redirectScheme: {scheme: https}}
tcp:
  routers: {db: {rule: "HostSNI(`*`)", service: db}}
udp:
  services: {dns: {loadBalancer: {servers: [{address: "1.1.1.1:53"}]}}}
""")
    assert d.errors == []
    assert set(d.config.http.middlewares) == {"auth", "https"}
    assert d.warnings == [
        f"{SRC}: http.middlewares.auth: middleware type 'plugin' is not implemented in ferryman yet; "
        "routers that use it are disabled",
        f"{SRC}: tcp: TCP routing is not implemented in ferryman yet; the 'tcp' section is ignored",
        f"{SRC}: udp: UDP routing is not implemented in ferryman yet; the 'udp' section is ignored",
    ]
    assert d.config.tcp == {"routers": {"db": {"rule": "HostSNI(`*`)", "service": "db"}}}


def test_template_markers_are_reported() -> None:
    d = yaml_doc("""
http:
  routers:
    web:
      rule: "Host(`{{ env "DOMAIN" }}`)"
      service: api
""".replace('"DOMAIN"', "'DOMAIN'"))
    assert len(d.warnings) == 1
    assert d.warnings[0].startswith(f"{SRC}:5: contains Go template markers")
    assert "does not evaluate templates yet" in d.warnings[0]
    assert d.config.http.routers["web"].rule == "Host(`{{ env 'DOMAIN' }}`)"


def test_template_that_breaks_yaml_says_so() -> None:
    with pytest.raises(ConfigError) as info:
        yaml_doc("{{ range $i, $e := until 3 }}\nhttp: {}\n{{ end }}\n")
    assert info.value.fix is not None and "template" in info.value.fix


def test_tls_elements_are_validated_one_by_one() -> None:
    d = yaml_doc("""
tls:
  certificates:
    - certFile: /a.crt
      keyFile: /a.key
    - certFile: /b.crt
      keyfiel: /b.key
  options:
    modern: {minVersion: VersionTLS13}
    broken: {minVersion: [1]}
  stores:
    default: {defaultCertificate: {certFile: /c.crt, keyFile: /c.key}}
""")
    assert sorted(messages(d)) == sorted([
        f'{SRC}: tls.certificates[1].keyfiel: unknown key (did you mean "keyFile"?)',
        f"{SRC}: tls.options.broken.minVersion: expected a string, got a list",
    ])
    assert [c.cert_file for c in d.config.tls.certificates] == ["/a.crt"]
    assert set(d.config.tls.options) == {"modern"}
    assert set(d.config.tls.stores) == {"default"}
    assert {(e.kind, e.name) for e in d.errors} == {("tls.certificates", "1"), ("tls.options", "broken")}


def test_validate_elements_takes_an_already_nested_mapping() -> None:
    # What a flat-key decoder (labels, KV) will hand over after nesting its keys.
    raw = {"http": {"routers": {"r": {"rule": "Path(`/`)", "service": "s", "priority": "7"}},
                    "middlewares": {"m": {"redirectscheme": {"scheme": "https"}}}}}
    d = validate_elements(raw, "docker container web-1")
    assert d.errors == []
    assert d.config.http.routers["r"].priority == 7
    assert d.config.http.middlewares["m"].redirect_scheme is not None
    bad = validate_elements({"http": {"routers": {"r": {"rul": "x"}}}}, "docker container web-1")
    assert messages(bad) == ['docker container web-1: http.routers.r.rul: unknown key (did you mean "rule"?)']


def test_format_for() -> None:
    assert format_for("a/b/dyn.YML") == "yaml"
    assert format_for("dyn.yaml") == "yaml"
    assert format_for("x.Toml") == "toml"
    assert format_for("notes.txt") is None
    assert format_for("dir.yml/README") is None
    assert format_for("Makefile") is None


# --------------------------------------------------------------------------------------------
# Directories


def test_directory_merges_files_and_ignores_others() -> None:
    d = decode_files([
        ("conf/b.toml", b'[http.services.api.loadBalancer]\n[[http.services.api.loadBalancer.servers]]\n'
                        b'url = "http://x:1"\n'),
        ("conf/a.yml", b"http:\n  routers:\n    web: {rule: 'Path(`/`)', service: api}\n"),
        ("conf/README.md", b"not configuration: {{{{"),
        ("conf/.a.yml.swp", b"\x00\x01"),
    ])
    assert d.errors == [] and d.warnings == []
    assert set(d.config.http.routers) == {"web"}
    assert set(d.config.http.services) == {"api"}


def test_directory_first_file_wins_for_duplicate_names() -> None:
    d = decode_files([
        ("conf/b.yml", b"http:\n  routers:\n    web: {rule: 'Path(`/b`)', service: b}\n"),
        ("conf/a.yml", b"http:\n  routers:\n    web: {rule: 'Path(`/a`)', service: a}\n"),
    ])
    assert d.config.http.routers["web"].rule == "Path(`/a`)"
    assert d.warnings == [
        "conf/b.yml: http.routers.web: already defined in conf/a.yml; this definition is skipped "
        "(the first file in name order wins, as in Traefik)"]


def test_directory_order_is_traefiks_tree_walk() -> None:
    # os.ReadDir sorts by name at each level and Traefik recurses in place: "a/" before "a.yml".
    d = decode_files([
        ("conf/a.yml", b"http:\n  routers:\n    web: {rule: 'Path(`/file`)', service: s}\n"),
        ("conf/a/z.yml", b"http:\n  routers:\n    web: {rule: 'Path(`/subdir`)', service: s}\n"),
    ])
    assert d.config.http.routers["web"].rule == "Path(`/subdir`)"


def test_directory_broken_first_definition_still_claims_the_name() -> None:
    d = decode_files([
        ("a.yml", b"http:\n  routers:\n    web: {rule: 'Path(`/a`)', service: a, priorty: 1}\n"),
        ("b.yml", b"http:\n  routers:\n    web: {rule: 'Path(`/b`)', service: b}\n"),
    ])
    assert d.config.http.routers == {}
    assert [e.path for e in d.errors] == ["http.routers.web.priorty"]
    assert d.warnings[0].startswith("b.yml: http.routers.web: already defined in a.yml")


def test_directory_structural_error_in_one_file_fails_the_directory() -> None:
    with pytest.raises(ConfigError) as info:
        decode_files([("a.yml", b"http: {}\n"), ("b.yml", b"http: [\n")])
    assert info.value.source is not None and info.value.source.startswith("b.yml:")


def test_directory_certificates_are_kept_once() -> None:
    cert = b"tls:\n  certificates:\n    - {certFile: /c.crt, keyFile: /c.key}\n"
    d = decode_files([("a.yml", cert), ("b.yml", cert)])
    assert len(d.config.tls.certificates) == 1
    assert d.warnings == ["b.yml: tls.certificates: certificate '/c.crt' is already configured in a.yml; skipped"]


def test_directory_of_nothing() -> None:
    assert decode_files([]).config == Configuration()
    assert decode_files([("notes.txt", b"x")]).config == Configuration()


def test_element_error_str_is_its_message() -> None:
    err = ElementError("http.routers", "a", "f: http.routers.a: bad", "f", "http.routers.a")
    assert str(err) == "f: http.routers.a: bad"
