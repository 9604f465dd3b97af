"""Certificate resolvers at run time: which domains, when to issue and renew, where certificates go.

* Domains come from the routers that name a resolver in ``tls.certResolver`` (their own or their
  entry point's): each ``tls.domains`` entry is one certificate (``main`` + ``sans``), else the
  ``Host()`` values of the rule make one certificate (Traefik's behaviour). Wildcards need the
  DNS-01 challenge, which ferryman does not implement yet: reported, not ordered.
* As Traefik (``getUncheckedDomains``), nothing is ordered for a domain list whose every name is
  already covered (exactly or by a one-label wildcard) by a certificate of the TLS store that no
  resolver obtained: ``tls.certificates`` and the store's default certificate.
* Until a certificate exists the store's default certificate answers those names. Issuance runs in
  a worker thread (the ``acme`` library is blocking), one certificate at a time per resolver; a
  failure is logged with the CA's reason and retried with exponential backoff (5 s doubling, 6 h
  cap); nothing of it ever stops the proxy or the other routers.
* Certificates reach the TLS store as the dynamic configuration of a provider named
  ``<resolver>.acme`` (``<resolver>.localCA``): compile builds the new contexts and the swap makes
  new handshakes use them; open connections keep theirs. Nothing restarts, nothing is dropped.
* Renewal times: :mod:`ferryman.acme.renewal` (Traefik's windows, capped at a third of the real
  lifetime, per-domain spread, ARI when the CA offers it). Only certificates still wanted by a
  router are renewed.
* HTTP-01 answers are served by ``acme-http@internal`` (a router at the highest priority on the
  ``httpChallenge.entryPoint``, ahead of the entry point's redirection); TLS-ALPN-01 answers by the
  entry points' ClientHello peek (:attr:`ChallengeStore.alpn`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import ssl
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from cryptography import x509

from ferryman.acme.client import HTTP01, TLSALPN01, AcmeError, AcmeSettings, ari_renewal, ca_bundle, issue
from ferryman.acme.localca import LocalAuthority
from ferryman.acme.renewal import backoff, renew_at
from ferryman.acme.storage import AcmeStorage, StorageError, StoredAccount, StoredCert
from ferryman.acme.tlsalpn import challenge_context
from ferryman.dynamic.models import Certificate, Configuration, TLSConfiguration
from ferryman.observability import events
from ferryman.providers.base import ProviderMessage
from ferryman.tasks import spawn

if TYPE_CHECKING:
    from ferryman.dynamic.merge import Merged
    from ferryman.http.exchange import Exchange
    from ferryman.static.models import Acme, CertificateResolver, LocalCA, StaticConfig
    from ferryman.tls.store import TLSStore

log = logging.getLogger("ferryman.acme")

__all__ = ["AcmeHTTPService", "ChallengeStore", "Resolvers", "wanted_domains"]

CHALLENGE_PREFIX = b"/.well-known/acme-challenge/"
#: longest sleep between two looks at the clock (suspend, clock changes)
MAX_SLEEP = 3600.0
MIN_RENEWAL_DELAY = 1.0
#: how long to stop asking for ARI after a directory without renewalInfo or an unreachable CA
ARI_RECHECK = 6 * 3600.0


def _fields(**kw: object) -> dict[str, object]:
    return {"fields": kw}


class ChallengeStore:
    """Pending challenge answers, written from worker threads, read on the event loop (plain dict
    operations: atomic under the GIL)."""

    def __init__(self) -> None:
        self.http: dict[str, bytes] = {}
        self.alpn: dict[str, ssl.SSLContext] = {}

    def add_http(self, token: str, key_authz: str) -> None:
        self.http[token] = key_authz.encode("ascii")

    def remove_http(self, token: str) -> None:
        self.http.pop(token, None)

    def add_tls(self, domain: str, key_authz: str) -> None:
        self.alpn[domain.lower()] = challenge_context(domain, key_authz)

    def remove_tls(self, domain: str) -> None:
        self.alpn.pop(domain.lower(), None)


class AcmeHTTPService:
    """``acme-http@internal``: ``/.well-known/acme-challenge/<token>`` answers the key
    authorization of a pending HTTP-01 challenge, anything else 404 (as Traefik)."""

    def __init__(self, store: ChallengeStore) -> None:
        self.store = store

    def handle(self, ex: Exchange) -> None:
        path = ex.path
        answer = None
        if path.startswith(CHALLENGE_PREFIX):
            answer = self.store.http.get(path[len(CHALLENGE_PREFIX):].decode("ascii", "replace"))
        if answer is None:
            ex.respond(404, (), b"404 page not found\n")
            return
        ex.respond(200, (), b"" if ex.method == b"HEAD" else answer, content_type=b"text/plain")


# ---------------------------------------------------------------------------------------------
# which domains


def _norm(name: str) -> str:
    return name.strip().lower().rstrip(".")


def wanted_domains(merged: Merged) -> tuple[dict[str, dict[tuple[str, ...], list[str]]], list[tuple[str, str]]]:
    """resolver -> {domain list -> routers}; and (router, resolver) pairs for routers whose
    resolver has no domain to ask for."""
    out: dict[str, dict[tuple[str, ...], list[str]]] = {}
    empty: list[tuple[str, str]] = []
    for info in merged.routers.values():
        cfg = info.config
        if not info.serving or cfg is None or cfg.tls is None or not cfg.tls.cert_resolver:
            continue
        resolver = cfg.tls.cert_resolver
        sets: list[tuple[str, ...]] = []
        if cfg.tls.domains:
            for d in cfg.tls.domains:
                names = tuple(dict.fromkeys(n for n in (_norm(d.main), *(_norm(s) for s in d.sans)) if n))
                if names:
                    sets.append(names)
        elif info.rule is not None:
            names = tuple(dict.fromkeys(n for n in (_norm(h) for h in info.rule.domains()) if n))
            if names:
                sets.append(names)
        if not sets:
            empty.append((info.origin or info.name, resolver))
        by_set = out.setdefault(resolver, {})
        for names in sets:
            routers = by_set.setdefault(names, [])
            name = info.origin or info.name
            if name not in routers:
                routers.append(name)
    return out, empty


def _cert_names(cert: x509.Certificate) -> set[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set()
    return {n.lower() for n in san.get_values_for_type(x509.DNSName)} | \
        {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}


def covers(names: set[str], domain: str) -> bool:
    if domain in names:
        return True
    dot = domain.find(".")
    return dot > 0 and "*" + domain[dot:] in names


def store_names(store: TLSStore | None, ours: Collection[bytes]) -> set[str]:
    """The names (CN, DNS and IP SANs) of the certificates of the TLS store a resolver did not
    obtain (``ours``: the chains the resolvers published): ``tls.certificates`` and the default
    certificate, as Traefik's ``store.GetAllDomains()``."""
    if store is None:
        return set()
    names: set[str] = set()
    for cert in (*store.certs, store.default):
        if cert.chain_pem not in ours:
            names.update(cert.names)
    return names


