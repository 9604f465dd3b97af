"""Dynamic ("routing") configuration as frozen values, with Traefik v3's key names and defaults.

Each element (router, service, middleware, servers transport) is validated on its own by the
decoders, so one broken element becomes a diagnostic for that element and never hides the rest.
Middleware types that this release does not implement yet are *known* (typed as free-form
sections) so they are reported as "not implemented" instead of "unknown key".
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator, model_validator

from ferryman.dynamic.base import Model, empty_section
from ferryman.types import Duration

Section = Annotated[dict[str, Any] | None, BeforeValidator(empty_section)]


def _as_tuple(value: Any) -> Any:
    """Traefik accepts a comma-separated string where it expects a list (labels, flags)."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


StrList = Annotated[tuple[str, ...], BeforeValidator(_as_tuple)]


# --------------------------------------------------------------------------------------------
# Routers


class Domain(Model):
    main: str = ""
    sans: StrList = ()


class RouterTLS(Model):
    options: str = ""
    cert_resolver: str = ""
    domains: tuple[Domain, ...] = ()


class RouterObservability(Model):
    access_logs: bool | None = None
    metrics: bool | None = None
    tracing: bool | None = None
    trace_verbosity: str | None = None


class Router(Model):
    rule: str = ""
    rule_syntax: str = ""
    priority: int = 0
    entry_points: StrList = ()
    middlewares: StrList = ()
    service: str = ""
    tls: RouterTLS | None = None
    observability: RouterObservability | None = None
    parent_refs: StrList = ()

    @field_validator("tls", "observability", mode="before")
    @classmethod
    def _section(cls, value: Any) -> Any:
        return empty_section(value)

    @field_validator("rule_syntax")
    @classmethod
    def _syntax(cls, value: str) -> str:
        if value and value not in ("v2", "v3"):
            raise ValueError(f'ruleSyntax must be "v3" or "v2", got {value!r}')
        return value


# --------------------------------------------------------------------------------------------
# Services


class Server(Model):
    url: str = ""
    weight: int | None = None
    preserve_path: bool = False
    fenced: bool = False


class ResponseForwarding(Model):
    flush_interval: Duration = 0.1


class Cookie(Model):
    name: str = ""
    secure: bool = False
    http_only: bool = False
    same_site: str = ""
    max_age: int = 0
    path: str = "/"
    domain: str = ""


class Sticky(Model):
    cookie: Cookie | None = None

    @field_validator("cookie", mode="before")
    @classmethod
    def _section(cls, value: Any) -> Any:
        return empty_section(value)


class HealthCheck(Model):
    scheme: str = ""
    mode: str = "http"
    path: str = ""
    method: str = "GET"
    status: int = 0
    port: int = 0
    interval: Duration = 30.0
    unhealthy_interval: Duration | None = None
    timeout: Duration = 5.0
    hostname: str = ""
    follow_redirects: bool = True
    headers: dict[str, str] = Field(default_factory=dict)


class PassiveHealthCheck(Model):
    failure_window: Duration = 10.0
    max_failed_attempts: int = 1


class LoadBalancer(Model):
    servers: tuple[Server, ...] = ()
    strategy: str = "wrr"
    pass_host_header: bool = True
    servers_transport: str = ""
    response_forwarding: ResponseForwarding | None = None
    sticky: Sticky | None = None
    health_check: HealthCheck | None = None
    passive_health_check: PassiveHealthCheck | None = None
    middlewares: StrList = ()

    @field_validator("sticky", "health_check", "passive_health_check", "response_forwarding", mode="before")
    @classmethod
    def _section(cls, value: Any) -> Any:
        return empty_section(value)

    @field_validator("strategy")
    @classmethod
    def _strategy(cls, value: str) -> str:
        known = ("wrr", "p2c", "hrw", "leasttime")
        if value.lower() not in known:
            raise ValueError(f"unknown load-balancing strategy {value!r} (known: {', '.join(known)})")
        return value.lower()


