"""Request a client certificate without verifying it (Go's ``RequestClientCert`` and
``RequireAnyClientCert``), which Python's ``ssl`` module cannot express.

``SSLContext.verify_mode`` only offers "don't ask" (``CERT_NONE``) or "ask and verify against the
trusted CAs" (``CERT_OPTIONAL``/``CERT_REQUIRED``); OpenSSL itself can ask and accept anything
through a verify callback (``SSL_CTX_set_verify(ctx, mode, cb)`` with ``cb`` returning 1), which
``ssl`` does not expose. This module installs such a callback with ``ctypes`` on the context's
``SSL_CTX`` (the pointer is the first field after the object header of CPython's
``PySSLContext``), using the very ``libssl`` the ``_ssl`` module is linked with. Before relying on
it, :func:`permissive_supported` checks on a probe context that the pointer is right (the verify
mode OpenSSL reports must follow ``verify_mode`` changes) — when anything looks off the feature
reports itself unavailable and callers fall back (see :mod:`ferryman.tls.store`).

The callback runs inside the handshake (OpenSSL calls it once per certificate of the client's
chain); ctypes takes the GIL for it. It is only installed on contexts of TLS options that use
these two client auth types.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ssl
from functools import cache
from typing import Any

__all__ = ["make_permissive", "peer_chain", "permissive_supported", "set_client_ca_names"]

SSL_VERIFY_PEER = 0x01
SSL_VERIFY_FAIL_IF_NO_PEER_CERT = 0x02

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)


def _accept(_preverify_ok: int, _store: int | None) -> int:
    return 1


_ACCEPT_ANY = _CALLBACK(_accept)  # module global: must outlive every context that uses it


@cache
def _libssl() -> Any | None:
    name = ctypes.util.find_library("ssl")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
        version = lib.OpenSSL_version_num
        version.restype = ctypes.c_ulong
        if int(version()) != ssl.OPENSSL_VERSION_NUMBER:
            return None  # not the libssl _ssl is linked with
        lib.SSL_CTX_set_verify.argtypes = [ctypes.c_void_p, ctypes.c_int, _CALLBACK]
        lib.SSL_CTX_set_verify.restype = None
        lib.SSL_CTX_get_verify_mode.argtypes = [ctypes.c_void_p]
        lib.SSL_CTX_get_verify_mode.restype = ctypes.c_int
        lib.SSL_load_client_CA_file.argtypes = [ctypes.c_char_p]
        lib.SSL_load_client_CA_file.restype = ctypes.c_void_p
        lib.SSL_CTX_set_client_CA_list.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.SSL_CTX_set_client_CA_list.restype = None
    except (OSError, AttributeError):
        return None
    return lib


@cache
def _chain_functions() -> Any | None:
    """``libssl`` with the functions :func:`peer_chain` needs (``i2d_X509`` and the stack
    accessors come from ``libcrypto``, reached through ``libssl``'s dependencies)."""
    lib = _libssl()
    if lib is None:
        return None
    try:
        lib.SSL_get_SSL_CTX.argtypes = [ctypes.c_void_p]
        lib.SSL_get_SSL_CTX.restype = ctypes.c_void_p
        lib.SSL_get_peer_cert_chain.argtypes = [ctypes.c_void_p]
        lib.SSL_get_peer_cert_chain.restype = ctypes.c_void_p
        lib.OPENSSL_sk_num.argtypes = [ctypes.c_void_p]
        lib.OPENSSL_sk_num.restype = ctypes.c_int
        lib.OPENSSL_sk_value.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.OPENSSL_sk_value.restype = ctypes.c_void_p
        lib.i2d_X509.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
        lib.i2d_X509.restype = ctypes.c_int
    except AttributeError:
        return None
    return lib


def peer_chain(ssl_object: Any) -> list[bytes] | None:
    """The certificates the client sent after its own (DER, in order), as Go's
    ``PeerCertificates[1:]``; ``None`` when unavailable. Python's ``ssl`` exposes them only from 3.13
    (``get_unverified_chain``): before that, read them with ``SSL_get_peer_cert_chain`` on the
    session's ``SSL*`` (the field after ``PyObject_HEAD`` and the socket weakref of CPython's
    ``PySSLSocket``), trusted only when ``SSL_get_SSL_CTX`` of that pointer is the object's context."""
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is not None:  # pragma: no cover - Python 3.13+
        chain = getter() or []
        der = getattr(ssl, "ENCODING_DER", 1)  # _ssl's constant
        return [bytes(c.public_bytes(der)) for c in chain[1:]]
    lib = _chain_functions()
    inner = getattr(ssl_object, "_sslobj", None)
    context = getattr(ssl_object, "context", None)
    if lib is None or inner is None or not isinstance(context, ssl.SSLContext):
        return None
    pointer = ctypes.c_void_p.from_address(id(inner) + object.__basicsize__ + ctypes.sizeof(ctypes.c_void_p)).value
    if not pointer or lib.SSL_get_SSL_CTX(pointer) != _ctx_pointer(context):
        return None
    stack = lib.SSL_get_peer_cert_chain(pointer)
    if not stack:
        return []
    out: list[bytes] = []
    for i in range(lib.OPENSSL_sk_num(stack)):
        cert = lib.OPENSSL_sk_value(stack, i)
        size = lib.i2d_X509(cert, None)
        if size <= 0:
            return None
        buf = ctypes.create_string_buffer(size)
        cursor = ctypes.c_void_p(ctypes.addressof(buf))
        lib.i2d_X509(cert, ctypes.byref(cursor))
        out.append(buf.raw)
    return out


def _ctx_pointer(ctx: ssl.SSLContext) -> int | None:
    value = ctypes.c_void_p.from_address(id(ctx) + object.__basicsize__).value
    return int(value) if value else None


@cache
def permissive_supported() -> bool:
    lib = _libssl()
    if lib is None:
        return False
    probe = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ptr = _ctx_pointer(probe)
    if ptr is None:
        return False
    for mode, expected in ((ssl.CERT_OPTIONAL, SSL_VERIFY_PEER),
                           (ssl.CERT_REQUIRED, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT),
                           (ssl.CERT_NONE, 0)):
        probe.verify_mode = mode
        if lib.SSL_CTX_get_verify_mode(ptr) != expected:
            return False
    return True


def make_permissive(ctx: ssl.SSLContext, *, require: bool) -> bool:
    """Ask for a client certificate and accept any (``require``: refuse the handshake without one).
    Returns False (context unchanged) when this Python/OpenSSL pair does not allow it."""
    if not permissive_supported():
        return False
    lib = _libssl()
    ptr = _ctx_pointer(ctx)
    if lib is None or ptr is None:
        return False
    ctx.verify_mode = ssl.CERT_REQUIRED if require else ssl.CERT_OPTIONAL  # keeps Python's view right
    mode = SSL_VERIFY_PEER | (SSL_VERIFY_FAIL_IF_NO_PEER_CERT if require else 0)
    lib.SSL_CTX_set_verify(ptr, mode, _ACCEPT_ANY)
    return True


def set_client_ca_names(ctx: ssl.SSLContext, ca_file: str) -> bool:
    """Name the acceptable CAs in the CertificateRequest, as Go does with ``ClientCAs`` (browsers
    use the list to offer matching certificates). ``ssl`` loads trust anchors but never sets this
    list (``SSL_CTX_set_client_CA_list``). Returns False when unavailable (the list stays empty,
    which clients treat as "any CA")."""
    if not permissive_supported():
        return False
    lib = _libssl()
    ptr = _ctx_pointer(ctx)
    if lib is None or ptr is None:
        return False
    names = lib.SSL_load_client_CA_file(ca_file.encode())
    if not names:
        return False
    lib.SSL_CTX_set_client_CA_list(ptr, names)  # the context takes ownership of the list
    return True