def split_covered(sets: Mapping[tuple[str, ...], list[str]], names: set[str]
                  ) -> tuple[dict[tuple[str, ...], list[str]], list[tuple[str, ...]]]:
    """(domain lists to order, domain lists every name of which ``names`` already covers)."""
    kept: dict[tuple[str, ...], list[str]] = {}
    covered: list[tuple[str, ...]] = []
    for domains, routers in sets.items():
        if names and all(covers(names, d) for d in domains):
            covered.append(domains)
        else:
            kept[domains] = routers
    return kept, covered


# ---------------------------------------------------------------------------------------------
# backends: how one resolver obtains certificates (blocking, in a worker thread)


class Backend(Protocol):
    kind: str

    def open(self) -> list[StoredCert]:
        """Check the storage and return the certificates kept there."""

    def obtain(self, domains: Sequence[str], stale: StoredCert | None) -> tuple[StoredCert, bool]:
        """A certificate for ``domains``: (certificate, reused from the storage)."""

    def renewal(self, cert: StoredCert, leaf: x509.Certificate) -> datetime.datetime:
        """When to renew ``cert`` (local computation, no I/O)."""

    def ari(self, cert: StoredCert) -> datetime.datetime | None:
        """The CA's renewal moment (ARI), None without one (blocking: network)."""