class WeightedRef(Model):
    name: str
    weight: int | None = None


class Weighted(Model):
    services: tuple[WeightedRef, ...] = ()
    sticky: Sticky | None = None
    health_check: Section = None


class MirrorRef(Model):
    name: str
    percent: int = 0


class Mirroring(Model):
    service: str = ""
    mirrors: tuple[MirrorRef, ...] = ()
    mirror_body: bool = True
    max_body_size: int = -1
    health_check: Section = None


class Failover(Model):
    service: str = ""
    fallback: str = ""
    health_check: Section = None
    errors: Annotated[ErrorPage | None, BeforeValidator(empty_section)] = None


class HighestRandomWeight(Model):
    services: tuple[WeightedRef, ...] = ()
    health_check: Section = None


class Service(Model):
    load_balancer: LoadBalancer | None = None
    weighted: Weighted | None = None
    mirroring: Mirroring | None = None
    failover: Failover | None = None
    highest_random_weight: HighestRandomWeight | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Service:
        present = [k for k in ("load_balancer", "weighted", "mirroring", "failover", "highest_random_weight")
                   if getattr(self, k) is not None]
        if len(present) != 1:
            names = ", ".join(type(self).model_fields[k].alias or k for k in present) or "none"
            raise ValueError(
                "a service must define exactly one of loadBalancer, weighted, mirroring, failover, "
                f"highestRandomWeight (found: {names})")
        return self

    @property
    def kind(self) -> str:
        for key in ("load_balancer", "weighted", "mirroring", "failover", "highest_random_weight"):
            if getattr(self, key) is not None:
                return type(self).model_fields[key].alias or key
        return ""


# --------------------------------------------------------------------------------------------
# Servers transports


class ForwardingTimeouts(Model):
    dial_timeout: Duration = 30.0
    response_header_timeout: Duration = 0.0
    idle_conn_timeout: Duration = 90.0
    read_idle_timeout: Duration = 0.0
    ping_timeout: Duration = 15.0


class CertificatePair(Model):
    cert_file: str = ""
    key_file: str = ""


class PeerCertSAN(Model):
    type: str = ""
    value: str = ""


class Spiffe(Model):
    ids: StrList = ()
    trust_domain: str = ""


class ServersTransport(Model):
    server_name: str = ""
    insecure_skip_verify: bool = False
    root_cas: StrList = Field(default=(), alias="rootCAs")
    certificates: tuple[CertificatePair, ...] = ()
    max_idle_conns_per_host: int = 200
    disable_http2: bool = Field(default=False, alias="disableHTTP2")
    peer_cert_uri: str = Field(default="", alias="peerCertURI")
    peer_cert_sans: tuple[PeerCertSAN, ...] = Field(default=(), alias="peerCertSANs")
    forwarding_timeouts: ForwardingTimeouts = ForwardingTimeouts()
    spiffe: Spiffe | None = None
    cipher_suites: StrList = ()
    min_version: str = ""
    max_version: str = ""


# --------------------------------------------------------------------------------------------
# Middlewares


class RedirectScheme(Model):
    scheme: str = ""  # required, as in Traefik ("you must provide a target scheme")
    port: str = ""
    permanent: bool = False

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) else value


class Chain(Model):
    middlewares: StrList = ()


class AddPrefix(Model):
    prefix: str = ""  # required ("prefix cannot be empty")


class StripPrefix(Model):
    prefixes: StrList = ()
    force_slash: bool | None = None  # deprecated; unset means false


class StripPrefixRegex(Model):
    regex: StrList = ()


class ReplacePath(Model):
    path: str = ""


class ReplacePathRegex(Model):
    regex: str = ""
    replacement: str = ""


class RedirectRegex(Model):
    regex: str = ""
    replacement: str = ""
    permanent: bool = False


