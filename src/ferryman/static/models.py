"""Traefik v3 static ("install") configuration as frozen, typed values with Traefik's defaults.

Every top-level key of Traefik v3's static configuration is known. The parts ferryman acts on
(entry points, the file provider, throttle, precedence, log, servers transport, core, ping, api)
are typed in full; so are the observability, ACME and transport sections, so that mistakes there
are reported too. Providers other than ``file`` and ``rest`` are known keys with free-form
content. What is accepted but not acted on is listed in :mod:`ferryman.static.not_implemented`.

Defaults are Traefik's ``SetDefaults()`` values (``pkg/config/static``, ``cmd/configuration.go``).
Where Traefik has an optional section that it fills with defaults only when written (``ping``,
``api``, ``http.tls``, ``http3``, ...), the field is ``X | None`` and ``None`` means "off". Where
the section's absence means "use the defaults" (``transport``, ``forwardedHeaders``, ``http2``,
``log``, ``core``, ...), the field always holds a value.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from functools import cached_property
from ipaddress import ip_address, ip_network
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, Field, field_validator, model_validator

from ferryman.static.address import ListenAddress, parse_address
from ferryman.static.base import HintedValueError, Model, StrList, choices
from ferryman.types import Duration

__all__ = [
    "DEFAULT_INTERNAL_ENTRY_POINT",
    "MAX_INT",
    "PROVIDER_NAMES",
    "AccessLog",
    "Acme",
    "Api",
    "CertificateResolver",
    "Core",
    "DockerProvider",
    "EntryPoint",
    "EntryPointHTTP",
    "EntryPointTLS",
    "FileProvider",
    "ForwardedHeaders",
    "ForwardingTimeouts",
    "LifeCycle",
    "Log",
    "Ping",
    "Providers",
    "ProxyProtocol",
    "RedirectEntryPoint",
    "RespondingTimeouts",
    "ServersTransport",
    "StaticConfig",
]

#: Go's ``math.MaxInt`` on 64-bit platforms (router priorities are Go ints).
MAX_INT = 2**63 - 1

#: Traefik's ``DefaultInternalEntryPointName``.
DEFAULT_INTERNAL_ENTRY_POINT = "traefik"

#: Provider names in Traefik's default ``providers.precedence`` order (``static_config.go``).
PROVIDER_NAMES: tuple[str, ...] = (
    "kubernetesgateway", "kubernetescrd", "kubernetes", "kubernetesingressnginx", "swarm", "docker",
    "file", "redis", "knative", "consul", "consulcatalog", "nomad", "etcd", "ecs", "http",
    "zookeeper", "rest",
)

#: Free-form section (a provider this release does not decode): a mapping of Traefik keys.
Loose = dict[str, Any]


def _check_ip_or_cidr(values: tuple[str, ...]) -> tuple[str, ...]:
    for value in values:
        try:
            if "/" in value:
                ip_network(value, strict=False)
            else:
                ip_address(value)
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR range (e.g. 10.0.0.0/8)") from None
    return values


IPList = Annotated[StrList, AfterValidator(_check_ip_or_cidr)]


# --------------------------------------------------------------------------------------------
# Shared pieces


class Domain(Model):
    """``{main, sans}``: a certificate's main domain and subject alternative names."""

    main: str = ""
    sans: StrList = Field(default=(), alias="sans")


