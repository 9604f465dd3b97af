"""The dashboard in a real headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright;
never ``playwright install``) against a real ferryman process.

Checked: ``/`` redirects to ``/dashboard/``; a disabled router's error text and a certificate's
expiry are on the page; a configuration change shows up without a page reload; every request
the page makes stays on ferryman's origin (no CDN); the dashboard works under ``api.basePath``
through a user router to ``api@internal`` guarded by ``basicAuth``. Screenshots are kept as test
artifacts: in ``$FERRYMAN_ARTIFACTS/dashboard/`` when that variable is set, else in the test's
``tmp_path`` (the path is printed).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import StartFerryman
from tests.support.procs import http_request, poll_until
from tests.unit.api.test_api_certificates import write_cert

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE localhost , EXCLUDE 127.0.0.1"]

try:
    from playwright.sync_api import Browser, Page, sync_playwright
except ImportError:  # pragma: no cover - depends on the environment
    sync_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(sync_playwright is None, reason="Playwright is not installed (pip install playwright; "
                       "the browser itself is Debian's chromium, never `playwright install`)"),
    pytest.mark.skipif(not os.access(CHROMIUM, os.X_OK), reason=f"{CHROMIUM} not found (apt-get install chromium)"),
]

TIMEOUT_MS = 15_000
# openssl passwd -apr1 -salt abcdefgh s3cret
ADMIN = "admin:$apr1$abcdefgh$M2T3erDstkD7SsE2QQnfH0"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert sync_playwright is not None
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    root = os.environ.get("FERRYMAN_ARTIFACTS")
    out = Path(root) / "dashboard" if root else tmp_path / "artifacts"
    out.mkdir(parents=True, exist_ok=True)
    return out


def shoot(page: Page, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    print(f"screenshot: {path}")
    return path


def api_json(port: int, path: str, headers: dict[str, str] | None = None) -> Any:
    status, _, body = http_request("127.0.0.1", port, path, headers=headers)
    assert status == 200, (path, status, body)
    return json.loads(body)


def same_origin_only(page: Page, origin: str) -> list[str]:
    """Every URL the page asks for, to check that nothing leaves ferryman's origin."""
    seen: list[str] = []
    page.on("request", lambda request: seen.append(request.url))
    return seen


def dynamic(certs: list[dict[str, str]], backend: int, extra_routers: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"tls": {"certificates": certs}, "http": {
        "routers": {
            "shop": {"rule": "Host(`shop.example`)", "entryPoints": ["websecure"], "service": "shop", "tls": {},
                     "middlewares": ["secure-headers"]},
            "broken": {"rule": "Host(`broken.example`)", "entryPoints": ["web"], "service": "shop",
                       "middlewares": ["does-not-exist"]},
            "bad-rule": {"rule": "Host(`bad.example`", "entryPoints": ["web"], "service": "shop"},
            **(extra_routers or {}),
        },
        "services": {"shop": {"loadBalancer": {"servers": [{"url": f"http://127.0.0.1:{backend}"}]}}},
        "middlewares": {"secure-headers": {"headers": {"frameDeny": True}}},
    }}


def test_dashboard_shows_errors_certificates_and_live_changes(
        ferryman: StartFerryman, hello: Any, browser: Browser, artifacts: Path, tmp_path: Path) -> None:
    backend = hello("shop")
    pki = tmp_path / "pki"
    pki.mkdir()
    cert, _ = write_cert(pki, "shop", "shop.example", days_left=20.5, issuer_org="Example Test CA",
                         sans=("shop.example", "www.shop.example"))
    certs = [{"certFile": str(cert), "keyFile": str(cert.with_suffix(".key"))}]
    fm = ferryman({
        "entryPoints": {"web": {"address": "127.0.0.1:0"},
                        "websecure": {"address": "127.0.0.1:0", "http": {"tls": {}}},
                        "traefik": {"address": "127.0.0.1:0"}},
        "api": {"insecure": True},
    }, dynamic(certs, backend))
    port = fm.ports["traefik"]
    origin = f"http://127.0.0.1:{port}"

    # what the API says, to compare with what the page shows
    broken = api_json(port, "/api/http/routers/broken@file")
    assert broken["status"] == "disabled" and broken["error"]
    (certificate,) = api_json(port, "/api/certificates")
    assert certificate["commonName"] == "shop.example" and certificate["status"] == "warning"
    not_after = datetime.datetime.fromisoformat(certificate["notAfter"].replace("Z", "+00:00"))

    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.set_default_timeout(TIMEOUT_MS)
    requests = same_origin_only(page, origin)
    failed: list[str] = []
    page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    script_errors: list[str] = []
    page.on("pageerror", lambda e: script_errors.append(str(e)))

    # "/" on the traefik entry point redirects to the dashboard, as in Traefik
    page.goto(origin + "/")
    assert page.url == origin + "/dashboard/"
    problem = page.locator('[data-problem="broken@file"]')
    problem.wait_for()
    assert broken["error"][0] in problem.inner_text()
    assert page.locator('[data-problem="bad-rule@file"] .error-text').inner_text().strip() != ""
    page.locator('[data-entrypoint="websecure"]').wait_for()
    shoot(page, artifacts, "overview")

    # routers: the disabled router's row carries its error text
    page.goto(origin + "/dashboard/#/routers?status=disabled")
    row = page.locator('tr[data-router="broken@file"]')
    row.wait_for()
    assert broken["error"][0] in row.locator(".error-text").inner_text()
    assert page.locator('tr[data-router="shop@websecure"], tr[data-router="shop@file"]').count() == 0  # filtered
    shoot(page, artifacts, "routers-disabled")

    # certificates: common name, issuer and expiry (date and days left)
    page.goto(origin + "/dashboard/#/certificates")
    cert_row = page.locator('tr[data-cert="shop.example"]')
    cert_row.wait_for()
    expiry = cert_row.locator(".cert-expiry").inner_text()
    assert not_after.strftime("%Y-%m-%d %H:%M") in expiry
    assert "expires in 20 days" in expiry
    assert "Example Test CA" in cert_row.inner_text() and "warning" in cert_row.inner_text().lower()
    shoot(page, artifacts, "certificates")

    # a configuration change appears without a reload (the page polls the API)
    page.goto(origin + "/dashboard/#/routers")
    page.locator('tr[data-router="shop@file"]').wait_for()
    page.evaluate("window.__sameDocument = 'yes'")
    mark = fm.mark()
    fm.write_dynamic("routes.yml", dynamic(certs, backend, {
        "added": {"rule": "Host(`added.example`)", "entryPoints": ["web"], "service": "shop"}}))
    fm.wait_for(lambda e: e.get("message") == "configuration applied", start=mark)
    page.locator('tr[data-router="added@file"]').wait_for()
    assert page.evaluate("window.__sameDocument") == "yes"
    shoot(page, artifacts, "routers-after-reload")

    # live request rates: traffic through a router shows up as requests per second
    page.goto(origin + "/dashboard/#/")
    rate = page.locator('[data-rate="total"]')

    def traffic_seen() -> bool:
        for _ in range(20):
            assert http_request("127.0.0.1", fm.ports["web"], "/", headers={"Host": "added.example"})[0] == 200
        text = rate.inner_text()
        return text not in ("…", "0")

    poll_until(traffic_seen, 15.0, what="a non-zero request rate on the dashboard")
    page.locator('.top-list a[href="#/routers/added%40file"]').wait_for()
    shoot(page, artifacts, "overview-traffic")

    # a router's detail page shows its error and its flow
    page.goto(origin + "/dashboard/#/routers/broken%40file")
    page.locator(".detail-head").wait_for()
    assert broken["error"][0] in page.locator(".error-text").first.inner_text()
    assert "does-not-exist" in page.locator(".flow").inner_text()
    shoot(page, artifacts, "router-detail")

    # services: the load balancer's servers with their status
    page.goto(origin + "/dashboard/#/services")
    server = page.locator(f'tr[data-service="shop@file"] [data-server="http://127.0.0.1:{backend}"]')
    server.wait_for()
    assert "UP" in server.inner_text()
    shoot(page, artifacts, "services")

    foreign = [u for u in requests if not u.startswith(origin + "/")]
    assert foreign == [], f"the dashboard asked for resources elsewhere: {foreign}"
    assert failed == [] and script_errors == []
    page.close()


