"""Load the static configuration from one source, exactly as Traefik chooses it.

Traefik (``cmd/traefik/traefik.go``, ``pkg/cli/loader_*.go``) tries its loaders in order and
uses the **first** that finds something; sources are never merged:

1. **a file**: ``--configFile=PATH`` (``--configfile`` too), else the first existing of
   ``traefik.toml``, ``traefik.yaml``, ``traefik.yml`` (in that order) in ``/etc/traefik/``,
   ``$XDG_CONFIG_HOME/``, ``$HOME/.config/`` and the working directory;
2. else **command-line flags**, when there are any (``--entryPoints.web.address=:80``);
3. else **environment variables** ``TRAEFIK_*`` (``TRAEFIK_ENTRYPOINTS_WEB_ADDRESS=:80``);
4. else the defaults.

Where Traefik silently ignores the other sources, ferryman warns ("flags ignored: ..."). Two
deliberate differences: a ``--configFile`` that does not exist is an error (Traefik falls back
to the search quietly), and unset ``$XDG_CONFIG_HOME``/``$HOME`` are skipped (Go would look at
``/traefik.toml``).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ferryman.errors import ConfigError
from ferryman.static.diagnostics import StaticConfigError, validation_problems
from ferryman.static.flat import COMMAND_LINE, ENVIRONMENT, decode_flat, env_keys, parse_args
from ferryman.static.models import StaticConfig
from ferryman.static.not_implemented import not_implemented_keys, warning_for

__all__ = ["DEFAULTS", "LoadedStatic", "config_from_data", "find_config_file", "load_static", "read_config_file"]

DEFAULTS = "defaults"
FILE_NAMES = ("traefik.toml", "traefik.yaml", "traefik.yml")
#: The first directory searched (a module attribute so that tests can point it elsewhere).
ETC_DIR = Path("/etc/traefik")


@dataclass(frozen=True)
class LoadedStatic:
    """The effective static configuration and where it came from.

    ``source`` is the absolute file path, ``"command line"``, ``"environment"`` or
    ``"defaults"``. ``warnings`` are meant to be logged at WARN level once logging is set up.
    """

    config: StaticConfig
    source: str
    warnings: list[str] = field(default_factory=list)


def _search_dirs(env: Mapping[str, str], cwd: Path) -> list[Path]:
    dirs = [ETC_DIR]
    for var, suffix in (("XDG_CONFIG_HOME", ""), ("HOME", ".config")):
        base = env.get(var, "")
        if base:
            dirs.append(Path(base) / suffix if suffix else Path(base))
    dirs.append(cwd)
    return dirs


def find_config_file(explicit: str | None, env: Mapping[str, str], cwd: Path,
                     search: Sequence[Path] | None = None) -> Path | None:
    """The configuration file to read, or None. ``explicit`` is ``--configFile``'s value.

    ``search`` overrides the directories searched (tests); by default
    ``/etc/traefik``, ``$XDG_CONFIG_HOME``, ``$HOME/.config``, ``cwd``.
    """
    if explicit is not None and explicit.strip():
        path = Path(explicit.strip()).expanduser()
        if not path.is_absolute():
            path = cwd / path
        if not path.exists():
            raise StaticConfigError([ConfigError(
                f"configuration file {explicit!r} does not exist", source=COMMAND_LINE, path="configFile",
                fix="give an existing traefik.yml/traefik.yaml/traefik.toml")])
        return path.absolute()
    for directory in (search if search is not None else _search_dirs(env, cwd)):
        for name in FILE_NAMES:
            candidate = directory / name
            if candidate.exists():
                return candidate.absolute()
    return None


_TOML_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")


def _stringify_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _stringify_keys(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_stringify_keys(v) for v in value if v is not None]
    return value


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a YAML or TOML static configuration file into plain data.

    Null values are dropped (Traefik's decoder skips them). Raises :class:`StaticConfigError` for
    unreadable files and syntax errors, naming the file and the line.
    """
    source = str(path)
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml"):
        raise StaticConfigError([ConfigError(
            f"unsupported file extension {path.suffix!r}", source=source,
            fix="name the file traefik.yml, traefik.yaml or traefik.toml")])
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise StaticConfigError([ConfigError(f"cannot read the file: {exc.strerror or exc}",
                                             source=source)]) from exc
    except UnicodeDecodeError as exc:
        raise StaticConfigError([ConfigError(f"the file is not UTF-8 text ({exc.reason})",
                                             source=source)]) from exc
    data: Any
    if suffix == ".toml":
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = _TOML_LINE.search(str(exc))
            where = f"line {m.group(1)}, column {m.group(2)}" if m else None
            message = _TOML_LINE.sub("", str(exc)).strip()
            raise StaticConfigError([ConfigError(f"invalid TOML: {message}", source=source,
                                                 path=where)]) from exc
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else None
            problem = exc.problem or exc.context or "syntax error"
            raise StaticConfigError([ConfigError(f"invalid YAML: {problem}", source=source,
                                                 path=where)]) from exc
        except yaml.YAMLError as exc:
            raise StaticConfigError([ConfigError(f"invalid YAML: {exc}", source=source)]) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise StaticConfigError([ConfigError(
            f"expected a mapping of keys (entryPoints:, providers:, ...), got {type(data).__name__}",
            source=source)])
    result: dict[str, Any] = _stringify_keys(data)
    return result