class ClientTLS(Model):
    """TLS towards a provider or collector endpoint (``ca``, ``cert``, ``key``)."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    insecure_skip_verify: bool = False


class Spiffe(Model):
    """SPIFFE peer verification for backends."""

    ids: StrList = Field(default=(), alias="ids")
    trust_domain: str = ""


class OTelGRPC(Model):
    endpoint: str = "localhost:4317"
    insecure: bool = False
    tls: ClientTLS | None = None
    headers: Mapping[str, str] = Field(default_factory=dict)


class OTelHTTP(Model):
    endpoint: str = "https://localhost:4318"
    tls: ClientTLS | None = None
    headers: Mapping[str, str] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Global, transports, core


class Global(Model):
    check_new_version: bool = True
    send_anonymous_usage: bool = False
    not_append_x_forwarded_for: bool = False


class ForwardingTimeouts(Model):
    """Timeouts towards backends (seconds)."""

    dial_timeout: Duration = 30.0
    response_header_timeout: Duration = 0.0
    idle_conn_timeout: Duration = 90.0


class ServersTransport(Model):
    """``serversTransport``: becomes the ``default@internal`` HTTP servers transport."""

    insecure_skip_verify: bool = False
    root_cas: StrList = Field(default=(), alias="rootCAs")
    max_idle_conns_per_host: int = 200
    forwarding_timeouts: ForwardingTimeouts = Field(default_factory=ForwardingTimeouts)
    spiffe: Spiffe | None = None


class TCPServersTransportTLS(Model):
    insecure_skip_verify: bool = False
    root_cas: StrList = Field(default=(), alias="rootCAs")
    spiffe: Spiffe | None = None


class TCPServersTransport(Model):
    dial_keep_alive: Duration = 15.0
    dial_timeout: Duration = 30.0
    termination_delay: Duration = 0.1
    tls: TCPServersTransportTLS | None = None


class Core(Model):
    """``core.defaultRuleSyntax``: ``v3`` (default) or the deprecated ``v2``."""

    default_rule_syntax: Annotated[Literal["v3", "v2"], choices("v3", "v2")] = "v3"


class SpiffeClient(Model):
    workload_api_addr: str = Field(default="", alias="workloadAPIAddr")


class Ocsp(Model):
    responder_overrides: Mapping[str, str] = Field(default_factory=dict)

    @field_validator("responder_overrides")
    @classmethod
    def _non_empty(cls, value: Mapping[str, str]) -> Mapping[str, str]:
        for responder, url in value.items():
            if not url:
                raise ValueError(f"the override for responder {responder!r} cannot be empty")
        return value


class HostResolver(Model):
    cname_flattening: bool = False
    resolv_config: str = "/etc/resolv.conf"
    resolv_depth: int = 5


# --------------------------------------------------------------------------------------------
# Entry points


class LifeCycle(Model):
    """Shutdown timing (seconds): keep accepting for ``request_accept_grace_timeout``, then give
    in-flight requests ``grace_time_out`` to finish."""

    request_accept_grace_timeout: Duration = 0.0
    grace_time_out: Duration = Field(default=10.0, alias="graceTimeOut")


class RespondingTimeouts(Model):
    """Client-side timeouts (seconds; 0 = none)."""

    read_timeout: Duration = 60.0
    write_timeout: Duration = 0.0
    idle_timeout: Duration = 180.0


class EntryPointTransport(Model):
    life_cycle: LifeCycle = Field(default_factory=LifeCycle)
    responding_timeouts: RespondingTimeouts = Field(default_factory=RespondingTimeouts)
    keep_alive_max_time: Duration = 0.0
    keep_alive_max_requests: int = 0


class ProxyProtocol(Model):
    """Accept PROXY protocol v1/v2 headers from ``trusted_ips`` (or from anyone if ``insecure``)."""

    insecure: bool = False
    trusted_ips: IPList = Field(default=(), alias="trustedIPs")


class ForwardedHeaders(Model):
    """Trust incoming ``X-Forwarded-*`` from ``trusted_ips`` (or from anyone if ``insecure``)."""

    insecure: bool = False
    trusted_ips: IPList = Field(default=(), alias="trustedIPs")
    connection: StrList = ()
    not_append_x_forwarded_for: bool = False
    add_x_forwarded_scheme_headers: bool = False


class RedirectEntryPoint(Model):
    """``http.redirections.entryPoint``: redirect everything on this entry point to ``to``
    (an entry point name, or ``:port``)."""

    to: str
    scheme: str = "https"
    permanent: bool = True
    priority: int = MAX_INT - 1


class Redirections(Model):
    entry_point: RedirectEntryPoint | None = None


class EntryPointTLS(Model):
    """``http.tls``: TLS for every router of the entry point (routers may override)."""

    options: str = ""
    cert_resolver: str = ""
    domains: tuple[Domain, ...] = ()


class EncodedCharacters(Model):
    allow_encoded_slash: bool = True
    allow_encoded_back_slash: bool = True
    allow_encoded_null_character: bool = True
    allow_encoded_semicolon: bool = True
    allow_encoded_percent: bool = True
    allow_encoded_question_mark: bool = True
    allow_encoded_hash: bool = True


class EntryPointHTTP(Model):
    redirections: Redirections | None = None
    middlewares: StrList = ()
    tls: EntryPointTLS | None = None
    encoded_characters: EncodedCharacters = Field(default_factory=EncodedCharacters)
    encode_query_semicolons: bool = False
    sanitize_path: bool = True
    max_header_bytes: int = 1048576
    underscore_headers_strategy: Annotated[
        Literal["keep", "delete", "reject"], choices("keep", "delete", "reject")
    ] = "keep"


class HTTP2(Model):
    max_concurrent_streams: int = 250
    max_decoder_header_table_size: int = 4096
    max_encoder_header_table_size: int = 4096


class HTTP3(Model):
    """HTTP/3 on the same port over UDP; ``advertised_port`` 0 means the entry point's port."""

    advertised_port: int = 0


