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
    ({}, ["api.dashboard"]),  # Traefik's api.dashboard defaults to true
    ({"dashboard": True}, ["api.dashboard"]),
    ({"dashboard": False}, []),
    ({"dashboard": False, "debug": False, "insecure": True, "basePath": "/x"}, []),
    ({"dashboard": False, "debug": True}, []),  # served
    ({"dashboard": False, "dashboardName": "edge"}, ["api.dashboardName"]),
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
