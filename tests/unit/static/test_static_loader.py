"""Loading the static configuration: one source chosen as Traefik does, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from ferryman.errors import ConfigError
from ferryman.static import LoadedStatic, StaticConfigError, load_static
from ferryman.static.loader import _search_dirs, find_config_file

YAML_CONFIG = """\
entryPoints:
  web:
    address: ":80"
    http:
      redirections:
        entryPoint:
          to: websecure
          scheme: https
  websecure:
    address: ":443"
    asDefault: true
    http:
      middlewares: ["secure@file", "compress@file"]
      tls:
        options: modern@file
        domains:
          - main: example.com
            sans: ["*.example.com"]
    transport:
      respondingTimeouts:
        readTimeout: 30s
        idleTimeout: 90
    forwardedHeaders:
      trustedIPs: ["10.0.0.0/8", "192.168.1.1"]
providers:
  providersThrottleDuration: 500ms
  file:
    directory: /etc/traefik/dynamic
    watch: false
log:
  level: INFO
  format: json
ping: {}
api:
  insecure: true
"""

TOML_CONFIG = """\
[entryPoints.web]
address = ":80"
[entryPoints.web.http.redirections.entryPoint]
to = "websecure"
scheme = "https"

[entryPoints.websecure]
address = ":443"
asDefault = true
[entryPoints.websecure.http]
middlewares = ["secure@file", "compress@file"]
[entryPoints.websecure.http.tls]
options = "modern@file"
[[entryPoints.websecure.http.tls.domains]]
main = "example.com"
sans = ["*.example.com"]
[entryPoints.websecure.transport.respondingTimeouts]
readTimeout = "30s"
idleTimeout = 90
[entryPoints.websecure.forwardedHeaders]
trustedIPs = ["10.0.0.0/8", "192.168.1.1"]

[providers]
providersThrottleDuration = "500ms"
[providers.file]
directory = "/etc/traefik/dynamic"
watch = false

[log]
level = "INFO"
format = "json"

[ping]