class UDP(Model):
    timeout: Duration = 3.0


class EntryPointObservability(Model):
    access_logs: bool = True
    metrics: bool = True
    tracing: bool = True
    trace_verbosity: Annotated[Literal["minimal", "detailed"], choices("minimal", "detailed")] = "minimal"


class EntryPoint(Model):
    """``entryPoints.<name>``. ``address`` is ``[host]:port[/tcp|/udp]``; see :attr:`listen`."""

    address: str
    allow_acme_by_pass: bool = Field(default=False, alias="allowACMEByPass")
    reuse_port: bool = False
    as_default: bool = False
    transport: EntryPointTransport = Field(default_factory=EntryPointTransport)
    proxy_protocol: ProxyProtocol | None = None
    forwarded_headers: ForwardedHeaders = Field(default_factory=ForwardedHeaders)
    http: EntryPointHTTP = Field(default_factory=EntryPointHTTP)
    http2: HTTP2 = Field(default_factory=HTTP2, alias="http2")
    http3: HTTP3 | None = Field(default=None, alias="http3")
    udp: UDP = Field(default_factory=UDP)
    observability: EntryPointObservability = Field(default_factory=EntryPointObservability)

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        parse_address(value)
        return value.strip()

    @cached_property
    def listen(self) -> ListenAddress:
        """The parsed address: ``host`` ("" = all interfaces), ``port``, ``protocol``."""
        return parse_address(self.address)


# --------------------------------------------------------------------------------------------
# Providers


class FileProvider(Model):
    """``providers.file``: exactly one of ``filename`` and ``directory``."""

    directory: str = ""
    watch: bool = True
    filename: str = ""
    debug_log_generated_template: bool = False

    @model_validator(mode="after")
    def _one_source(self) -> FileProvider:
        if self.directory and self.filename:
            raise ValueError("set either filename or directory, not both (directory is recommended)")
        if not self.directory and not self.filename:
            raise ValueError("set filename or directory (directory is recommended)")
        return self


class DockerProvider(Model):
    """``providers.docker`` (Traefik v3's Docker provider; Swarm is ``providers.swarm``)."""

    endpoint: str = "unix:///var/run/docker.sock"
    username: str = ""
    password: str = ""
    tls: ClientTLS | None = None
    http_client_timeout: Duration = 0.0
    exposed_by_default: bool = True
    constraints: str = ""
    allow_empty_services: bool = False
    network: str = ""
    use_bind_port_ip: bool = Field(default=False, alias="useBindPortIP")
    watch: bool = True
    default_rule: str = "Host(`{{ normalize .Name }}`)"

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].lower() if "://" in value else ""
        if scheme not in ("unix", "tcp", "http", "https"):
            raise HintedValueError(
                f"endpoint {value!r} is not a Docker engine address",
                fix="use unix:///var/run/docker.sock or tcp://host:2375 (tcp://host:2376 with tls)")
        return value


class RestProvider(Model):
    insecure: bool = False


def _precedence(value: tuple[str, ...]) -> tuple[str, ...]:
    out = tuple(name.lower() for name in value)
    for name in out:
        if name not in PROVIDER_NAMES:
            guess = difflib.get_close_matches(name, PROVIDER_NAMES, n=1)
            hint = f'did you mean "{guess[0]}"? ' if guess else ""
            raise ValueError(f"{name!r} is not a provider name ({hint}known: {', '.join(PROVIDER_NAMES)})")
    return out


class Providers(Model):
    providers_throttle_duration: Duration = 2.0
    precedence: Annotated[StrList, AfterValidator(_precedence)] = PROVIDER_NAMES

    file: FileProvider | None = None
    rest: RestProvider | None = None
    docker: DockerProvider | None = None
    swarm: Loose | None = None
    kubernetes_ingress: Loose | None = None
    kubernetes_ingress_nginx: Loose | None = Field(default=None, alias="kubernetesIngressNGINX")
    kubernetes_crd: Loose | None = Field(default=None, alias="kubernetesCRD")
    kubernetes_gateway: Loose | None = None
    knative: Loose | None = None
    consul_catalog: Loose | None = None
    nomad: Loose | None = None
    ecs: Loose | None = None
    consul: Loose | None = None
    etcd: Loose | None = None
    zoo_keeper: Loose | None = Field(default=None, alias="zooKeeper")
    redis: Loose | None = None
    http: Loose | None = None
    plugin: Mapping[str, Loose] | None = None


