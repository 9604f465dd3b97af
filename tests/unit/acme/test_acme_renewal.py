"""Renewal windows (Traefik's baseline), per-domain spread, ARI choice, backoff."""

from __future__ import annotations

import datetime
import itertools

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ferryman.acme.renewal import ari_cert_id, ari_choice, backoff, jitter, renew_at, traefik_window

DAY = datetime.timedelta(days=1)
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def test_traefik_windows() -> None:
    assert traefik_window(2160) == (30 * 86400, 86400)      # 90 days: 30 days, checked daily
    assert traefik_window(365 * 24) == (120 * 86400, 7 * 86400)
    assert traefik_window(30 * 24) == (10 * 86400, 12 * 3600)
    assert traefik_window(7 * 24) == (86400, 3600)
    assert traefik_window(24) == (6 * 3600, 600)
    assert traefik_window(1) == (1200, 60)


def test_90_day_certificates_renew_30_to_37_days_before_expiry() -> None:
    for domain in ("a.example", "b.example", "c.example"):
        at = renew_at(T0, T0 + 90 * DAY, 2160, domain)
        before = T0 + 90 * DAY - at
        assert 30 * DAY <= before <= 37.5 * DAY


def test_the_spread_is_per_domain_and_stable() -> None:
    times = {renew_at(T0, T0 + 90 * DAY, 2160, f"le:host{i}.example") for i in range(200)}
    assert len(times) == 200  # no burst: every certificate has its own moment
    span = max(times) - min(times)
    assert span > 6 * DAY  # spread over most of the quarter window (7.5 days)
    assert renew_at(T0, T0 + 90 * DAY, 2160, "le:host1.example") == renew_at(T0, T0 + 90 * DAY, 2160,
                                                                             "le:host1.example")
    assert all(0 <= jitter(str(i)) < 1 for i in range(100))


def test_short_lived_certificates_never_renew_in_a_loop() -> None:
    # 6-day certificates with the 90-day default: the window is capped at a third of the lifetime
    at = renew_at(T0, T0 + 6 * DAY, 2160, "x")
    assert T0 + 3.5 * DAY <= at <= T0 + 4 * DAY


def test_ari_window_choice() -> None:
    start, end = T0, T0 + 2 * DAY
    chosen = {ari_choice(start, end, f"d{i}") for i in range(50)}
    assert all(start <= c < end for c in chosen) and len(chosen) == 50
    assert ari_choice(end, start, "x") == end  # inverted window: its start


def test_ari_cert_id_is_rfc9773s() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    aki = x509.AuthorityKeyIdentifier(key_identifier=bytes.fromhex("69885B6B87460F5D52A5B3DE4E1DEBF8"),
                                      authority_cert_issuer=None, authority_cert_serial_number=None)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(0x87654321).not_valid_before(T0).not_valid_after(T0 + DAY)
            .add_extension(aki, critical=False).sign(key, hashes.SHA256()))
    # RFC 9773 section 4.1's example: aYhba4dGD11SpbPeTh3r-A.AIdlQyE (serial 0x0087654321)
    assert ari_cert_id(cert) == "aYhba4dGD11SpbPeTh3r-A.AIdlQyE"


def test_backoff_doubles_and_is_capped() -> None:
    delays = [backoff(n, "k") for n in range(1, 20)]
    assert 5 <= delays[0] <= 6 and 10 <= delays[1] <= 12
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert max(delays) <= 6 * 3600 * 1.2
