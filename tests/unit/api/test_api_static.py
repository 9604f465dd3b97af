"""What the API adds to the static side: which api keys are reported as not implemented, and the
internal router ``api.insecure`` creates."""

from __future__ import annotations

from typing import Any

import pytest

from ferryman.app import internal_configuration, merge_settings
from ferryman.dynamic.merge import MAX_INT
from ferryman.static import StaticConfig
from ferryman.static.not_implemented import not_implemented_keys


@pytest.mark.parametrize(("api", "reported"), [
    (None, []),
    ({}, []),  # the dashboard is served (Traefik's api.dashboard defaults to true)
    ({"dashboard": True, "dashboardName": "edge", "disableDashboardAd": True}, []),
    ({"dashboard": False}, []),
    ({"dashboard": False, "debug": False, "insecure": True, "basePath": "/x"}, []),
    ({"dashboard": False, "debug": True}, []),  # served
])
def test_api_keys_reported(api: dict[str, Any] | None, reported: list[str]) -> None:
    data: dict[str, Any] = {"entryPoints": {"web": {"address": ":80"}}}
    if api is not None:
        data["api"] = api
    assert not_implemented_keys(StaticConfig.model_validate(data)) == reported


def test_insecure_adds_traefiks_internal_router() -> None:
    static = StaticConfig.model_validate({"api": {"insecure": True}}).with_implicit_entry_points()
    assert static.entry_points["traefik"].address == ":8080"
    router = internal_configuration(static).http.routers["api"]
    assert (router.rule, router.entry_points, router.service, router.priority) == (
        "PathPrefix(`/api`)", ("traefik",), "api@internal", MAX_INT - 1)
    assert "api" in merge_settings(static).internal_services


def test_base_path_goes_into_the_insecure_rule() -> None:
    static = StaticConfig.model_validate({"api": {"insecure": True, "basePath": "/traefik/"}})
    assert internal_configuration(static).http.routers["api"].rule == "PathPrefix(`/traefik/api`)"


def test_debug_router_with_insecure() -> None:
    static = StaticConfig.model_validate({"api": {"insecure": True, "debug": True, "basePath": "/t"}})
    router = internal_configuration(static).http.routers["debug"]
    assert (router.rule, router.entry_points, router.service, router.priority) == (
        "PathPrefix(`/t/debug`)", ("traefik",), "api@internal", MAX_INT - 1)
    assert "debug" not in internal_configuration(StaticConfig.model_validate({"api": {"insecure": True}})).http.routers


def test_without_insecure_only_the_service_exists() -> None:
    static = StaticConfig.model_validate({"api": {}})
    assert "api" not in internal_configuration(static).http.routers
    assert "api" in merge_settings(static).internal_services
    assert "api" not in merge_settings(StaticConfig.model_validate({})).internal_services


def test_insecure_dashboard_router_and_middlewares_are_traefiks() -> None:
    static = StaticConfig.model_validate({"api": {"insecure": True}})
    config = internal_configuration(static).http
    router = config.routers["dashboard"]
    assert (router.rule, router.entry_points, router.service, router.middlewares, router.priority) == (
        "PathPrefix(`/`)", ("traefik",), "dashboard@internal",
        ("dashboard_redirect@internal", "dashboard_stripprefix@internal"), MAX_INT - 2)
    redirect = config.middlewares["dashboard_redirect"].redirect_regex
    assert redirect is not None and (redirect.replacement, redirect.permanent) == ("${1}/dashboard/", True)
    strip = config.middlewares["dashboard_stripprefix"].strip_prefix
    assert strip is not None and strip.prefixes == ("/dashboard/", "/dashboard")
    assert "dashboard" in merge_settings(static).internal_services
    # with a basePath, both include it; without insecure only the service exists
    based = internal_configuration(StaticConfig.model_validate({"api": {"insecure": True, "basePath": "/t/"}})).http
    based_strip = based.middlewares["dashboard_stripprefix"].strip_prefix
    assert based_strip is not None and based_strip.prefixes == ("/t/dashboard/", "/t/dashboard")
    secure = StaticConfig.model_validate({"api": {}})
    assert "dashboard" not in internal_configuration(secure).http.routers
    assert "dashboard" in merge_settings(secure).internal_services
    off = StaticConfig.model_validate({"api": {"insecure": True, "dashboard": False}})
    assert "dashboard" not in internal_configuration(off).http.routers
    assert "dashboard" not in merge_settings(off).internal_services