class IPStrategy(Model):
    """Traefik's ``ipStrategy``: which address is the client's (``None`` section = the peer)."""

    depth: int = 0
    excluded_ips: StrList = Field(default=(), alias="excludedIPs")
    ipv6_subnet: int | None = Field(default=None, alias="ipv6Subnet")


class IPAllowList(Model):
    source_range: StrList = ()
    ip_strategy: IPStrategy | None = Field(default=None, alias="ipStrategy")
    reject_status_code: int = 0  # 0 = 403 Forbidden

    @field_validator("ip_strategy", mode="before")
    @classmethod
    def _strategy(cls, value: Any) -> Any:
        return empty_section(value)


class IPWhiteList(Model):
    """Deprecated ``ipWhiteList`` (no ``rejectStatusCode``: always 403)."""

    source_range: StrList = ()
    ip_strategy: IPStrategy | None = Field(default=None, alias="ipStrategy")

    @field_validator("ip_strategy", mode="before")
    @classmethod
    def _strategy(cls, value: Any) -> Any:
        return empty_section(value)


class Headers(Model):
    """Traefik's ``headers``: custom request/response headers, CORS, security headers."""

    custom_request_headers: dict[str, str] = {}
    custom_response_headers: dict[str, str] = {}
    access_control_allow_credentials: bool = False
    access_control_allow_headers: StrList = ()
    access_control_allow_methods: StrList = ()
    access_control_allow_origin_list: StrList = ()
    access_control_allow_origin_list_regex: StrList = ()
    access_control_expose_headers: StrList = ()
    access_control_max_age: int | None = None  # unset: no Access-Control-Max-Age
    add_vary_header: bool = False
    allowed_hosts: StrList = ()
    hosts_proxy_headers: StrList = ()
    ssl_proxy_headers: dict[str, str] = Field(default={}, alias="sslProxyHeaders")
    sts_seconds: int | None = Field(default=None, alias="stsSeconds")
    sts_include_subdomains: bool = Field(default=False, alias="stsIncludeSubdomains")
    sts_preload: bool = Field(default=False, alias="stsPreload")
    force_sts_header: bool = Field(default=False, alias="forceSTSHeader")
    frame_deny: bool = False
    custom_frame_options_value: str = ""
    content_type_nosniff: bool = False
    browser_xss_filter: bool = Field(default=False, alias="browserXssFilter")
    custom_browser_xss_value: str = Field(default="", alias="customBrowserXSSValue")
    content_security_policy: str = ""
    content_security_policy_report_only: str = ""
    public_key: str = ""
    referrer_policy: str = ""
    permissions_policy: str = ""
    is_development: bool = False
    # Deprecated and without effect in Traefik v3 (they still count as "configured").
    feature_policy: str | None = None
    ssl_redirect: bool | None = Field(default=None, alias="sslRedirect")
    ssl_temporary_redirect: bool | None = Field(default=None, alias="sslTemporaryRedirect")
    ssl_host: str | None = Field(default=None, alias="sslHost")
    ssl_force_host: bool | None = Field(default=None, alias="sslForceHost")

    @field_validator("custom_request_headers", "custom_response_headers", "ssl_proxy_headers", mode="before")
    @classmethod
    def _header_map(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):  # YAML numbers and booleans are text to Traefik
            return {str(k): ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v))
                    for k, v in value.items()}
        return value


class BasicAuth(Model):
    users: StrList = ()  # "name:hash" (htpasswd: bcrypt, apr1/MD5-crypt, {SHA})
    users_file: str = ""
    realm: str = ""  # "" = "traefik"
    remove_header: bool = False
    header_field: str = ""


class DigestAuth(Model):
    users: StrList = ()  # "user:realm:HA1" (htdigest)
    users_file: str = ""
    realm: str = ""  # "" = "traefik"
    remove_header: bool = False
    header_field: str = ""


