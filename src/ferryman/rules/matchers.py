"""The HTTP matchers of both rule syntaxes: argument checks, validation, and code for matching.

Each builder validates one call at compile time (raising :class:`~ferryman.errors.RuleError`
that points into the rule) and returns a :class:`Leaf`: a Python expression over ``req`` whose
free names are constants bound in the generated function's namespace. The compiler joins the
leaves into one function, so ``Host(`a`) && PathPrefix(`/x`)`` evaluates as
``req.host == _c0 and req.path.startswith(_c1)``.

Semantics follow Traefik's ``pkg/muxer/http/matcher.go`` (v3) and ``matcher_v2.go`` with its
gorilla/mux templates (v2); see the conformance README for the list.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ferryman.errors import RuleError

from .hosts import NO_HOST, HostConstraint
from .normalize import parse_client_ip, query_values
from .re2 import RegexpError, compile_go, quote_meta
from .tree import Arg, Call

Search = Callable[[str], object]

# The per-request helpers below use explicit loops rather than any(<generator>): no generator
# object is created per evaluation (ruff SIM110 is silenced for that reason).


@dataclass(frozen=True, slots=True)
class Leaf:
    """Code for one (un-negated) matcher."""

    expr: str  # a boolean Python expression over ``req``
    cost: int  # rough relative cost, used to evaluate cheap operands first
    hosts: HostConstraint | None = None  # necessary host condition; None = any host


class Context:
    """What a builder needs: the rule (for errors) and a namespace for constants."""

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.namespace: dict[str, object] = {}

    def bind(self, value: object) -> str:
        name = f"_c{len(self.namespace)}"
        self.namespace[name] = value
        return name

    def fail(self, message: str, column: int, fix: str | None = None) -> RuleError:
        return RuleError(message, rule=self.rule, column=column, fix=fix)


Builder = Callable[[Call, Context], Leaf]


@dataclass(frozen=True, slots=True)
class Spec:
    """A matcher: its name, how many values it takes (``None``: one or more) and its builder."""

    name: str
    arity: tuple[int, ...] | None
    usage: str
    build: Builder


# --------------------------------------------------------------------------------------------------
# Shared checks


def _ascii(ctx: Context, call: Call, arg: Arg) -> None:
    for i, ch in enumerate(arg.value):
        if ord(ch) > 0x7F:
            raise ctx.fail(f"non-ASCII characters are not allowed in {call.name}", arg.column_of(i),
                           fix=_punycode_fix(call.name, arg.value))


def _punycode_fix(name: str, value: str) -> str:
    try:
        labels = []
        for label in value.lower().split("."):
            labels.append(label if label.isascii() else "xn--" + label.encode("punycode").decode("ascii"))
        return f"use the punycode form: {name}(`{'.'.join(labels)}`)"
    except UnicodeError:
        return "use the punycode (xn--) form of the domain"


def _regexp(ctx: Context, call: Call, arg: Arg) -> Search:
    try:
        return compile_go(arg.value).search
    except RegexpError as exc:
        raise ctx.fail(f"invalid regular expression in {call.name}: {exc.message}",
                       arg.column_of(exc.pos), fix=exc.fix) from None


def _slash(ctx: Context, call: Call, arg: Arg) -> None:
    if not arg.value.startswith("/"):
        raise ctx.fail(f"the path of {call.name} must start with '/'", arg.column_of(0),
                       fix=f"write {call.name}(`/{arg.value}`)")


def _any_search(search: Search) -> Callable[[Sequence[str]], bool]:
    def match(values: Sequence[str]) -> bool:
        for value in values:  # noqa: SIM110
            if search(value) is not None:
                return True
        return False
    return match


def _query_equals(key: str, expected: str) -> Callable[[str], bool]:
    plain = "%" not in key and "+" not in key

    def match(query: str) -> bool:
        if plain and key not in query and "%" not in query and "+" not in query:
            return False
        for value in query_values(query, key):  # noqa: SIM110
            if value == expected:
                return True
        return False
    return match


def _query_search(key: str, search: Search) -> Callable[[str], bool]:
    def match(query: str) -> bool:
        for value in query_values(query, key):  # noqa: SIM110
            if search(value) is not None:
                return True
        return False
    return match


# --------------------------------------------------------------------------------------------------
# ClientIP


Net = tuple[int, int, int]  # (version, network as int, mask as int)


def _parse_ip_or_cidr(ctx: Context, call: Call, arg: Arg) -> tuple[tuple[int, int] | None, Net | None]:
    text = arg.value
    bad = ctx.fail(f"{call.name} value {text!r} is not an IP address or a CIDR range", arg.column_of(0),
                   fix="write an address such as `192.168.1.7` or a range such as `10.0.0.0/8`")
    if "%" in text:
        raise bad
    if "/" not in text:
        ip = parse_client_ip(text)
        if ip is None:
            raise bad
        return ip, None
    addr, _, prefix = text.partition("/")
    if not (prefix.isascii() and prefix.isdigit()) or parse_client_ip(addr) is None:
        raise bad
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise bad from None
    if isinstance(net, ipaddress.IPv6Network) and net.prefixlen >= 96 \
            and net.network_address.ipv4_mapped is not None:
        # Go treats an IPv4-mapped network as the IPv4 network it maps.
        v4 = ipaddress.IPv4Network((int(net.network_address.ipv4_mapped), net.prefixlen - 96))
        return None, (4, int(v4.network_address), int(v4.netmask))
    return None, (net.version, int(net.network_address), int(net.netmask))


def _client_ip_matcher(exact: frozenset[tuple[int, int]], nets: tuple[Net, ...]) -> Callable[[str], bool]:
    def match(client_ip: str) -> bool:
        parsed = parse_client_ip(client_ip)
        if parsed is None:
            return False
        if parsed in exact:
            return True
        version, value = parsed
        for ver, network, mask in nets:  # noqa: SIM110
            if ver == version and value & mask == network:
                return True
        return False
    return match


def _client_ip(call: Call, ctx: Context) -> Leaf:
    exact: set[tuple[int, int]] = set()
    nets: list[Net] = []
    for arg in call.args:
        ip, net = _parse_ip_or_cidr(ctx, call, arg)
        if ip is not None:
            exact.add(ip)
        if net is not None:
            nets.append(net)
    fn = ctx.bind(_client_ip_matcher(frozenset(exact), tuple(nets)))
    return Leaf(f"{fn}(req.client_ip)", 4)


# --------------------------------------------------------------------------------------------------
# v3 matchers


def _host(call: Call, ctx: Context) -> Leaf:
    arg = call.args[0]
    if arg.value == "*":
        return Leaf("True", 0, None)
    _ascii(ctx, call, arg)
    expr = arg.value.lower()
    norm = expr[:-1] if expr.endswith(".") else expr
    if norm.startswith("*."):
        parent = norm[2:]
        if parent:
            return Leaf(f"(req.host.partition('.')[2] == {ctx.bind(parent)})", 1,
                        HostConstraint(wildcard_parents=frozenset({parent})))
        fn = ctx.bind(lambda host: host.partition(".")[1] == "." and not host.partition(".")[2])
        return Leaf(f"{fn}(req.host)", 1, HostConstraint(wildcard_parents=frozenset({""})))
    if norm == "*":  # `*.` matches any single-label host
        return Leaf("(req.host != '' and '.' not in req.host)", 1, None)
    if norm.startswith("*"):  # a leading `*` not followed by a dot never matches (Traefik compares labels)
        return Leaf("False", 0, NO_HOST)
    return Leaf(f"(req.host == {ctx.bind(norm)})", 1, HostConstraint(exact=frozenset({norm})))


def _host_regexp(call: Call, ctx: Context) -> Leaf:
    arg = call.args[0]
    _ascii(ctx, call, arg)
    return Leaf(f"({ctx.bind(_regexp(ctx, call, arg))}(req.host) is not None)", 6)


def _path(call: Call, ctx: Context) -> Leaf:
    arg = call.args[0]
    _slash(ctx, call, arg)
    return Leaf(f"(req.path == {ctx.bind(arg.value)})", 1)


def _path_prefix(call: Call, ctx: Context) -> Leaf:
    arg = call.args[0]
    _slash(ctx, call, arg)
    return Leaf(f"req.path.startswith({ctx.bind(arg.value)})", 1)


def _path_regexp(call: Call, ctx: Context) -> Leaf:
    return Leaf(f"({ctx.bind(_regexp(ctx, call, call.args[0]))}(req.path) is not None)", 6)


def _method(call: Call, ctx: Context) -> Leaf:
    return Leaf(f"(req.method == {ctx.bind(call.args[0].value.upper())})", 1)


def _header(call: Call, ctx: Context) -> Leaf:
    name, value = call.args[0].value.lower(), call.args[1].value
    return Leaf(f"({ctx.bind(value)} in req.header_values({ctx.bind(name)}))", 3)


def _header_regexp(call: Call, ctx: Context) -> Leaf:
    name = call.args[0].value.lower()
    fn = ctx.bind(_any_search(_regexp(ctx, call, call.args[1])))
    return Leaf(f"{fn}(req.header_values({ctx.bind(name)}))", 6)


def _query(call: Call, ctx: Context) -> Leaf:
    key = call.args[0].value
    value = call.args[1].value if len(call.args) == 2 else ""
    return Leaf(f"{ctx.bind(_query_equals(key, value))}(req.query)", 5)


def _query_regexp(call: Call, ctx: Context) -> Leaf:
    if len(call.args) == 1:
        return _query(call, ctx)
    search = _regexp(ctx, call, call.args[1])
    return Leaf(f"{ctx.bind(_query_search(call.args[0].value, search))}(req.query)", 6)


V3: dict[str, Spec] = {s.name: s for s in (
    Spec("ClientIP", (1,), "ClientIP(`10.0.0.0/8`)", _client_ip),
    Spec("Method", (1,), "Method(`GET`)", _method),
    Spec("Host", (1,), "Host(`example.com`)", _host),
    Spec("HostRegexp", (1,), "HostRegexp(`^.+\\.example\\.com$`)", _host_regexp),
    Spec("Path", (1,), "Path(`/products`)", _path),
    Spec("PathRegexp", (1,), "PathRegexp(`^/products/[0-9]+$`)", _path_regexp),
    Spec("PathPrefix", (1,), "PathPrefix(`/products`)", _path_prefix),
    Spec("Header", (2,), "Header(`X-Canary`, `1`)", _header),
    Spec("HeaderRegexp", (2,), "HeaderRegexp(`User-Agent`, `Firefox`)", _header_regexp),
    Spec("Query", (1, 2), "Query(`mobile`, `true`)", _query),
    Spec("QueryRegexp", (1, 2), "QueryRegexp(`id`, `^[0-9]+$`)", _query_regexp),
)}


# --------------------------------------------------------------------------------------------------
# v2 matchers (gorilla/mux templates)


def _brace_indices(tpl: str) -> list[tuple[int, int]] | None:
    """Top-level ``{...}`` spans of a gorilla template; ``None`` when braces are unbalanced."""
    level = 0
    start = 0
    spans: list[tuple[int, int]] = []
    for i, ch in enumerate(tpl):
        if ch == "{":
            level += 1
            if level == 1:
                start = i
        elif ch == "}":
            level -= 1
            if level == 0:
                spans.append((start, i + 1))
            elif level < 0:
                return None
    return spans if level == 0 else None


def _template(ctx: Context, call: Call, arg: Arg, tpl: str, kind: str) -> Search | None:
    """Compile a gorilla/mux template (``kind``: host, path, prefix, query); ``None`` when it has
    no variables, so the caller can use a plain comparison."""
    spans = _brace_indices(tpl)
    if spans is None:
        raise ctx.fail(f"unbalanced braces in the {call.name} template {tpl!r}", arg.column_of(0),
                       fix="variables are written {name} or {name:regexp}")
    if not spans:
        return None
    default = {"query": ".*", "host": "[^.]+"}.get(kind, "[^/]+")
    pattern = ["(?i)^" if kind == "host" else "^"]
    end = 0
    for n, (s, e) in enumerate(spans):
        raw, end = tpl[end:s], e
        name, colon, patt = tpl[s + 1:e - 1].partition(":")
        if not colon:
            patt = default
        if not name or not patt:
            raise ctx.fail(f"missing name or pattern in {tpl[s:e]!r} of {call.name}", arg.column_of(s),
                           fix="write {name} or {name:regexp}")
        try:
            compile_go(f"^{patt}$")
        except RegexpError as exc:
            raise ctx.fail(f"invalid regular expression in {tpl[s:e]!r} of {call.name}: {exc.message}",
                           arg.column_of(s), fix=exc.fix) from None
        pattern.append(f"{quote_meta(raw)}(?P<v{n}>{patt})")
    pattern.append(quote_meta(tpl[end:]))
    if kind == "query" and tpl.partition("=")[2] == "":
        pattern.append(default)
    if kind != "prefix":
        pattern.append("$")
    try:
        return compile_go("".join(pattern)).search
    except RegexpError as exc:
        raise ctx.fail(f"invalid {call.name} template {tpl!r}: {exc.message}", arg.column_of(0),
                       fix=exc.fix) from None


def _any_of(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + " or ".join(parts) + ")"


def _all_of(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "(" + " and ".join(parts) + ")"


def _host_v2(call: Call, ctx: Context) -> Leaf:
    hosts: list[str] = []
    for arg in call.args:
        _ascii(ctx, call, arg)
        value = arg.value.lower()
        hosts.append(value[:-1] if value.endswith(".") else value)
    if len(hosts) == 1:
        return Leaf(f"(req.host == {ctx.bind(hosts[0])})", 1, HostConstraint(exact=frozenset(hosts)))
    return Leaf(f"(req.host in {ctx.bind(frozenset(hosts))})", 1, HostConstraint(exact=frozenset(hosts)))


def _host_regexp_v2(call: Call, ctx: Context) -> Leaf:
    literal: set[str] = set()
    parts: list[str] = []
    for arg in call.args:
        _ascii(ctx, call, arg)
        search = _template(ctx, call, arg, arg.value, "host")
        if search is None:
            literal.add(arg.value.lower())  # (?i)^quoted$ on the host: a case-insensitive equality
        else:
            parts.append(f"({ctx.bind(search)}(req.host) is not None)")
    if literal:
        parts.insert(0, f"(req.host in {ctx.bind(frozenset(literal))})")
    return Leaf(_any_of(parts), 6 if len(parts) > 1 or not literal else 1)


def _path_v2(call: Call, ctx: Context, *, prefix: bool) -> Leaf:
    plain: list[str] = []
    parts: list[str] = []
    for arg in call.args:
        if not arg.value.startswith("/"):
            _slash(ctx, call, arg)
        search = _template(ctx, call, arg, arg.value, "prefix" if prefix else "path")
        if search is None:
            plain.append(arg.value)
        else:
            parts.append(f"({ctx.bind(search)}(req.path) is not None)")
    if plain:
        if prefix:
            parts.insert(0, f"req.path.startswith({ctx.bind(tuple(plain))})")
        elif len(plain) == 1:
            parts.insert(0, f"(req.path == {ctx.bind(plain[0])})")
        else:
            parts.insert(0, f"(req.path in {ctx.bind(frozenset(plain))})")
    return Leaf(_any_of(parts), 1 if plain and len(parts) == 1 else 6)


def _method_v2(call: Call, ctx: Context) -> Leaf:
    methods = frozenset(a.value.upper() for a in call.args)
    if len(methods) == 1:
        return Leaf(f"(req.method == {ctx.bind(next(iter(methods)))})", 1)
    return Leaf(f"(req.method in {ctx.bind(methods)})", 1)


def _pairs(ctx: Context, call: Call) -> list[tuple[Arg, Arg]]:
    if len(call.args) % 2:
        count = len(call.args)
        raise ctx.fail(f"{call.name} takes name/value pairs, got {count} value{'s' if count > 1 else ''}", call.close,
                       fix=f"write {call.name}(`name`, `value`)")
    # gorilla/mux keeps the pairs in a map keyed by the name as written: a repeated name keeps its last value.
    by_name: dict[str, tuple[Arg, Arg]] = {}
    for i in range(0, len(call.args), 2):
        by_name[call.args[i].value] = (call.args[i], call.args[i + 1])
    return list(by_name.values())


def _headers_v2(call: Call, ctx: Context) -> Leaf:
    parts = [f"({ctx.bind(v.value)} in req.header_values({ctx.bind(k.value.lower())}))"
             for k, v in _pairs(ctx, call)]
    return Leaf(_all_of(parts), 3 * len(parts))


def _headers_regexp_v2(call: Call, ctx: Context) -> Leaf:
    parts = []
    for k, v in _pairs(ctx, call):
        fn = ctx.bind(_any_search(_regexp(ctx, call, v)))
        parts.append(f"{fn}(req.header_values({ctx.bind(k.value.lower())}))")
    return Leaf(_all_of(parts), 6 * len(parts))


def _first_value_matcher(key: str, value: str, search: Search | None) -> Callable[[str], bool]:
    """gorilla/mux ``Queries``: the *first* value of ``key`` must match ``^key=value$``."""
    def match(query: str) -> bool:
        first = next(query_values(query, key), None)
        if first is None:
            return False
        if search is not None:
            return search(f"{key}={first}") is not None
        return first == value if value else "\n" not in first
    return match


def _query_v2(call: Call, ctx: Context) -> Leaf:
    # Traefik splits every value at its first '=' and hands the flat list to gorilla as pairs,
    # so Query(`a=b`) and Query(`a`, `b`) both mean key a, value b.
    flat: list[tuple[str, Arg]] = []
    for arg in call.args:
        key, eq, value = arg.value.partition("=")
        flat.append((key, arg))
        if eq:
            flat.append((value, arg))
    if len(flat) % 2:
        raise ctx.fail("Query values must be key=value pairs", call.args[-1].column_of(0),
                       fix="write Query(`key=value`)")
    parts = []
    for i in range(0, len(flat), 2):
        (key, arg), (value, _) = flat[i], flat[i + 1]
        tpl = f"{key}={value}"
        search = _template(ctx, call, arg, tpl, "query")
        parts.append(f"{ctx.bind(_first_value_matcher(key, value, search))}(req.query)")
    return Leaf(_all_of(parts), 5 * len(parts))


V2: dict[str, Spec] = {s.name: s for s in (
    Spec("Host", None, "Host(`example.com`, ...)", _host_v2),
    Spec("HostHeader", None, "HostHeader(`example.com`, ...)", _host_v2),
    Spec("HostRegexp", None, "HostRegexp(`{sub:[a-z]+}.example.com`, ...)", _host_regexp_v2),
    Spec("ClientIP", None, "ClientIP(`10.0.0.0/8`, ...)", _client_ip),
    Spec("Path", None, "Path(`/products/{id:[0-9]+}`, ...)", lambda c, x: _path_v2(c, x, prefix=False)),
    Spec("PathPrefix", None, "PathPrefix(`/products`, ...)", lambda c, x: _path_v2(c, x, prefix=True)),
    Spec("Method", None, "Method(`GET`, ...)", _method_v2),
    Spec("Headers", None, "Headers(`X-Canary`, `1`)", _headers_v2),
    Spec("HeadersRegexp", None, "HeadersRegexp(`User-Agent`, `Firefox`)", _headers_regexp_v2),
    Spec("Query", None, "Query(`key=value`, ...)", _query_v2),
)}


def spellings(specs: dict[str, Spec]) -> dict[str, str]:
    """Accepted spellings → canonical name: ``PathPrefix``, ``pathprefix``, ``PATHPREFIX``,
    ``Pathprefix`` — exactly the four forms Traefik registers (``pkg/rules/parser.go``)."""
    out: dict[str, str] = {}
    for name in specs:
        lower = name.lower()
        for form in (name, lower, name.upper(), lower[:1].upper() + lower[1:]):
            out[form] = name
    return out


def describe_arity(spec: Spec) -> str:
    if spec.arity is None:
        return "one or more values"
    words = {1: "one value", 2: "two values"}
    return " or ".join(words.get(n, f"{n} values") for n in spec.arity)


def check_call(ctx: Context, spec: Spec, call: Call) -> None:
    """Traefik's ``CheckRule`` (values present and non-empty), then the matcher's arity."""
    if not call.args:
        raise ctx.fail(f"{call.name} has no value", call.close, fix=f"write {spec.usage}")
    for arg in call.args:
        if not arg.value:
            raise ctx.fail(f"empty value in {call.name}", arg.column, fix=f"write {spec.usage}")
    if spec.arity is not None and len(call.args) not in spec.arity:
        expected = describe_arity(spec)
        column = call.args[max(spec.arity)].column if len(call.args) > max(spec.arity) else call.close
        raise ctx.fail(f"{call.name} takes {expected}, got {len(call.args)}", column, fix=f"write {spec.usage}")