class AcmeBackend:
    kind = "acme"

    def __init__(self, name: str, config: Acme, challenges: ChallengeStore) -> None:
        self.name = name
        self.config = config
        self.storage = AcmeStorage(config.storage)
        self.challenges = challenges
        kinds: list[str] = []
        if config.http_challenge is not None:
            kinds.append(HTTP01)
        if config.tls_challenge is not None:
            kinds.append(TLSALPN01)
        self.kinds = tuple(kinds)
        self._settings: AcmeSettings | None = None
        self._no_ari_until = 0.0

    def settings(self) -> AcmeSettings:
        if self._settings is None:
            c = self.config
            self._settings = AcmeSettings(
                resolver=self.name, email=c.email, ca_server=c.ca_server, key_type=c.key_type,
                challenges=self.kinds, verify=ca_bundle(c.ca_certificates, c.ca_system_cert_pool),
                timeout=c.client_response_header_timeout or 30.0, preferred_chain=c.preferred_chain,
                eab_kid=c.eab.kid if c.eab else "", eab_hmac=c.eab.hmac_encoded if c.eab else "",
                profile=c.profile)
        return self._settings

    def open(self) -> list[StoredCert]:
        _account, certs = self.storage.load(self.name)
        return certs

    def obtain(self, domains: Sequence[str], stale: StoredCert | None) -> tuple[StoredCert, bool]:
        settings = self.settings()
        with self.storage.locked():
            # Another instance sharing this file may have done it meanwhile.
            account, certs = self.storage.load(self.name)
            for cert in certs:
                if stale is not None and cert.certificate == stale.certificate:
                    continue
                leaf = _leaf(cert)
                if leaf is None:
                    continue
                names = _cert_names(leaf)
                if all(covers(names, d) for d in domains) and self._fresh(cert, leaf):
                    return cert, True
            log.info("certificate resolver %s: ordering a certificate for %s from %s", self.name,
                     ", ".join(domains), settings.ca_server, extra=_fields(resolver=self.name, domains=list(domains)))
            issued = issue(settings, account, domains, self.challenges,
                           deadline_seconds=max(self.config.certificate_timeout, 30.0) + 60.0)
            new = StoredCert(main=domains[0], sans=tuple(domains[1:]), certificate=issued.chain_pem,
                             key=issued.key_pem)

            def change(_acc: StoredAccount | None, old: list[StoredCert]) -> tuple[StoredAccount, list[StoredCert]]:
                kept = [c for c in old if c.domains != new.domains]
                return issued.account, [*kept, new]

            self.storage.update(self.name, change, lock=False)
        return new, False

    def _fresh(self, cert: StoredCert, leaf: x509.Certificate) -> bool:
        key = f"{self.name}:{','.join(cert.domains)}"
        return renew_at(leaf.not_valid_before_utc, leaf.not_valid_after_utc, self.config.certificates_duration,
                        key) > datetime.datetime.now(datetime.UTC)

    def renewal(self, cert: StoredCert, leaf: x509.Certificate) -> datetime.datetime:
        key = f"{self.name}:{','.join(cert.domains)}"
        return renew_at(leaf.not_valid_before_utc, leaf.not_valid_after_utc, self.config.certificates_duration, key)

    def ari(self, cert: StoredCert) -> datetime.datetime | None:
        if time.monotonic() < self._no_ari_until:
            return None
        when, has_ari = ari_renewal(self.settings(), cert.certificate, f"{self.name}:{','.join(cert.domains)}")
        if not has_ari:  # no renewalInfo in the directory, or the CA cannot be reached: ask again later
            self._no_ari_until = time.monotonic() + ARI_RECHECK
        return when


class LocalBackend:
    kind = "localCA"

    def __init__(self, name: str, config: LocalCA) -> None:
        self.name = name
        self.config = config
        self.authority: LocalAuthority | None = None

    def open(self) -> list[StoredCert]:
        self.authority = LocalAuthority.open(self.config.storage, self.config.name)
        return []

    def obtain(self, domains: Sequence[str], stale: StoredCert | None) -> tuple[StoredCert, bool]:
        assert self.authority is not None
        chain, key = self.authority.issue(domains, self.config.certificates_duration)
        return StoredCert(main=domains[0], sans=tuple(domains[1:]), certificate=chain, key=key), False

    def renewal(self, cert: StoredCert, leaf: x509.Certificate) -> datetime.datetime:
        # a third of the configured lifetime left (leaves are backdated a minute), spread by domain
        lifetime = datetime.timedelta(seconds=self.config.certificates_duration)
        return renew_at(leaf.not_valid_after_utc - lifetime, leaf.not_valid_after_utc, float("inf"),
                        f"{self.name}:{','.join(cert.domains)}")

    def ari(self, cert: StoredCert) -> datetime.datetime | None:
        return None


def _leaf(cert: StoredCert) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificates(cert.certificate)[0]
    except (ValueError, IndexError):
        return None