# --------------------------------------------------------------------------------------------
# API, ping, metrics

_BASE_PATH = re.compile(r"^/[a-zA-Z0-9/_.:~-]*$")


class Api(Model):
    base_path: str = "/"
    insecure: bool = False
    dashboard: bool = True
    debug: bool = False
    disable_dashboard_ad: bool = False
    dashboard_name: str = ""

    @field_validator("base_path")
    @classmethod
    def _base_path(cls, value: str) -> str:
        if not _BASE_PATH.match(value):
            raise ValueError(f"basePath must be an absolute URL path such as /traefik, got {value!r}")
        return value


class Ping(Model):
    entry_point: str = DEFAULT_INTERNAL_ENTRY_POINT
    manual_routing: bool = False
    terminating_status_code: int = 503


class Prometheus(Model):
    buckets: tuple[float, ...] = (0.1, 0.3, 1.2, 5.0)
    add_entry_points_labels: bool = True
    add_routers_labels: bool = False
    add_services_labels: bool = True
    entry_point: str = DEFAULT_INTERNAL_ENTRY_POINT
    manual_routing: bool = False
    header_labels: Mapping[str, str] = Field(default_factory=dict)


class Datadog(Model):
    # Traefik reads DD_AGENT_HOST / DD_DOGSTATSD_PORT for this default; ferryman's parsing is pure.
    address: str = "localhost:8125"
    push_interval: Duration = 10.0
    add_entry_points_labels: bool = True
    add_routers_labels: bool = False
    add_services_labels: bool = True
    prefix: str = "traefik"


class StatsD(Model):
    address: str = "localhost:8125"
    push_interval: Duration = 10.0
    add_entry_points_labels: bool = True
    add_routers_labels: bool = False
    add_services_labels: bool = True
    prefix: str = "traefik"


class InfluxDB2(Model):
    address: str = "http://localhost:8086"
    token: str = ""
    push_interval: Duration = 10.0
    org: str = ""
    bucket: str = ""
    add_entry_points_labels: bool = True
    add_routers_labels: bool = False
    add_services_labels: bool = True
    additional_labels: Mapping[str, str] = Field(default_factory=dict)


class OTLPMetrics(Model):
    grpc: OTelGRPC | None = None
    http: OTelHTTP | None = Field(default_factory=OTelHTTP)
    add_entry_points_labels: bool = True
    add_routers_labels: bool = False
    add_services_labels: bool = True
    explicit_boundaries: tuple[float, ...] = (
        0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    )
    push_interval: Duration = 10.0
    service_name: str = "traefik"
    resource_attributes: Mapping[str, str] = Field(default_factory=dict)


class Metrics(Model):
    add_internals: bool = False
    prometheus: Prometheus | None = None
    datadog: Datadog | None = None
    statsd: StatsD | None = Field(default=None, alias="statsD")
    influxdb2: InfluxDB2 | None = Field(default=None, alias="influxDB2")
    otlp: OTLPMetrics | None = None


# --------------------------------------------------------------------------------------------
# Logs, access logs, tracing

