"""Traefik's ``headers`` vectors (shared conformance data), a representative subset over the wire.

Each case goes to a real entry point whose only route is the middleware in front of a real backend
(a load balancer over a keep-alive HTTP/1.1 server that answers with the case's ``header_ops``).
Over the wire a real server adds ``Date`` and frames the body (``Content-Length``), and the entry
point adds its X-Forwarded-* headers: those are left out of the exact comparisons. Every case is
also replayed in memory (tests/unit/middlewares/test_headers.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from ferryman.middlewares import build_middleware
from ferryman.upstream import UpstreamPools
from tests.integration.dataplane.dp_support import Message, exchange, http_backend, lb, proxy, response
from tests.unit.middlewares.conformance_support import case_id, conformance_cases, mw

#: Sub-test names replayed over the wire: custom headers both ways, X-Forwarded-For "nil", Host
#: rewrite, preflights, simple CORS with Vary, allowedHosts, a forced STS header.
WIRE = {
    "TestNew_customHeaders",
    "TestNewHeader_customRequestHeader/adds a header",
    "TestNewHeader_customRequestHeader/delete a header",
    "TestNewHeader_customRequestHeader/override a header",
    "TestNewHeader_customRequestHeader_Host/custom Host header",
    "TestNewHeader_CORSPreflights/Test Simple Preflight",
    "TestNewHeader_CORSPreflights/Allow Credentials Preflight",
    "TestNewHeader_CORSPreflights/Nil MaxAge Preflight",
    "TestNewHeader_CORSResponses/Regexp Origin Request",
    "TestNewHeader_CORSResponses/Test Simple Request with Vary Headers and non-empty response",
    "TestNewHeader_CORSResponses/Test Simple Request with non-empty response: add ACAO",
    "TestNewHeader_customResponseHeaders/Deleting Custom Header",
    "TestNew_allowedHosts/Should accept the request when given a host that is in the list",
    "TestNew_allowedHosts/Should refuse the request when no matching host is given",
    "Test_newSecure_modifyResponse/STSSeconds and STSPreload",
}
CASES = [c for c in conformance_cases("headers") if case_id(c) in WIRE]
pytestmark = pytest.mark.skipif(not CASES, reason="shared conformance data not found")

#: Added by the entry point (before the middleware) or by the proxy: not part of the Go handler test.
PROXY_ADDED = {"x-forwarded-proto", "x-forwarded-port", "x-forwarded-host", "x-forwarded-server",
               "x-real-ip", "x-forwarded-for", "host", "accept-encoding", "user-agent", "content-length"}
SERVER_ADDED = {"date", "content-length", "content-type"}


def _answer(ops: list[dict[str, str]]) -> bytes:
    headers: dict[str, str] = {}
    for op in ops:
        if op["op"] == "set":
            headers = {k: v for k, v in headers.items() if k.lower() != op["name"].lower()}
        headers[op["name"]] = op["value"]  # one value per name in these cases
    return response(200, b"", headers)


def _grouped(msg: Message, skip: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in msg.headers:
        if name.lower() not in skip:
            out.setdefault("-".join(p.capitalize() for p in name.split("-")), []).append(value)
    return out


def test_every_wire_case_exists() -> None:
    assert {case_id(c) for c in CASES} == WIRE


@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_headers_over_the_wire(case: dict[str, Any]) -> None:
    req = case["request"]
    expected = case["expected"]
    pools = UpstreamPools()
    with http_backend(lambda _: _answer(case["upstream"]["header_ops"])) as backend:
        handler = build_middleware("conformance", mw("headers", case["config"]), lb(pools, backend.url))
        with proxy(handler, pools=pools) as px:
            lines = [f"{req['method']} /foo HTTP/1.1", f"Host: {req['host']}"]
            for name, values in req["headers"].items():
                lines.extend(f"{name}: {value}" for value in values)
            resp = exchange(px.port, ("\r\n".join(lines) + "\r\n\r\n").encode())
        assert resp.status == expected["status"], case["source"]
        got = _grouped(resp, {"date"})
        if "response_headers" in expected:
            want = dict(expected["response_headers"])
            if expected.get("response_headers_exact"):
                # The backend's empty 200 carries Content-Length: 0 on the wire (a recorder has none).
                if "Content-Length" not in want:
                    got.pop("Content-Length", None)
                assert got == want, case["source"]
        for name, values in expected.get("response_headers_include", {}).items():
            assert got.get(name) == values
        if expected["status"] != 200 or "not called" in case["upstream"].get("note", ""):
            assert backend.requests == []
            return
        assert len(backend.requests) == 1
        seen = backend.requests[0]
        fwd = _grouped(seen, PROXY_ADDED)
        for name, values in expected.get("forwarded_headers_include", {}).items():
            assert fwd.get(name) == values
        if "forwarded_headers" in expected:
            want_fwd = dict(expected["forwarded_headers"])
            if want_fwd.pop("X-Forwarded-For", "absent") is None:
                assert seen.get("x-forwarded-for") is None  # "nil": the proxy did not add the client
            else:
                assert seen.get("x-forwarded-for") == "127.0.0.1"
            assert fwd == want_fwd
        if "forwarded_host" in expected:
            assert seen.get("host") == expected["forwarded_host"]
            assert seen.get("x-forwarded-host") == req["host"]