# ---------------------------------------------------------------------------------------------
# one resolver


@dataclass
class _Item:
    domains: tuple[str, ...]
    cert: StoredCert | None = None
    not_after: datetime.datetime | None = None
    due: float = 0.0  # wall clock; 0 = now
    failures: int = 0
    error: str = ""
    routers: list[str] = field(default_factory=list)


class Resolver:
    def __init__(self, name: str, backend: Backend, emit: Callable[[ProviderMessage], None]) -> None:
        self.name = name
        self.backend = backend
        self.provider = f"{name}.{backend.kind}"
        self.emit = emit
        self.items: dict[tuple[str, ...], _Item] = {}
        #: every chain this resolver published (so the store's copy is not taken for a user's)
        self.published: set[bytes] = set()
        self._ari_pending: list[_Item] = []
        self.wanted: dict[tuple[str, ...], list[str]] = {}
        self.broken = ""
        self.opened = False
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = spawn(self._run(), name=f"resolver-{self.name}")

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()

    def want(self, wanted: Mapping[tuple[str, ...], list[str]]) -> None:
        if dict(wanted) != self.wanted:
            self.wanted = {k: list(v) for k, v in wanted.items()}
            self._wake.set()

    # -- the loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            stored = await loop.run_in_executor(None, self.backend.open)
        except (StorageError, AcmeError, OSError) as exc:
            self.broken = str(exc)
            log.error("certificate resolver %s cannot be used: %s; routers using it are served with the "
                      "default certificate", self.name, exc, extra=_fields(resolver=self.name))
            return
        self.opened = True
        for cert in stored:
            self._adopt(cert)
        if stored:
            self._publish()  # served before anything talks to the CA
            log.info("certificate resolver %s: %d certificate(s) loaded from storage", self.name, len(stored),
                     extra=_fields(resolver=self.name))
        while True:
            self._wake.clear()
            if self._ari_pending:
                await self._ask_ari(self._ari_pending.pop(0))
                continue
            item = self._next_due()
            now = time.time()
            if item is not None and item.due <= now:
                await self._obtain(item)
                continue
            delay = MAX_SLEEP if item is None else min(item.due - now, MAX_SLEEP)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.0))

    def _next_due(self) -> _Item | None:
        best: _Item | None = None
        for names, routers in self.wanted.items():
            item = self._item_for(names)
            item.routers = routers
            if any(d.startswith("*.") for d in names) and self.backend.kind == "acme":
                if not item.error:
                    item.error = "wildcard domains need the DNS-01 challenge (dnsChallenge), not supported yet"
                    log.error("certificate resolver %s: cannot obtain a certificate for %s (routers %s): %s",
                              self.name, ", ".join(names), ", ".join(routers), item.error,
                              extra=_fields(resolver=self.name, domains=list(names)))
                continue
            if best is None or item.due < best.due:
                best = item
        return best

    def _item_for(self, names: tuple[str, ...]) -> _Item:
        item = self.items.get(names)
        if item is not None:
            return item
        # a stored certificate covering all the names serves them (e.g. issued for a superset)
        for other in self.items.values():
            if other.cert is None:
                continue
            leaf = _leaf(other.cert)
            if leaf is not None and all(covers(_cert_names(leaf), d) for d in names):
                self.items[names] = other
                return other
        item = self.items[names] = _Item(domains=names, due=0.0)
        return item

    def _adopt(self, cert: StoredCert, item: _Item | None = None) -> None:
        """``cert`` serves ``item`` (or the item of its own domain list) from now on; its renewal
        time is computed locally now and refined by ARI (when the CA has it) soon after."""
        leaf = _leaf(cert)
        if leaf is None:
            return
        if item is None:
            item = self.items.get(cert.domains) or _Item(domains=cert.domains)
        self.items[cert.domains] = item
        item.cert = cert
        item.not_after = leaf.not_valid_after_utc
        # never sooner than a second from now: a CA answering with certificates already inside
        # their renewal window must not turn the loop into a busy one (the backoff covers errors)
        item.due = max(self.backend.renewal(cert, leaf).timestamp(), time.time() + MIN_RENEWAL_DELAY)
        if item not in self._ari_pending:
            self._ari_pending.append(item)

    async def _ask_ari(self, item: _Item) -> None:
        cert = item.cert
        if cert is None:
            return
        try:
            when = await asyncio.get_running_loop().run_in_executor(None, self.backend.ari, cert)
        except Exception as exc:  # an ARI lookup never breaks serving or renewing
            log.warning("certificate resolver %s: renewal information for %s: %r", self.name, cert.main, exc)
            return
        if when is not None and item.cert is cert:
            item.due = max(when.timestamp(), time.time() + MIN_RENEWAL_DELAY)

    async def _obtain(self, item: _Item) -> None:
        loop = asyncio.get_running_loop()
        renewing = item.cert is not None
        started = time.monotonic()
        try:
            cert, reused = await loop.run_in_executor(None, self.backend.obtain, item.domains, item.cert)
        except Exception as exc:
            item.failures += 1
            delay = backoff(item.failures, ",".join(item.domains))
            item.due = time.time() + delay
            item.error = str(exc) if isinstance(exc, (AcmeError, StorageError)) else repr(exc)
            events.emit(logging.ERROR, "cannot renew certificate" if renewing else "cannot obtain certificate",
                        "certificate.failed", resolver=self.name, providerName=self.provider,
                        domains=list(item.domains), routers=item.routers or None, error=item.error,
                        renewal=renewing, retries=item.failures, retryIn=round(delay, 1),
                        serving="the current certificate" if renewing else "the default certificate")
            return
        item.failures = 0
        item.error = ""
        self._adopt(cert, item)
        self._publish()
        not_after = item.not_after
        if reused:
            log.info("certificate resolver %s: reused the stored certificate for %s (another instance obtained it)",
                     self.name, ", ".join(item.domains), extra=_fields(resolver=self.name, domains=list(item.domains)))
        elif renewing:
            events.certificate_renewed(self.name, item.domains, not_after=not_after, provider=self.provider)
        else:
            events.certificate_obtained(self.name, item.domains, not_after=not_after, provider=self.provider)
        log.debug("certificate resolver %s: %s done in %.1fs, next renewal at %s", self.name, ",".join(item.domains),
                  time.monotonic() - started, datetime.datetime.fromtimestamp(item.due, datetime.UTC).isoformat())

    def _publish(self) -> None:
        seen: set[int] = set()
        certificates: list[Certificate] = []
        for item in self.items.values():
            if item.cert is None or id(item) in seen:
                continue
            seen.add(id(item))
            self.published.add(item.cert.certificate)
            certificates.append(Certificate(cert_file=item.cert.certificate.decode("ascii"),
                                            key_file=item.cert.key.decode("ascii")))
        certificates.sort(key=lambda c: c.cert_file)
        self.emit(ProviderMessage(self.provider, Configuration(tls=TLSConfiguration(
            certificates=tuple(certificates)))))

    def status(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.backend.kind, "broken": self.broken,
                "items": [{"domains": list(i.domains), "error": i.error, "failures": i.failures,
                           "notAfter": i.not_after.isoformat() if i.not_after else None}
                          for i in self.items.values()]}