[api]
insecure = true
"""

FLAGS = [
    "--entryPoints.web.address=:80",
    "--entryPoints.web.http.redirections.entryPoint.to=websecure",
    "--entryPoints.web.http.redirections.entryPoint.scheme=https",
    "--entrypoints.websecure.address=:443",
    "--entrypoints.websecure.asDefault",
    "--entrypoints.websecure.http.middlewares=secure@file,compress@file",
    "--entrypoints.websecure.http.tls.options=modern@file",
    "--entrypoints.websecure.http.tls.domains[0].main=example.com",
    "--entrypoints.websecure.http.tls.domains[0].sans=*.example.com",
    "--entrypoints.websecure.transport.respondingTimeouts.readTimeout=30s",
    "--entrypoints.websecure.transport.respondingTimeouts.idleTimeout", "90",
    "--entrypoints.websecure.forwardedHeaders.trustedIPs=10.0.0.0/8,192.168.1.1",
    "--providers.providersThrottleDuration=500ms",
    "--providers.file.directory=/etc/traefik/dynamic",
    "--providers.file.watch=false",
    "--log.level=INFO",
    "-log.format=json",
    "--ping",
    "--api.insecure",
]

ENV = {
    "TRAEFIK_ENTRYPOINTS_WEB_ADDRESS": ":80",
    "TRAEFIK_ENTRYPOINTS_WEB_HTTP_REDIRECTIONS_ENTRYPOINT_TO": "websecure",
    "TRAEFIK_ENTRYPOINTS_WEB_HTTP_REDIRECTIONS_ENTRYPOINT_SCHEME": "https",
    "TRAEFIK_ENTRYPOINTS_WEBSECURE_ADDRESS": ":443",
    "TRAEFIK_ENTRYPOINTS_WEBSECURE_ASDEFAULT": "true",
    "TRAEFIK_ENTRYPOINTS_WEBSECURE_HTTP_MIDDLEWARES": "secure@file,compress@file",
    "TRAEFIK_ENTRYPOINTS_WEBSECURE_HTTP_TLS_OPTIONS": "modern@file",
    "TRAEFIK_ENTRYPOINTS_WEBSECURE_HTTP_TLS_DOMAINS[0]_MAIN": "example.com",
    "TRAEFIK_ENTRYPOINTS_WEBSECURE_HTTP_TLS_DOMAINS[0]_SANS": "*.example.com",
    "TRAEFIK_ENTRYPOINTS_WEBSECURE_TRANSPORT_RESPONDINGTIMEOUTS_READTIMEOUT": "30s",
    "TRAEFIK_ENTRYPOINTS_WEBSECURE_TRANSPORT_RESPONDINGTIMEOUTS_IDLETIMEOUT": "90",
    "TRAEFIK_ENTRYPOINTS_WEBSECURE_FORWARDEDHEADERS_TRUSTEDIPS": "10.0.0.0/8,192.168.1.1",
    "TRAEFIK_PROVIDERS_PROVIDERSTHROTTLEDURATION": "500ms",
    "TRAEFIK_PROVIDERS_FILE_DIRECTORY": "/etc/traefik/dynamic",
    "TRAEFIK_PROVIDERS_FILE_WATCH": "false",
    "TRAEFIK_LOG_LEVEL": "INFO",
    "traefik_log_format": "json",
    "TRAEFIK_PING": "true",
    "TRAEFIK_API_INSECURE": "true",
    "HOME": "/nonexistent",
    "PATH": "/usr/bin",
}


def load(argv: list[str] | None = None, env: dict[str, str] | None = None, cwd: Path | None = None,
         search: list[Path] | None = None) -> LoadedStatic:
    """load_static() without looking at the real /etc/traefik (search dirs are explicit)."""
    return load_static(argv or [], env or {}, cwd or Path("/nonexistent"), search=search or [])


def problems(exc: pytest.ExceptionInfo[StaticConfigError]) -> list[ConfigError]:
    return exc.value.problems


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- the same configuration from every source -------------------------------------------------------


def _check_example(loaded: LoadedStatic) -> None:
    c = loaded.config
    assert set(c.entry_points) == {"web", "websecure", "traefik"}
    web, secure = c.entry_points["web"], c.entry_points["websecure"]
    assert web.http.redirections is not None and web.http.redirections.entry_point is not None
    assert web.http.redirections.entry_point.to == "websecure"
    assert secure.as_default is True and secure.listen.port == 443
    assert secure.http.middlewares == ("secure@file", "compress@file")
    assert secure.http.tls is not None and secure.http.tls.domains[0].sans == ("*.example.com",)
    assert secure.transport.responding_timeouts.read_timeout == 30.0
    assert secure.transport.responding_timeouts.idle_timeout == 90.0
    assert secure.transport.responding_timeouts.write_timeout == 0.0
    assert secure.forwarded_headers.trusted_ips == ("10.0.0.0/8", "192.168.1.1")
    assert c.providers.providers_throttle_duration == 0.5
    assert c.providers.file is not None and c.providers.file.watch is False
    assert (c.log.level, c.log.format) == ("INFO", "json")
    assert c.ping is not None and c.api is not None and c.api.insecure
    assert c.entry_points["traefik"].address == ":8080"
    # everything in the example is served now (TLS, ACME, the dashboard)
    assert [w.split(":")[0] for w in loaded.warnings] == []


def test_yaml_toml_flags_and_env_give_the_same_model(tmp_path: Path) -> None:
    from_yaml = load(["--configFile", str(write(tmp_path / "traefik.yml", YAML_CONFIG))])
    from_toml = load([f"--configFile={write(tmp_path / 'traefik.toml', TOML_CONFIG)}"])
    from_flags = load(FLAGS)
    from_env = load(env=ENV)
    for loaded in (from_yaml, from_toml, from_flags, from_env):
        _check_example(loaded)
    assert from_yaml.config == from_toml.config == from_flags.config == from_env.config
    assert from_yaml.source == str(tmp_path / "traefik.yml")
    assert from_toml.source == str(tmp_path / "traefik.toml")
    assert (from_flags.source, from_env.source) == ("command line", "environment")


def test_defaults_when_nothing_is_given() -> None:
    loaded = load()
    assert loaded.source == "defaults"
    assert {n: ep.address for n, ep in loaded.config.entry_points.items()} == {"http": ":80"}
    assert loaded.warnings == []


# -- which file ---------------------------------------------------------------------------------------


def test_search_order_first_directory_wins(tmp_path: Path) -> None:
    a, b, c = tmp_path / "etc", tmp_path / "xdg", tmp_path / "cwd"
    write(b / "traefik.yml", "log: {level: INFO}\n")
    write(c / "traefik.yml", "log: {level: DEBUG}\n")
    loaded = load(search=[a, b, c])
    assert loaded.source == str(b / "traefik.yml")
    assert loaded.config.log.level == "INFO"


def test_search_order_within_a_directory_is_toml_yaml_yml(tmp_path: Path) -> None:
    write(tmp_path / "traefik.yml", "log: {level: DEBUG}\n")
    assert find_config_file(None, {}, tmp_path, [tmp_path]) == tmp_path / "traefik.yml"
    write(tmp_path / "traefik.yaml", "log: {level: INFO}\n")
    assert find_config_file(None, {}, tmp_path, [tmp_path]) == tmp_path / "traefik.yaml"
    write(tmp_path / "traefik.toml", "[log]\nlevel = 'WARN'\n")
    assert find_config_file(None, {}, tmp_path, [tmp_path]) == tmp_path / "traefik.toml"


def test_search_directories_are_traefiks(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"}
    assert _search_dirs(env, tmp_path) == [Path("/etc/traefik"), Path("/xdg"), Path("/home/u/.config"), tmp_path]
    assert _search_dirs({}, tmp_path) == [Path("/etc/traefik"), tmp_path]


def test_default_search_uses_etc_then_xdg_then_home_then_cwd(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    etc, home, xdg, cwd = tmp_path / "etc", tmp_path / "home", tmp_path / "xdg", tmp_path / "cwd"
    monkeypatch.setattr("ferryman.static.loader.ETC_DIR", etc)
    cwd.mkdir()
    env = {"HOME": str(home), "XDG_CONFIG_HOME": str(xdg)}
    assert load_static([], env, cwd).source == "defaults"
    write(cwd / "traefik.yaml", "log: {level: TRACE}\n")
    assert load_static([], env, cwd).source == str(cwd / "traefik.yaml")
    write(home / ".config" / "traefik.yml", "log: {level: DEBUG}\n")
    assert load_static([], env, cwd).source == str(home / ".config" / "traefik.yml")
    write(xdg / "traefik.toml", "[log]\nlevel = 'INFO'\n")
    loaded = load_static([], env, cwd)
    assert loaded.source == str(xdg / "traefik.toml")
    assert loaded.config.log.level == "INFO"
    write(etc / "traefik.yml", "log: {level: ERROR}\n")
    assert load_static([], env, cwd).source == str(etc / "traefik.yml")


@pytest.mark.parametrize("flag", ["--configFile", "--configfile", "-configFile", "--CONFIGFILE"])
def test_config_file_flag_relative_to_cwd(tmp_path: Path, flag: str) -> None:
    write(tmp_path / "conf" / "custom.yaml", "log: {level: WARN}\n")
    write(tmp_path / "traefik.yml", "log: {level: DEBUG}\n")  # found by the search, but not used
    loaded = load([f"{flag}=conf/custom.yaml"], cwd=tmp_path, search=[tmp_path])
    assert loaded.source == str(tmp_path / "conf" / "custom.yaml")
    assert loaded.config.log.level == "WARN"


def test_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(StaticConfigError) as exc:
        load(["--configFile=nope.yml"], cwd=tmp_path)
    assert "nope.yml" in str(exc.value) and "does not exist" in str(exc.value)


def test_unsupported_extension(tmp_path: Path) -> None:
    with pytest.raises(StaticConfigError, match=r"unsupported file extension '\.json'"):
        load([f"--configFile={write(tmp_path / 'traefik.json', '{}')}"])


# -- one source only -----------------------------------------------------------------------------------


def test_file_wins_over_flags_and_env_with_warnings(tmp_path: Path) -> None:
    path = write(tmp_path / "traefik.yml", "log: {level: WARN}\n")
    loaded = load([f"--configFile={path}", "--log.level=DEBUG"], env={"TRAEFIK_LOG_LEVEL": "INFO"})
    assert loaded.config.log.level == "WARN"
    assert len(loaded.warnings) == 2
    assert "command-line flags ignored (--log.level)" in loaded.warnings[0]
    assert "environment variables ignored (TRAEFIK_LOG_LEVEL)" in loaded.warnings[1]


def test_flags_win_over_env_with_a_warning() -> None:
    loaded = load(["--log.level=DEBUG"], env={"TRAEFIK_LOG_LEVEL": "INFO", "TRAEFIK_API": "true"})
    assert loaded.config.log.level == "DEBUG" and loaded.config.api is None
    assert loaded.warnings == [
        "environment variables ignored (TRAEFIK_API, TRAEFIK_LOG_LEVEL): the configuration is read "
        "from command-line flags only (Traefik uses a single source: file, else flags, else environment)"]


def test_unrelated_environment_is_not_a_source() -> None:
    loaded = load(env={"HOME": "/root", "TRAEFIK_IMAGE_TAG": "v3", "PATH": "/bin"})
    assert loaded.source == "defaults"


def test_traefik_configfile_variable_is_ignored_with_a_warning() -> None:
    loaded = load(env={"TRAEFIK_CONFIGFILE": "/x.yml"})
    assert loaded.source == "defaults"
    assert loaded.warnings == ["TRAEFIK_CONFIGFILE is ignored: Traefik reads the configuration file only "
                               "from --configFile"]


# -- flags ------------------------------------------------------------------------------------------------


def test_bare_flags_turn_sections_and_booleans_on() -> None:
    c = load(["--api", "--ping", "--entryPoints.websecure.address=:443", "--entryPoints.websecure.http.tls",
              "--entryPoints.websecure.http3"]).config
    assert c.api is not None and c.api.insecure is False and c.api.dashboard is True
    assert c.ping is not None
    tls = c.entry_points["websecure"].http.tls
    assert tls is not None and tls.options == ""
    assert c.entry_points["websecure"].http3 is not None


def test_section_set_to_false_stays_off() -> None:
    c = load(["--api.insecure", "--api=false", "--ping=true"]).config
    assert c.api is None and c.ping is not None


def test_flag_value_in_the_next_argument() -> None:
    c = load(["--entryPoints.web.address", ":8000", "--providers.file.filename", "dyn.yml"]).config
    assert c.entry_points["web"].address == ":8000"
    assert c.providers.file is not None and c.providers.file.filename == "dyn.yml"


def test_repeated_list_flags_append() -> None:
    c = load(["--entryPoints.web.address=:80", "--entryPoints.web.http.middlewares=a@file",
              "--entryPoints.web.http.middlewares=b@file,c@file"]).config
    assert c.entry_points["web"].http.middlewares == ("a@file", "b@file", "c@file")


def test_list_indexes_and_number_lists() -> None:
    c = load(["--entryPoints.web.address=:80", "--entryPoints.web.http.tls.domains[1].main=b.org",
              "--entryPoints.web.http.tls.domains[0].main=a.org", "--metrics.prometheus.buckets=0.5,1,2.5",
              "--entryPoints.web.http.middlewares[0]=x@file"]).config
    tls = c.entry_points["web"].http.tls
    assert tls is not None and [d.main for d in tls.domains] == ["a.org", "b.org"]
    assert c.metrics is not None and c.metrics.prometheus is not None
    assert c.metrics.prometheus.buckets == (0.5, 1.0, 2.5)
    assert c.entry_points["web"].http.middlewares == ("x@file",)


def test_map_keys_keep_case_and_merge_case_insensitively() -> None:
    c = load(["--entryPoints.WebSecure.address=:443", "--entrypoints.websecure.asDefault=true"]).config
    assert list(c.entry_points) == ["WebSecure"]
    assert c.entry_points["WebSecure"].as_default is True


def test_loosely_typed_providers_take_any_keys() -> None:
    loaded = load(["--providers.swarm", "--providers.swarm.endpoint", "unix:///run/docker.sock",
                   "--providers.swarm.exposedByDefault=false", "--providers.swarm.tls.ca=/ca.pem",
                   "--providers.plugin.mine.setting=1"])
    swarm = loaded.config.providers.swarm
    assert swarm == {"endpoint": "unix:///run/docker.sock", "exposedByDefault": "false", "tls": {"ca": "/ca.pem"}}
    assert loaded.config.providers.plugin == {"mine": {"setting": "1"}}
    assert loaded.warnings == [
        "providers.swarm: accepted but not implemented yet in ferryman 0.1; ignored",
        "providers.plugin: accepted but not implemented yet in ferryman 0.1; ignored",
    ]


def test_docker_provider_is_typed_with_traefiks_defaults() -> None:
    loaded = load(["--providers.docker", "--providers.docker.endpoint", "tcp://127.0.0.1:2376",
                   "--providers.docker.exposedByDefault=false", "--providers.docker.tls.ca=/ca.pem",
                   "--providers.docker.httpClientTimeout=30"])
    docker = loaded.config.providers.docker
    assert docker is not None and loaded.warnings == []
    assert docker.endpoint == "tcp://127.0.0.1:2376" and docker.exposed_by_default is False
    assert docker.tls is not None and docker.tls.ca == "/ca.pem" and docker.http_client_timeout == 30
    assert docker.watch is True and docker.default_rule == "Host(`{{ normalize .Name }}`)"
    defaults = load(["--providers.docker"]).config.providers.docker
    assert defaults is not None and defaults.endpoint == "unix:///var/run/docker.sock"
    assert defaults.exposed_by_default is True and defaults.network == ""
    with pytest.raises(ConfigError, match="not a Docker engine address"):
        load(["--providers.docker.endpoint=ssh://host"])


@pytest.mark.parametrize(("argv", "message"), [
    (["serve"], "unexpected argument 'serve'"),
    (["--log.level"], "flag needs an argument: --log.level"),
    (["--=x"], "bad flag syntax"),
    (["---log.level=x"], "bad flag syntax"),
    (["--entryPoints..address=:80"], "empty element"),
    (["--configFile"], "flag needs an argument: --configFile"),
    (["--", "x"], "unexpected arguments"),
])
def test_malformed_command_lines(argv: list[str], message: str) -> None:
    with pytest.raises(StaticConfigError, match=message) as exc:
        load(argv)
    assert exc.value.source == "command line"


@pytest.mark.parametrize(("argv", "path", "message"), [
    (["--entryPoints=x"], "entryPoints", "is a map of named sections"),
    (["--entryPoints.web.address=:80", "--entryPoints.web.http.tls.domains=a.org"],
     "entryPoints.web.http.tls.domains", "is a list of sections"),
    (["--entryPoints.web.address.port=80"], "entryPoints.web.address", "is a value"),
    (["--api=yes please"], "api", "is a section"),
    (["--entryPoints.web.address=:80", "--entryPoints.web.http.tls.domains.main=x"],
     "entryPoints.web.http.tls.domains", "expected a list index"),
])
def test_misplaced_flag_values(argv: list[str], path: str, message: str) -> None:
    with pytest.raises(StaticConfigError) as exc:
        load(argv)
    assert problems(exc)[0].path == path
    assert message in problems(exc)[0].message


# -- environment ----------------------------------------------------------------------------------------


def test_env_entry_point_names_are_lower_cased() -> None:
    c = load(env={"TRAEFIK_ENTRYPOINTS_WebSecure_ADDRESS": ":443", "TRAEFIK_ENTRYPOINTS_WEBSECURE_ASDEFAULT": "1"}).config
    assert list(c.entry_points) == ["websecure"]
    assert c.entry_points["websecure"].as_default is True


def test_env_bare_section() -> None:
    loaded = load(env={"TRAEFIK_PING": "", "TRAEFIK_API_INSECURE": "true"})
    assert loaded.config.ping is not None and loaded.config.api is not None


# -- errors -------------------------------------------------------------------------------------------------


def test_unknown_key_in_a_file_names_file_path_and_fix(tmp_path: Path) -> None:
    path = write(tmp_path / "traefik.yml", "entryPoints:\n  web:\n    adress: ':80'\n")
    with pytest.raises(StaticConfigError) as exc:
        load([f"--configFile={path}"])
    found = [p for p in problems(exc) if p.message == "unknown key"]
    assert len(found) == 1
    assert (found[0].source, found[0].path, found[0].fix) == (str(path), "entryPoints.web.adress",
                                                             'did you mean "address"?')
    assert f'{path}: entryPoints.web.adress: unknown key (fix: did you mean "address"?)' in str(exc.value)


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path / "traefik.toml", "[entrypoint.web]\naddress = ':80'\n")
    with pytest.raises(StaticConfigError) as exc:
        load([f"--configFile={path}"])
    assert problems(exc)[0].path == "entrypoint"
    assert problems(exc)[0].fix == 'did you mean "entryPoints"?'


def test_unknown_key_without_a_close_match_lists_known_keys(tmp_path: Path) -> None:
    path = write(tmp_path / "traefik.yml", "ping: {zzz: 1}\n")
    with pytest.raises(StaticConfigError) as exc:
        load([f"--configFile={path}"])
    assert problems(exc)[0].fix == "known keys here: entryPoint, manualRouting, terminatingStatusCode"


def test_unknown_flag_and_env_keys() -> None:
    with pytest.raises(StaticConfigError) as exc:
        load(["--entryPoints.web.adress=:80", "--providers.fiel.directory=/d"])
    assert [(p.source, p.path, p.fix) for p in problems(exc) if p.message.startswith("unknown key")] == [
        ("command line", "entryPoints.web.adress", 'did you mean "address"?'),
        ("command line", "providers.fiel", 'did you mean "file"?'),
    ]
    with pytest.raises(StaticConfigError) as exc:
        load(env={"TRAEFIK_ENTRYPOINTS_WEB_ADRESS": ":80"})
    first = problems(exc)[0]
    assert (first.source, first.path, first.fix) == ("environment", "entryPoints.web.adress",
                                                      'did you mean "address"?')
    assert "TRAEFIK_ENTRYPOINTS_WEB_ADRESS" in first.message


def test_bad_values_name_path_expected_type_and_value(tmp_path: Path) -> None:
    path = write(tmp_path / "traefik.yml", """\
