"""The HTTP router rule language of Traefik v3 (and the deprecated v2 syntax). Pure: no I/O.

>>> rule = compile_rule("Host(`example.com`) && PathPrefix(`/api`)")
>>> rule.priority, sorted(rule.hosts.exact) if rule.hosts else None
(41, ['example.com'])
"""

from .compiler import (
    SYNTAXES,
    CompiledRule,
    check_rule,
    compile_rule,
    parse_domains,
    parse_rule,
    resolve_syntax,
)
from .hosts import HostConstraint
from .normalize import canonical_host, client_host, routing_path
from .re2 import RegexpError, compile_go
from .request import MatchRequest

__all__ = [
    "SYNTAXES",
    "CompiledRule",
    "HostConstraint",
    "MatchRequest",
    "RegexpError",
    "canonical_host",
    "check_rule",
    "client_host",
    "compile_go",
    "compile_rule",
    "parse_domains",
    "parse_rule",
    "resolve_syntax",
    "routing_path",
]