# ---------------------------------------------------------------------------------------------
# all resolvers of the static configuration


class Resolvers:
    """The ``certificatesResolvers`` of the static configuration (nothing when there are none)."""

    def __init__(self, static: StaticConfig) -> None:
        self.static = static
        self.challenges = ChallengeStore()
        self.http_service = AcmeHTTPService(self.challenges)
        self.resolvers: dict[str, Resolver] = {}
        self._reported: set[str] = set()
        self._covered: set[tuple[str, tuple[str, ...]]] = set()
        self._merged: Merged | None = None
        self._store: TLSStore | None = None

    @property
    def provider_names(self) -> set[str]:
        return {r.provider for r in self.resolvers.values()}

    @property
    def uses_tls_challenge(self) -> bool:
        return any(r.acme is not None and r.acme.tls_challenge is not None
                   for r in self.static.certificates_resolvers.values())

    def start(self, emit: Callable[[ProviderMessage], None]) -> None:
        for name, resolver in self.static.certificates_resolvers.items():
            errors = _check(name, resolver, self.static)
            for message in errors:
                log.error("%s", message, extra=_fields(resolver=name))
            if errors:
                continue
            backend: Backend
            if resolver.acme is not None:
                backend = AcmeBackend(name, resolver.acme, self.challenges)
            elif resolver.local_ca is not None:
                backend = LocalBackend(name, resolver.local_ca)
            else:
                continue
            self.resolvers[name] = r = Resolver(name, backend, emit)
            r.start()
        if self._merged is not None:
            self.routers_changed(self._merged, self._store)

    def close(self) -> None:
        for r in self.resolvers.values():
            r.close()

    def router_problems(self) -> dict[str, tuple[str, ...]]:
        """Router (qualified name) -> why its resolver has no certificate for it yet (or cannot
        renew it): shown as warnings in the API (beyond Traefik, which only logs them)."""
        found: dict[str, list[str]] = {}
        for name, r in self.resolvers.items():
            for domains, routers in r.wanted.items():
                item = r.items.get(domains)
                if r.broken:
                    message = f'certificate resolver "{name}" cannot be used: {r.broken}'
                elif item is not None and item.error:
                    doing = "renew" if item.cert is not None else "obtain"
                    serving = "the current certificate" if item.cert is not None else "the default certificate"
                    message = (f'certificate resolver "{name}": cannot {doing} a certificate for '
                               f'{", ".join(domains)}: {item.error} ({serving} is served)')
                else:
                    continue
                for router in routers:
                    found.setdefault(router, []).append(message)
        return {router: tuple(messages) for router, messages in found.items()}

    def routers_changed(self, merged: Merged, store: TLSStore | None = None) -> None:
        """``merged``'s routers and the TLS ``store`` compiled from it now serve."""
        self._merged, self._store = merged, store
        if not self.static.certificates_resolvers and not any(
                i.config is not None and i.config.tls is not None and i.config.tls.cert_resolver
                for i in merged.routers.values()):
            return
        wanted, empty = wanted_domains(merged)
        current: set[str] = set()
        for router, resolver in empty:
            current.add(f'router "{router}": certificate resolver "{resolver}": no domain to ask a '
                        "certificate for (fix: add Host() to the rule or tls.domains)")
        for resolver, sets in wanted.items():
            r = self.resolvers.get(resolver)
            if r is None:
                routers = sorted({x for rs in sets.values() for x in rs})
                if resolver in self.static.certificates_resolvers:
                    continue  # disabled: its error was logged at start
                known = ", ".join(sorted(self.static.certificates_resolvers)) or "none configured"
                current.add(f'router {", ".join(routers)}: certificate resolver "{resolver}" does not exist '
                            f"(known: {known}); the default certificate is served")
        ours = {pem for r in self.resolvers.values() for pem in r.published}
        names = store_names(store, ours)
        covered_now: set[tuple[str, tuple[str, ...]]] = set()
        for name, r in self.resolvers.items():
            kept, covered = split_covered(wanted.get(name, {}), names)
            for domains in covered:
                covered_now.add((name, domains))
                if (name, domains) not in self._covered:
                    log.info("certificate resolver %s: no certificate to order for %s (routers %s): a certificate "
                             "of the TLS store covers it", name, ", ".join(domains),
                             ", ".join(wanted[name][domains]), extra=_fields(resolver=name, domains=list(domains)))
            r.want(kept)
        self._covered = covered_now
        for message in sorted(current - self._reported):
            log.error("%s", message)
        self._reported = current