entryPoints:
  web:
    address: ":80"
    http:
      maxHeaderBytes: lots
    transport:
      respondingTimeouts:
        readTimeout: 10 minutes
  dns:
    address: ":99999/udp"
log:
  level: verbose
  format: JSON
providers:
  file:
    watch: sometimes
""")
    with pytest.raises(StaticConfigError) as exc:
        load([f"--configFile={path}"])
    by_path = {p.path: p for p in problems(exc)}
    assert set(by_path) == {
        "entryPoints.web.http.maxHeaderBytes", "entryPoints.web.transport.respondingTimeouts.readTimeout",
        "entryPoints.dns.address", "log.level", "providers.file.watch",
    }
    assert by_path["entryPoints.web.http.maxHeaderBytes"].message == "expected an integer, got 'lots'"
    assert "invalid duration '10 minutes'" in by_path["entryPoints.web.transport.respondingTimeouts.readTimeout"].message
    assert "port 99999 out of range" in by_path["entryPoints.dns.address"].message
    assert "got 'verbose'" in by_path["log.level"].message
    assert "expected a boolean" in by_path["providers.file.watch"].message
    assert all(p.source == str(path) for p in problems(exc))
    assert len(str(exc.value).splitlines()) == 5  # every problem, one per line


def test_literal_values_get_a_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path / "traefik.yml", "log: {level: DEBG}\n")
    with pytest.raises(StaticConfigError) as exc:
        load([f"--configFile={path}"])
    assert problems(exc)[0].fix == 'did you mean "DEBUG"?'


def test_missing_address(tmp_path: Path) -> None:
    path = write(tmp_path / "traefik.yml", "entryPoints:\n  web:\n    asDefault: true\n")
    with pytest.raises(StaticConfigError) as exc:
        load([f"--configFile={path}"])
    assert (problems(exc)[0].path, problems(exc)[0].message) == ("entryPoints.web.address", "missing required key")


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "traefik.yml", "entryPoints:\n  web:\n    address: ':80'\n   bad: [\n")
    with pytest.raises(StaticConfigError) as exc:
        load([f"--configFile={path}"])
    assert exc.value.source == str(path)
    assert exc.value.path is not None and exc.value.path.startswith("line 4")
    assert "invalid YAML" in exc.value.message


def test_toml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path / "traefik.toml", "[log]\nlevel = 'INFO'\nformat =\n")
    with pytest.raises(StaticConfigError) as exc:
        load([f"--configFile={path}"])
    assert (exc.value.source, exc.value.path) == (str(path), "line 3, column 9")
    assert "invalid TOML" in exc.value.message


@pytest.mark.parametrize("text", ["- a\n- b\n", "just text\n"])
def test_file_must_hold_a_mapping(tmp_path: Path, text: str) -> None:
    with pytest.raises(StaticConfigError, match="expected a mapping"):
        load([f"--configFile={write(tmp_path / 'traefik.yml', text)}"])


def test_empty_file_and_nulls_mean_defaults(tmp_path: Path) -> None:
    assert load([f"--configFile={write(tmp_path / 'a.yml', '')}"]).config.api is None
    nulls = write(tmp_path / "b.yml", "api:\nping:\nlog:\n  level:\n")
    c = load([f"--configFile={nulls}"]).config
    assert c.api is None and c.ping is None and c.log.level == "ERROR"


def test_static_config_error_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path / "traefik.yml", "log: {level: nope}\n")
    with pytest.raises(ConfigError):
        load([f"--configFile={path}"])


# -- warnings ---------------------------------------------------------------------------------------------


def test_not_implemented_keys_actually_present_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "traefik.yml", """\
entryPoints:
  web:
    address: ":80"
  websecure:
    address: ":443"
    http3: {}
    http2:
      maxConcurrentStreams: 100