def test_dashboard_under_base_path_behind_basic_auth(
        ferryman: StartFerryman, browser: Browser, artifacts: Path) -> None:
    fm = ferryman({
        "entryPoints": {"web": {"address": "127.0.0.1:0"}},
        "api": {"basePath": "/admin"},
    }, {"http": {
        "routers": {"api": {"rule": "PathPrefix(`/admin`)", "entryPoints": ["web"], "service": "api@internal",
                            "middlewares": ["auth"]}},
        "middlewares": {"auth": {"basicAuth": {"users": [ADMIN]}}},
    }})
    port = fm.ports["web"]
    origin = f"http://127.0.0.1:{port}"
    assert http_request("127.0.0.1", port, "/admin/dashboard/")[0] == 401
    auth = {"Authorization": "Basic " + base64.b64encode(b"admin:s3cret").decode()}
    status, headers, _ = http_request("127.0.0.1", port, "/admin/", headers=auth)
    assert (status, dict(headers)["Location"]) == (302, "/admin/dashboard/")

    context = browser.new_context(http_credentials={"username": "admin", "password": "s3cret"},
                                  viewport={"width": 1280, "height": 800})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(origin + "/admin/")
    assert page.url == origin + "/admin/dashboard/"
    page.locator('[data-card="routers"] .big').wait_for()
    # data arrived (no wait_for_function: evaluating strings is what the page's CSP forbids)
    page.locator('body[data-updated]:not([data-updated="0"])').wait_for(state="attached")
    assert page.locator('[data-card="routers"] .big').inner_text() == "1"
    assert page.locator('[data-entrypoint="web"]').count() == 1
    shoot(page, artifacts, "base-path-basic-auth")
    context.close()


def test_chromium_is_the_system_one() -> None:
    """Guard: the tests above must never rely on a browser downloaded by ``playwright install``."""
    assert shutil.which("chromium") is not None or os.access(CHROMIUM, os.X_OK)


def test_large_configuration_is_capped_and_searchable(
        ferryman: StartFerryman, browser: Browser, artifacts: Path) -> None:
    """1,200 routers: the table renders the first 1,000 and says so; search narrows it."""
    routers = {f"r{i:04d}": {"rule": f"Host(`h{i:04d}.example`)", "entryPoints": ["web"], "service": "noop@internal"}
               for i in range(1200)}
    fm = ferryman({"entryPoints": {"web": {"address": "127.0.0.1:0"}, "traefik": {"address": "127.0.0.1:0"}},
                   "api": {"insecure": True}}, {"http": {"routers": routers}})
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"http://127.0.0.1:{fm.ports['traefik']}/dashboard/#/routers")
    page.locator('tr[data-router="r0000@file"]').wait_for()
    assert page.locator("tbody tr").count() == 1000
    assert "Showing the first 1000 of 1202" in page.locator("main").inner_text()  # + api, dashboard
    page.locator('input[data-search="routers"]').fill("h1199.example")
    page.locator('tr[data-router="r1199@file"]').wait_for()
    assert page.locator("tbody tr").count() == 1
    shoot(page, artifacts, "routers-search")
    page.close()