class Buffering(Model):
    max_request_body_bytes: int = 0  # 0 or less: no limit
    mem_request_body_bytes: int = 1048576
    max_response_body_bytes: int = 0
    mem_response_body_bytes: int = 1048576
    retry_expression: str = ""


class EncodedCharacters(Model):
    """The ``encodedCharacters`` middleware: everything denied unless allowed (Traefik 3.6+)."""

    allow_encoded_slash: bool = False
    allow_encoded_back_slash: bool = False
    allow_encoded_null_character: bool = False
    allow_encoded_semicolon: bool = False
    allow_encoded_percent: bool = False
    allow_encoded_question_mark: bool = False
    allow_encoded_hash: bool = False


class SourceCriterion(Model):
    """Which requests share a bucket/counter (``rateLimit``, ``inFlightReq``); at most one criterion."""

    ip_strategy: IPStrategy | None = Field(default=None, alias="ipStrategy")
    request_header_name: str = ""
    request_host: bool = False

    @field_validator("ip_strategy", mode="before")
    @classmethod
    def _strategy(cls, value: Any) -> Any:
        return empty_section(value)


class ClientTLS(Model):
    """``forwardAuth.tls``: CA, cert and key are file paths or PEM contents."""

    ca: str = ""
    cert: str = ""
    key: str = ""
    insecure_skip_verify: bool = False
    ca_optional: bool | None = None  # deprecated, ignored (a server-side option)


class RateLimitRedis(Model):
    """``rateLimit.redis``: a limit shared by every instance using the same redis."""

    endpoints: StrList = ("localhost:6379",)
    username: str = ""
    password: str = ""
    db: int = 0
    pool_size: int = 0
    min_idle_conns: int = 0
    max_active_conns: int = 0
    read_timeout: Duration = 3.0
    write_timeout: Duration = 3.0
    dial_timeout: Duration = 5.0
    tls: Annotated[ClientTLS | None, BeforeValidator(empty_section)] = None


class RateLimit(Model):
    average: int = 0  # requests per period; 0 = no limit
    period: Duration = 1.0
    burst: int = 1
    source_criterion: SourceCriterion | None = None
    redis: Annotated[RateLimitRedis | None, BeforeValidator(empty_section)] = None

    @field_validator("source_criterion", mode="before")
    @classmethod
    def _criterion(cls, value: Any) -> Any:
        return empty_section(value)


class InFlightReq(Model):
    amount: int = 0  # simultaneous requests per source; more get 429
    source_criterion: SourceCriterion | None = None

    @field_validator("source_criterion", mode="before")
    @classmethod
    def _criterion(cls, value: Any) -> Any:
        return empty_section(value)


class ContentType(Model):
    """``contentType: {}`` turns Content-Type sniffing on (``autoDetect`` is deprecated; false = off)."""

    auto_detect: bool | None = None


class Compress(Model):
    """``compress``: response compression (gzip, br, zstd), as Traefik v3."""

    excluded_content_types: StrList = ()
    included_content_types: StrList = ()
    min_response_body_bytes: int = 0  # 0 (or less): 1024
    encodings: StrList | None = None  # priority order; None: gzip, br, zstd
    default_encoding: str = ""


class Retry(Model):
    attempts: int = 0  # required, > 0: total tries
    initial_interval: Duration = 0.0  # 0: retry at once
    timeout: Duration = 0.0
    max_request_body_bytes: int | None = None
    status: StrList = ()
    disable_retry_on_network_error: bool = False
    retry_non_idempotent_method: bool = False


class ForwardAuth(Model):
    address: str = ""
    tls: Annotated[ClientTLS | None, BeforeValidator(empty_section)] = None
    trust_forward_header: bool | None = None  # None: Traefik's legacy header handling (see forward_auth.py)
    auth_response_headers: StrList = ()
    auth_response_headers_regex: str = ""
    auth_request_headers: StrList = ()
    add_auth_cookies_to_response: StrList = ()
    header_field: str = ""
    forward_body: bool = False
    max_body_size: int | None = None  # None / negative: unlimited
    max_response_body_size: int | None = None
    preserve_location_header: bool = False
    preserve_request_method: bool = False
    auth_signin_url: str = Field(default="", alias="authSigninURL")