LogLevel = Literal["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "PANIC", "DISABLED"]


class OTelLog(Model):
    service_name: str = "traefik"
    resource_attributes: Mapping[str, str] = Field(default_factory=dict)
    grpc: OTelGRPC | None = None
    http: OTelHTTP | None = Field(default_factory=OTelHTTP)


class Log(Model):
    """``log``: Traefik's own logs. ``file_path`` "" means stdout."""

    level: Annotated[LogLevel, choices(*get_args(LogLevel))] = "ERROR"
    format: Annotated[Literal["common", "json"], choices("common", "json")] = "common"
    no_color: bool = False
    file_path: str = ""
    max_size: int = 100
    max_age: int = 0
    max_backups: int = 0
    compress: bool = False
    otlp: OTelLog | None = None


class AccessLogFilters(Model):
    status_codes: StrList = ()
    retry_attempts: bool = False
    min_duration: Duration = 0.0


class FieldHeaders(Model):
    default_mode: Annotated[Literal["keep", "drop", "redact"], choices("keep", "drop", "redact")] = "drop"
    names: Mapping[str, str] = Field(default_factory=dict)


class FieldQueryParameters(Model):
    default_mode: Annotated[Literal["keep", "drop"], choices("keep", "drop")] = "keep"


class AccessLogFields(Model):
    default_mode: Annotated[Literal["keep", "drop"], choices("keep", "drop")] = "keep"
    names: Mapping[str, str] = Field(default_factory=dict)
    headers: FieldHeaders = Field(default_factory=FieldHeaders)
    query_parameters: FieldQueryParameters = Field(default_factory=FieldQueryParameters)


class AccessLog(Model):
    file_path: str = ""
    format: Annotated[Literal["common", "genericCLF", "json"], choices("common", "genericCLF", "json")] = "common"
    filters: AccessLogFilters = Field(default_factory=AccessLogFilters)
    fields: AccessLogFields = Field(default_factory=AccessLogFields)
    buffering_size: int = 0
    add_internals: bool = False
    dual_output: bool = False
    otlp: OTelLog | None = None


class OTelTracing(Model):
    grpc: OTelGRPC | None = None
    http: OTelHTTP | None = Field(default_factory=OTelHTTP)


class Tracing(Model):
    service_name: str = "traefik"
    resource_attributes: Mapping[str, str] = Field(default_factory=dict)
    captured_request_headers: StrList = ()
    captured_response_headers: StrList = ()
    safe_query_params: StrList = ()
    sample_rate: float = 1.0
    add_internals: bool = False
    otlp: OTelTracing = Field(default_factory=OTelTracing)
    global_attributes: Mapping[str, str] = Field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Certificates resolvers (ACME)


class Eab(Model):
    kid: str = ""
    hmac_encoded: str = ""


class Propagation(Model):
    disable_checks: bool = False
    disable_ans_checks: bool = Field(default=False, alias="disableANSChecks")
    require_all_rns: bool = Field(default=False, alias="requireAllRNS")
    delay_before_checks: Duration = 0.0


class DNSChallenge(Model):
    provider: str = ""
    resolvers: StrList = ()
    propagation: Propagation | None = None
    delay_before_check: Duration = 0.0  # deprecated: propagation.delayBeforeChecks
    disable_propagation_check: bool = False  # deprecated: propagation.disableChecks


class HTTPChallenge(Model):
    entry_point: str = ""
    delay: Duration = 0.0


class TLSChallenge(Model):
    delay: Duration = 0.0


KeyType = Literal["EC256", "EC384", "RSA2048", "RSA4096", "RSA8192"]


class Acme(Model):
    email: str = ""
    ca_server: str = Field(default="https://acme-v02.api.letsencrypt.org/directory", alias="caServer")
    preferred_chain: str = ""
    profile: str = ""
    email_addresses: StrList = ()
    disable_common_name: bool = False
    storage: str = "acme.json"
    key_type: Annotated[KeyType, choices(*get_args(KeyType))] = "RSA4096"
    eab: Eab | None = None
    certificates_duration: int = 2160
    client_timeout: Duration = 120.0
    client_response_header_timeout: Duration = 30.0
    certificate_timeout: Duration = 30.0
    ca_certificates: StrList = Field(default=(), alias="caCertificates")
    ca_system_cert_pool: bool = Field(default=False, alias="caSystemCertPool")
    ca_server_name: str = Field(default="", alias="caServerName")
    dns_challenge: DNSChallenge | None = Field(default=None, alias="dnsChallenge")
    http_challenge: HTTPChallenge | None = Field(default=None, alias="httpChallenge")
    tls_challenge: TLSChallenge | None = Field(default=None, alias="tlsChallenge")

    @field_validator("storage")
    @classmethod
    def _storage(cls, value: str) -> str:
        if not value:
            raise ValueError("a storage location for the certificates is required (e.g. acme.json)")
        return value


class Tailscale(Model):
    """``tailscale: {}``: certificates for ``*.ts.net`` from the local tailscaled."""


class LocalCA(Model):
    """``localCA: {}`` (ferryman, not Traefik): certificates from a local CA that ferryman creates
    and keeps in ``storage`` (a directory: ``root.pem`` to trust, ``root.key`` 0600), for HTTPS
    without internet (like Caddy's internal issuer). Leaves live ``certificatesDuration``."""

    storage: str = "ferryman-local-ca"
    certificates_duration: Duration = 12 * 3600.0
    name: str = "ferryman Local CA"

    @field_validator("certificates_duration")
    @classmethod
    def _lifetime(cls, value: float) -> float:
        if value < 10:
            raise ValueError("certificatesDuration must be at least 10s (e.g. 12h)")
        return value


class CertificateResolver(Model):
    acme: Acme | None = None
    tailscale: Tailscale | None = None
    local_ca: LocalCA | None = Field(default=None, alias="localCA")

    @model_validator(mode="after")
    def _exclusive(self) -> CertificateResolver:
        if sum(x is not None for x in (self.acme, self.tailscale, self.local_ca)) > 1:
            raise ValueError("acme, tailscale and localCA are mutually exclusive; keep one")
        return self


# --------------------------------------------------------------------------------------------
# Experimental


class PluginSettings(Model):
    envs: StrList = ()
    mounts: StrList = ()
    use_unsafe: bool = False


class PluginDescriptor(Model):
    module_name: str = ""
    version: str = ""
    hash: str = ""
    settings: PluginSettings = Field(default_factory=PluginSettings)


class LocalPluginDescriptor(Model):
    module_name: str = ""
    settings: PluginSettings = Field(default_factory=PluginSettings)


class FastProxy(Model):
    debug: bool = False


class Experimental(Model):
    plugins: Mapping[str, PluginDescriptor] = Field(default_factory=dict)
    local_plugins: Mapping[str, LocalPluginDescriptor] = Field(default_factory=dict)
    abort_on_plugin_failure: bool = False
    fast_proxy: FastProxy | None = None
    otlplogs: bool = Field(default=False, alias="otlplogs")
    knative: bool = False
    kubernetes_ingress_nginx: bool = Field(default=False, alias="kubernetesIngressNGINX")
    kubernetes_gateway: bool = False


# --------------------------------------------------------------------------------------------
# The whole static configuration


class StaticConfig(Model):
    """Traefik v3's static configuration (``traefik.yml``), with Traefik's defaults.

    ``load_static()`` returns the *effective* configuration: implicit entry points added
    (``http`` on ``:80`` when none is defined; ``traefik`` on ``:8080`` for ``api.insecure``,
    ping/prometheus on the ``traefik`` entry point without manual routing, or ``providers.rest.
    insecure``) and ``providers.precedence`` lower-cased.
    """

    global_: Global = Field(default_factory=Global, alias="global")
    servers_transport: ServersTransport = Field(default_factory=ServersTransport)
    tcp_servers_transport: TCPServersTransport = Field(
        default_factory=TCPServersTransport, alias="tcpServersTransport"
    )
    entry_points: Mapping[str, EntryPoint] = Field(default_factory=dict)
    providers: Providers = Field(default_factory=Providers)
    api: Api | None = None
    metrics: Metrics | None = None
    ping: Ping | None = None
    log: Log = Field(default_factory=Log)
    access_log: AccessLog | None = None
    tracing: Tracing | None = None
    host_resolver: HostResolver | None = None
    certificates_resolvers: Mapping[str, CertificateResolver] = Field(default_factory=dict)
    experimental: Experimental | None = None
    core: Core = Field(default_factory=Core)
    spiffe: SpiffeClient | None = None
    ocsp: Ocsp | None = None

    def with_implicit_entry_points(self) -> StaticConfig:
        """Add Traefik's implicit entry points (``SetEffectiveConfiguration``)."""
        eps: dict[str, EntryPoint] = dict(self.entry_points)
        if not eps:
            eps["http"] = EntryPoint(address=":80")
        internal = DEFAULT_INTERNAL_ENTRY_POINT
        prom = self.metrics.prometheus if self.metrics is not None else None
        needs_internal = (
            (self.api is not None and self.api.insecure)
            or (self.ping is not None and not self.ping.manual_routing and self.ping.entry_point == internal)
            or (prom is not None and not prom.manual_routing and prom.entry_point == internal)
            or (self.providers.rest is not None and self.providers.rest.insecure)
        )
        if needs_internal and internal not in eps:
            eps[internal] = EntryPoint(address=":8080")
        if eps == dict(self.entry_points):
            return self
        return self.model_copy(update={"entry_points": eps})

    def default_entry_points(self) -> tuple[str, ...]:
        """Entry points used by routers that name none (Traefik's ``getDefaultsEntrypoints``).

        The ``asDefault`` ones if any is marked, else all of them; never UDP entry points nor the
        internal ``traefik`` one. Sorted by name.
        """
        any_marked = any(ep.as_default for ep in self.entry_points.values())
        return tuple(sorted(
            name for name, ep in self.entry_points.items()
            if (ep.as_default or not any_marked)
            and ep.listen.protocol != "udp"
            and name != DEFAULT_INTERNAL_ENTRY_POINT
        ))
