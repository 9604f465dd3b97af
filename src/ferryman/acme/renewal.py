"""When to renew, and how long to wait after a failure (pure functions, no I/O).

Baseline: Traefik's windows (``getCertificateRenewDurations``): with ``certificatesDuration`` of a
year or more a certificate is renewed 4 months before it expires, 90 days or more: 30 days, 30
days or more: 10 days, 7 days or more: 1 day, 1 day or more: 6 hours, else 20 minutes.

Beyond Traefik:

* the window never exceeds a third of the certificate's real lifetime, so a CA issuing shorter
  certificates than ``certificatesDuration`` says (6-day certificates with the 90-day default)
  does not make every check renew again;
* each certificate renews earlier than the window's edge by a deterministic per-domain share of up
  to a quarter of the window (:func:`jitter`): certificates issued together (a fleet's first start)
  do not all come back to the CA in the same minute, and a restart keeps every certificate's date;
* ACME Renewal Information (RFC 9773): when the CA's directory offers ``renewalInfo``, its
  ``suggestedWindow`` wins, and the moment inside it is again the per-domain share
  (:func:`ari_choice`); a window already passed means now.
"""

from __future__ import annotations

import base64
import datetime
import hashlib

from cryptography import x509

__all__ = ["ari_cert_id", "ari_choice", "backoff", "jitter", "renew_at", "traefik_window"]

HOUR = 3600.0
DAY = 24 * HOUR

#: first retry after a failed issuance, doubling up to the cap
BACKOFF_FIRST = 5.0
BACKOFF_CAP = 6 * HOUR


def traefik_window(certificates_duration_hours: float) -> tuple[float, float]:
    """Traefik's (renew period, check interval) in seconds for a ``certificatesDuration``."""
    h = certificates_duration_hours
    if h >= 265 * 24:
        return 4 * 30 * DAY, 7 * DAY
    if h >= 3 * 30 * 24:
        return 30 * DAY, DAY
    if h >= 30 * 24:
        return 10 * DAY, 12 * HOUR
    if h >= 7 * 24:
        return DAY, HOUR
    if h >= 24:
        return 6 * HOUR, 600.0
    return 20 * 60.0, 60.0


def jitter(key: str) -> float:
    """A stable number in [0, 1) for ``key`` (a resolver and domain list)."""
    digest = hashlib.sha256(key.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def renew_at(not_before: datetime.datetime, not_after: datetime.datetime, certificates_duration_hours: float,
             key: str) -> datetime.datetime:
    """The moment to renew a certificate valid from ``not_before`` to ``not_after``."""
    lifetime = (not_after - not_before).total_seconds()
    window, _ = traefik_window(certificates_duration_hours)
    if lifetime > 0:
        window = min(window, lifetime / 3)
    early = window * (1 + 0.25 * jitter(key))
    return not_after - datetime.timedelta(seconds=early)


def ari_choice(start: datetime.datetime, end: datetime.datetime, key: str) -> datetime.datetime:
    """The renewal moment inside an ARI ``suggestedWindow`` (``end`` before ``start``: ``start``)."""
    if end <= start:
        return start
    return start + (end - start) * jitter(key)


def ari_cert_id(cert: x509.Certificate) -> str:
    """RFC 9773's certificate identifier: base64url(AKI keyIdentifier) "." base64url(serial DER)."""
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    if aki is None:
        raise ValueError("certificate has no authority key identifier")
    serial = cert.serial_number
    raw = serial.to_bytes((serial.bit_length() + 8) // 8 or 1, "big")  # DER INTEGER content (sign bit)

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")

    return f"{b64(aki)}.{b64(raw)}"


def backoff(failures: int, key: str = "") -> float:
    """Seconds before retry number ``failures`` (1, 2, ...): 5 s doubling, capped at 6 h, with a
    stable spread of up to +20% per key."""
    delay: float = min(BACKOFF_FIRST * 2.0 ** min(max(failures - 1, 0), 60), BACKOFF_CAP)
    return delay * (1 + 0.2 * jitter(f"backoff:{key}"))