class GrpcWeb(Model):
    allow_origins: StrList = ()


class CircuitBreaker(Model):
    expression: str = ""
    check_period: Duration = 0.1
    fallback_duration: Duration = 10.0
    recovery_duration: Duration = 10.0
    response_code: int = 503


class ErrorPage(Model):
    """``errors``: status ranges, the error page service and its path."""

    status: StrList = ()
    status_rewrites: dict[str, int] = Field(default_factory=dict)
    service: str = ""
    query: str = ""
    error_request_headers: StrList | None = None  # None: all request headers; (): none


class CertIssuerInfo(Model):
    """``passTLSClientCert.info.issuer``: which issuer DN parts to pass (Traefik has no OU here)."""

    country: bool = False
    province: bool = False
    locality: bool = False
    organization: bool = False
    common_name: bool = False
    serial_number: bool = False
    domain_component: bool = False


class CertSubjectInfo(CertIssuerInfo):
    organizational_unit: bool = False


class CertInfo(Model):
    not_after: bool = False
    not_before: bool = False
    sans: bool = False
    serial_number: bool = False
    subject: Annotated[CertSubjectInfo | None, BeforeValidator(empty_section)] = None
    issuer: Annotated[CertIssuerInfo | None, BeforeValidator(empty_section)] = None


class PassTLSClientCert(Model):
    pem: bool = False
    info: Annotated[CertInfo | None, BeforeValidator(empty_section)] = None


class ClientIdentityRule(Model):
    """One ``clientIdentity.allow`` rule: every field it sets must match."""

    spiffe_id: str = Field(default="", alias="spiffeID")
    spiffe_id_prefix: str = Field(default="", alias="spiffeIDPrefix")
    trust_domain: str = ""
    dns_name: str = ""
    common_name: str = ""
    organizational_unit: str = ""


class ClientIdentity(Model):
    """ferryman's ``clientIdentity`` (not a Traefik type): allow verified client certificates by identity."""

    allow: tuple[ClientIdentityRule, ...] = ()
    reject_status_code: int = 403


#: Middleware types this release implements (typed) — the rest are known, typed loosely.
IMPLEMENTED_MIDDLEWARES = frozenset({"redirectScheme", "chain", "ipAllowList", "ipWhiteList", "headers", "basicAuth",
    "addPrefix", "stripPrefix", "stripPrefixRegex", "replacePath", "replacePathRegex", "redirectRegex",
    "rateLimit", "inFlightReq", "contentType", "retry", "compress", "circuitBreaker",
    "forwardAuth", "grpcWeb", "errors", "passTLSClientCert", "clientIdentity", "digestAuth", "buffering",
    "encodedCharacters",
})