def _check(name: str, resolver: CertificateResolver, static: StaticConfig) -> list[str]:
    where = f"certificatesResolvers.{name}"
    if resolver.tailscale is not None:
        return [f"{where}.tailscale: Tailscale certificates are not supported yet; resolver disabled"]
    acme = resolver.acme
    if acme is None:
        return [] if resolver.local_ca is not None else [f"{where}: no acme or localCA section; resolver disabled"]
    out: list[str] = []
    if acme.dns_challenge is not None and acme.http_challenge is None and acme.tls_challenge is None:
        out.append(f"{where}.acme.dnsChallenge: the DNS-01 challenge is not supported yet in ferryman "
                   "(fix: use httpChallenge or tlsChallenge); resolver disabled")
    elif acme.http_challenge is None and acme.tls_challenge is None:
        out.append(f"{where}.acme: no challenge configured (fix: add httpChallenge: {{entryPoint: web}} or "
                   "tlsChallenge: {}); resolver disabled")
    if acme.http_challenge is not None:
        ep = acme.http_challenge.entry_point
        if not ep:
            out.append(f"{where}.acme.httpChallenge.entryPoint is required (fix: name the entry point on port 80)")
        elif ep not in static.entry_points:
            out.append(f"{where}.acme.httpChallenge.entryPoint: entry point {ep!r} does not exist "
                       f"(known: {', '.join(sorted(static.entry_points))})")
    return out