providers:
  file: {directory: /d}
  docker: {}
tracing: {}
log:
  level: INFO
  maxSize: 10
""")
    assert load([f"--configFile={path}"]).warnings == [
        "log.maxSize: accepted but not implemented yet in ferryman 0.1; ignored",
        "tracing: accepted but not implemented yet in ferryman 0.1; ignored",
    ]


def test_udp_entry_points_and_v2_syntax_warn() -> None:
    loaded = load(["--entryPoints.dns.address=:53/udp", "--core.defaultRuleSyntax=v2"])
    assert loaded.warnings == [
        "entryPoints.dns.address (UDP entry point ':53/udp'): accepted but not implemented yet in ferryman 0.1; ignored",
        "core.defaultRuleSyntax: the v2 rule syntax is deprecated; rewrite rules in v3 syntax",
    ]


# -- property: flags, environment and YAML agree ------------------------------------------------------------

names = st.from_regex(r"[a-z][a-z0-9]{0,8}", fullmatch=True).filter(lambda n: n != "traefik")


@settings(max_examples=60, deadline=None)
@given(eps=st.dictionaries(names, st.tuples(st.integers(0, 65535), st.booleans(), st.integers(0, 3600),
                                            st.lists(st.from_regex(r"[a-z]{1,6}@file", fullmatch=True),
                                                     max_size=3)),
                           min_size=1, max_size=4),
       level=st.sampled_from(["DEBUG", "info", "Warn"]))
def test_every_source_decodes_alike(eps: dict[str, tuple[int, bool, int, list[str]]], level: str) -> None:
    data: dict[str, object] = {"log": {"level": level}, "entryPoints": {}}
    flags = [f"--log.level={level}"]
    env = {"TRAEFIK_LOG_LEVEL": level}
    for name, (port, default, timeout, mws) in eps.items():
        ep: dict[str, object] = {"address": f":{port}", "asDefault": default,
                                 "transport": {"respondingTimeouts": {"readTimeout": timeout}}}
        flags += [f"--entryPoints.{name}.address=:{port}", f"--entryPoints.{name}.asDefault={default}",
                  f"--entryPoints.{name}.transport.respondingTimeouts.readTimeout={timeout}"]
        up = name.upper()
        env |= {f"TRAEFIK_ENTRYPOINTS_{up}_ADDRESS": f":{port}", f"TRAEFIK_ENTRYPOINTS_{up}_ASDEFAULT": str(default),
                f"TRAEFIK_ENTRYPOINTS_{up}_TRANSPORT_RESPONDINGTIMEOUTS_READTIMEOUT": str(timeout)}
        if mws:
            ep["http"] = {"middlewares": mws}
            flags.append(f"--entryPoints.{name}.http.middlewares={','.join(mws)}")
            env[f"TRAEFIK_ENTRYPOINTS_{up}_HTTP_MIDDLEWARES"] = ",".join(mws)
        data["entryPoints"][name] = ep  # type: ignore[index]
    from ferryman.static.loader import config_from_data

    from_yaml = config_from_data(yaml.safe_load(yaml.safe_dump(data)), "test").with_implicit_entry_points()
    assert load(flags).config == from_yaml
    assert load(env=env).config == from_yaml