class Middleware(Model):
    """Exactly one middleware type per element, as in Traefik."""

    redirect_scheme: RedirectScheme | None = None
    chain: Chain | None = None
    add_prefix: Annotated[AddPrefix | None, BeforeValidator(empty_section)] = None
    strip_prefix: Annotated[StripPrefix | None, BeforeValidator(empty_section)] = None
    strip_prefix_regex: Annotated[StripPrefixRegex | None, BeforeValidator(empty_section)] = None
    replace_path: Annotated[ReplacePath | None, BeforeValidator(empty_section)] = None
    replace_path_regex: Annotated[ReplacePathRegex | None, BeforeValidator(empty_section)] = None
    ip_white_list: IPWhiteList | None = None
    ip_allow_list: IPAllowList | None = None
    headers: Annotated[Headers | None, BeforeValidator(empty_section)] = None
    errors: Annotated[ErrorPage | None, BeforeValidator(empty_section)] = None
    rate_limit: Annotated[RateLimit | None, BeforeValidator(empty_section)] = None
    redirect_regex: Annotated[RedirectRegex | None, BeforeValidator(empty_section)] = None
    basic_auth: Annotated[BasicAuth | None, BeforeValidator(empty_section)] = None
    digest_auth: Annotated[DigestAuth | None, BeforeValidator(empty_section)] = None
    forward_auth: Annotated[ForwardAuth | None, BeforeValidator(empty_section)] = None
    in_flight_req: Annotated[InFlightReq | None, BeforeValidator(empty_section)] = None
    buffering: Annotated[Buffering | None, BeforeValidator(empty_section)] = None
    circuit_breaker: Annotated[CircuitBreaker | None, BeforeValidator(empty_section)] = None
    compress: Annotated[Compress | None, BeforeValidator(empty_section)] = None
    pass_tls_client_cert: Annotated[PassTLSClientCert | None, BeforeValidator(empty_section)] = Field(
        default=None, alias="passTLSClientCert")
    retry: Annotated[Retry | None, BeforeValidator(empty_section)] = None
    content_type: Annotated[ContentType | None, BeforeValidator(empty_section)] = None
    grpc_web: Annotated[GrpcWeb | None, BeforeValidator(empty_section)] = None
    encoded_characters: Annotated[EncodedCharacters | None, BeforeValidator(empty_section)] = None
    plugin: Section = None
    # ferryman's own (no Traefik type has this name)
    client_identity: Annotated[ClientIdentity | None, BeforeValidator(empty_section)] = None

    @field_validator("redirect_scheme", "chain", "ip_allow_list", "ip_white_list", mode="before")
    @classmethod
    def _section(cls, value: Any) -> Any:
        return empty_section(value)

    @model_validator(mode="after")
    def _exactly_one(self) -> Middleware:
        present = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(present) != 1:
            found = ", ".join(type(self).model_fields[k].alias or k for k in present) or "none"
            raise ValueError(f"a middleware must define exactly one type (found: {found})")
        return self

    @property
    def kind(self) -> str:
        for name in type(self).model_fields:
            if getattr(self, name) is not None:
                return type(self).model_fields[name].alias or name
        return ""


# --------------------------------------------------------------------------------------------
# TLS


class Certificate(Model):
    cert_file: str = ""
    key_file: str = ""
    stores: StrList = ()


class ClientAuth(Model):
    ca_files: StrList = ()
    client_auth_type: str = ""


class TLSOptions(Model):
    min_version: str = ""
    max_version: str = ""
    cipher_suites: StrList = ()
    curve_preferences: StrList = ()
    client_auth: ClientAuth | None = None
    sni_strict: bool = False
    alpn_protocols: StrList = ()
    disable_session_tickets: bool = False
    prefer_server_cipher_suites: bool = False


class GeneratedCert(Model):
    resolver: str = ""
    domain: Domain | None = None


class TLSStore(Model):
    default_certificate: CertificatePair | None = None
    default_generated_cert: GeneratedCert | None = None


# --------------------------------------------------------------------------------------------
# The whole configuration of one provider


class HTTPConfiguration(Model):
    routers: dict[str, Router] = Field(default_factory=dict)
    services: dict[str, Service] = Field(default_factory=dict)
    middlewares: dict[str, Middleware] = Field(default_factory=dict)
    servers_transports: dict[str, ServersTransport] = Field(default_factory=dict)


class TLSConfiguration(Model):
    certificates: tuple[Certificate, ...] = ()
    options: dict[str, TLSOptions] = Field(default_factory=dict)
    stores: dict[str, TLSStore] = Field(default_factory=dict)


class Configuration(Model):
    """What one provider produced. ``tcp``/``udp`` are accepted and reported as not implemented."""

    http: HTTPConfiguration = HTTPConfiguration()
    tcp: dict[str, Any] | None = None
    udp: dict[str, Any] | None = None
    tls: TLSConfiguration = TLSConfiguration()