def config_from_data(data: Mapping[str, Any], source: str,
                     problems: Sequence[ConfigError] = ()) -> StaticConfig:
    """Validate plain data into a :class:`StaticConfig`; errors name ``source`` and the key paths.

    ``problems`` found earlier (while decoding flat keys) are reported together with these.
    """
    try:
        config = StaticConfig.model_validate(data)
    except ValidationError as exc:
        raise StaticConfigError([*problems, *validation_problems(StaticConfig, exc, source)]) from exc
    if problems:
        raise StaticConfigError(problems)
    return config


def _semantic_warnings(config: StaticConfig) -> list[str]:
    out: list[str] = []
    for name, ep in config.entry_points.items():
        if ep.listen.protocol == "udp":
            out.append(warning_for(f"entryPoints.{name}.address (UDP entry point {ep.address!r})"))
    if config.core.default_rule_syntax == "v2":
        out.append("core.defaultRuleSyntax: the v2 rule syntax is deprecated; rewrite rules in v3 syntax")
    for name, resolver in config.certificates_resolvers.items():
        dns = resolver.acme.dns_challenge if resolver.acme is not None else None
        if dns is not None and dns.disable_propagation_check:
            out.append(f"certificatesResolvers.{name}.acme.dnsChallenge.disablePropagationCheck is "
                       "deprecated; use propagation.disableChecks")
        if dns is not None and dns.delay_before_check > 0:
            out.append(f"certificatesResolvers.{name}.acme.dnsChallenge.delayBeforeCheck is "
                       "deprecated; use propagation.delayBeforeChecks")
    return out


def load_static(argv: Sequence[str], env: Mapping[str, str], cwd: Path | None = None, *,
                search: Sequence[Path] | None = None) -> LoadedStatic:
    """Load the effective static configuration from ``argv`` (no program or command name),
    ``env`` and the file system, choosing one source as Traefik does (see the module docstring).

    Returns the configuration with implicit entry points added, its source, and warnings (keys
    accepted but not implemented, ignored sources, deprecations). Raises
    :class:`~ferryman.static.diagnostics.StaticConfigError` (a ``ConfigError``) listing every
    problem found in the chosen source.
    """
    cwd = cwd if cwd is not None else Path.cwd()
    args = parse_args(StaticConfig, argv)
    env_items, env_ignored = env_keys(StaticConfig, env)
    warnings: list[str] = []

    path = find_config_file(args.config_file, env, cwd, search)
    if path is not None:
        source = str(path)
        config = config_from_data(read_config_file(path), source)
        if args.items:
            shown = ", ".join(item.origin for item in args.items)
            warnings.append(f"command-line flags ignored ({shown}): the configuration is read from {source} "
                            "only (Traefik uses a single source: file, else flags, else environment)")
        if env_items:
            shown = ", ".join(item.origin for item in env_items)
            warnings.append(f"environment variables ignored ({shown}): the configuration is read from "
                            f"{source} only (Traefik uses a single source: file, else flags, else environment)")
    elif argv:
        source = COMMAND_LINE
        data, problems = decode_flat(StaticConfig, args.items, source)
        config = config_from_data(data, source, problems)
        if env_items:
            shown = ", ".join(item.origin for item in env_items)
            warnings.append(f"environment variables ignored ({shown}): the configuration is read from "
                            "command-line flags only (Traefik uses a single source: file, else flags, "
                            "else environment)")
    elif env_items:
        source = ENVIRONMENT
        data, problems = decode_flat(StaticConfig, env_items, source)
        config = config_from_data(data, source, problems)
    else:
        source = DEFAULTS
        config = StaticConfig()
    warnings.extend(f"{name} is ignored: Traefik reads the configuration file only from --configFile"
                    for name in env_ignored)

    warnings.extend(warning_for(key) for key in not_implemented_keys(config))
    warnings.extend(_semantic_warnings(config))
    return LoadedStatic(config=config.with_implicit_entry_points(), source=source, warnings=warnings)
