"""Loading a :class:`Config` from YAML, the environment and command-line overrides.

Order of precedence (later wins): packaged defaults < YAML file < ``--profile`` < ``--set``
and dedicated CLI flags. Everything goes through the same pydantic validation, so an override
on the command line gets the same clear error as a bad key in the file.
"""

from __future__ import annotations

import copy
import os
import re
import types
import typing
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from rewts.config.models import Config
from rewts.errors import ConfigError
from rewts.fileio import MAX_CONFIG_BYTES, decode_utf8, read_regular

#: the seed's config path, relative to the working directory
DEFAULT_CONFIG_PATH = Path("configs/hybrid/rewts_llm_rl.yaml")

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def packaged_default_text() -> str:
    """The shipped default config (same file as ``configs/hybrid/rewts_llm_rl.yaml``)."""
    return resources.files("rewts.config").joinpath("default.yaml").read_text(encoding="utf-8")


def interpolate_env(
    value: Any,
    env: Mapping[str, str] | None = None,
    *,
    missing: list[tuple[str, str]] | None = None,
    _path: str = "",
) -> Any:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in every string of a YAML tree.

    An unset variable without a default becomes ``None`` when it is the whole value (so an
    optional key such as ``gemini_api_key: ${GEMINI_API_KEY}`` simply stays unset), and an
    empty string inside a longer text. ``missing`` collects ``(key path, variable)`` for each
    of them, so the loader can name the variable where a value was expected.
    """
    env = os.environ if env is None else env
    if isinstance(value, dict):
        return {
            k: interpolate_env(v, env, missing=missing, _path=f"{_path}{k}.")
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            interpolate_env(v, env, missing=missing, _path=f"{_path}{i}.")
            for i, v in enumerate(value)
        ]
    if not isinstance(value, str):
        return value

    def note(name: str) -> None:
        if missing is not None:
            missing.append((_path.rstrip("."), name))

    whole = _VAR.fullmatch(value.strip())
    if whole:
        name, default = whole.group(1), whole.group(2)
        if default is None and not env.get(name):
            note(name)
        resolved = env.get(name, default)
        return resolved if resolved not in (None, "") else (default or None)

    def sub(m: re.Match[str]) -> str:
        if m.group(2) is None and m.group(1) not in env:
            note(m.group(1))
        return env.get(m.group(1), m.group(2) or "")

    return _VAR.sub(sub, value)


def _check_missing(missing: list[tuple[str, str]], profile: str | None, origin: str) -> None:
    """An unset ``${VAR}`` is fine for a key (``gemini_api_key: ${GEMINI_API_KEY}``), never
    where a value is expected: a path or ticker silently turning into None or "auto"."""
    for path, name in missing:
        keys = path.split(".")
        if keys[0] == "profiles":
            if len(keys) < 2 or keys[1] != profile:
                continue  # a profile not in use
            path = ".".join(keys[2:])
        if any(hint in path.lower() for hint in _SECRET_HINT):
            continue
        raise ConfigError(
            f"{origin}: {path} uses ${{{name}}}, which is not set: set {name}, or write "
            f"${{{name}:-default}} for a default"
        )


#: bounds on what a config may expand to: aliases make a few lines grow exponentially
#: ("billion laughs"), and ${VAR} interpolation copies every expanded value
MAX_YAML_VALUES = 100_000
MAX_YAML_DEPTH = 64


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (YAML keeps the last one
    silently, so the first setting would be ignored without a word)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if first is not None:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (first at line {first.start_mark.line + 1}); keep one",
                    key_node.start_mark,
                )
            seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _check_size(tree: Any, origin: str) -> None:
    """Refuse a tree that expands to too many values or nests too deeply, before anything
    copies it (interpolation, merging and validation all walk the expanded tree)."""
    budget = MAX_YAML_VALUES
    stack: list[tuple[Any, int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(
                f"{origin}: expands to more than {MAX_YAML_VALUES:,} values (YAML aliases "
                "repeated inside each other?); a config is a few hundred"
            )
        if depth > MAX_YAML_DEPTH:
            raise ConfigError(
                f"{origin}: nested more than {MAX_YAML_DEPTH} levels deep; a config needs a few"
            )
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
            stack.extend((k, depth + 1) for k in node)
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def safe_yaml(text: str, origin: str) -> Any:
    """Parse YAML into plain values, bounded in size and depth; errors name ``origin``."""
    try:
        tree = yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass: no tags
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{origin}: malformed YAML{where}: {problem}") from exc
    except RecursionError:
        raise ConfigError(
            f"{origin}: nested more than {MAX_YAML_DEPTH} levels deep; a config needs a few"
        ) from None
    _check_size(tree, origin)
    return tree


def _read_yaml(text: str, origin: str) -> dict[str, Any]:
    tree = safe_yaml(text, origin)
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(
            f"{origin}: the top level must be a mapping of keys, got {type(tree).__name__}"
        )
    return tree


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in; nested mappings merge, the rest replaces."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _unwrap(annotation: Any) -> list[Any]:
    """The alternatives of a type: ``list[str] | None`` -> [list[str], NoneType]."""
    annotation = _strip_annotated(annotation)
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return [_strip_annotated(a) for a in typing.get_args(annotation)]
    return [annotation]


def _strip_annotated(annotation: Any) -> Any:
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def _model_of(alternatives: list[Any]) -> type[BaseModel] | None:
    for alt in alternatives:
        if isinstance(alt, type) and issubclass(alt, BaseModel):
            return alt
    return None


def _field_annotation(keys: list[str], model: type[BaseModel] = Config) -> Any:
    """The type of the config key at ``keys`` (None when the path is not a known key).

    ``profiles.NAME.rest`` is looked up as ``rest``: a profile holds overrides of the config.
    """
    if len(keys) > 2 and keys[0] == "profiles" and model is Config:
        keys = keys[2:]
    annotation: Any = model
    for i, key in enumerate(keys):
        section = _model_of(_unwrap(annotation))
        if section is None:
            dicts = [a for a in _unwrap(annotation) if typing.get_origin(a) is dict]
            if not dicts or i != len(keys) - 1:
                return None
            args = typing.get_args(dicts[0])
            return args[1] if len(args) == 2 else Any
        fields = section.model_fields
        if key not in fields:
            return None
        annotation = fields[key].annotation
    return annotation


def _is_list(annotation: Any) -> bool:
    return any(typing.get_origin(a) is list for a in _unwrap(annotation))


def parse_set_option(item: str) -> dict[str, Any]:
    """Turn ``a.b.c=value`` into ``{"a": {"b": {"c": value}}}``; the value is parsed as YAML.

    For keys that hold lists, a plain string becomes a list: comma-separated values are split
    (``tickers=AAPL,MSFT``) and a single value is a one-element list (``tickers=AAPL``), so the
    command line needs no YAML brackets. Other keys keep commas as written. ``KEY=null`` on an
    entry of a mapping (``data.market_symbols.vix=null``) removes that entry.
    """
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected KEY.PATH=VALUE, for example llm.temperature=0")
    path, raw = item.split("=", 1)
    keys = [k.strip() for k in path.strip().split(".")]
    if not all(keys):
        raise ConfigError(f"--set {item!r}: empty key in path {path!r}")
    try:
        value = safe_yaml(raw, f"--set {path.strip()}") if raw.strip() else None
    except ConfigError as exc:
        if "malformed YAML" not in str(exc):
            raise  # too big or too deep: not a plain string either
        value = raw
    annotation = _field_annotation(keys)
    listy = annotation is not None and _is_list(annotation)
    if listy and value is None:
        value = []  # "tickers=" is an empty list (and an error that says so), not a null
    elif listy and not isinstance(value, list | dict):
        value = (
            [v.strip() for v in value.split(",") if v.strip()]
            if isinstance(value, str)
            else [value]
        )
    elif (
        annotation is None
        and isinstance(value, str)
        and "," in value
        and not value.startswith(("http://", "https://"))
    ):
        # a key not in the models (validation will name it): the comma reading, as before
        value = [v.strip() for v in value.split(",") if v.strip()]
    tree: dict[str, Any] = {keys[-1]: value}
    for key in reversed(keys[:-1]):
        tree = {key: tree}
    return tree


def _clears_mapping(item: str) -> list[str] | None:
    """The key path when ``item`` sets a whole mapping-typed key to null or ``{}``.

    Merging ``{}`` into a mapping changes nothing, so ``--set data.market_symbols=null`` (or
    ``={}``) is applied as a replacement: no market symbols at all.
    """
    path, _, raw = item.partition("=")
    keys = [k.strip() for k in path.strip().split(".")]
    annotation = _field_annotation(keys) if all(keys) else None
    if annotation is None or _model_of(_unwrap(annotation)) is not None:
        return None
    if not any(typing.get_origin(a) is dict for a in _unwrap(annotation)):
        return None
    return keys if raw.strip() in ("", "null", "~", "{}") else None


def _replace_at(tree: dict[str, Any], keys: list[str], value: Any) -> dict[str, Any]:
    out = copy.deepcopy(tree)
    node = out
    for key in keys[:-1]:
        child = node.get(key)
        node[key] = child = dict(child) if isinstance(child, dict) else {}
        node = child
    node[keys[-1]] = value
    return out


def drop_null_entries(tree: dict[str, Any], model: type[BaseModel] = Config) -> dict[str, Any]:
    """Remove ``None`` entries of mapping-typed keys (``data.market_symbols``, ``llm.prices``).

    A null entry means "not this one" (``--set data.market_symbols.vix=null`` runs without
    VIX), since merging an override can add or change an entry but never remove one.
    """
    out = dict(tree)
    for name, info in model.model_fields.items():
        value = out.get(name)
        if not isinstance(value, dict):
            continue
        alternatives = _unwrap(info.annotation)
        section = _model_of(alternatives)
        if section is not None:
            out[name] = drop_null_entries(value, section)
        elif any(typing.get_origin(a) is dict for a in alternatives):
            out[name] = {k: v for k, v in value.items() if v is not None}
    return out


_SECRET_HINT = ("api_key", "secret", "token", "password")


def _locate(tree: Any, loc: tuple[Any, ...]) -> tuple[list[str], Any, bool]:
    """Follow a pydantic error location into the user's tree.

    Returns the key path that exists in the tree, the value found there, and whether the whole
    location was found (pydantic adds union-branch tags such as ``literal['auto']`` that are
    not keys).
    """
    path: list[str] = []
    node = tree
    for part in loc:
        if (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and part < len(node)
        ):
            node = node[part]
        else:
            return path, node, False
        path.append(str(part))
    return path, node, True


def format_validation_error(exc: ValidationError, tree: dict[str, Any], origin: str) -> str:
    """One readable line per bad key: key path, the value given, and what is allowed."""
    problems: dict[str, list[str]] = {}
    for err in exc.errors():
        path, value, found = _locate(tree, tuple(err["loc"]))
        if err["type"] == "missing" and not found:
            path = [*path, str(err["loc"][len(path)])]
        key_path = ".".join(path) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            head = key_path
            msg = "unknown key (check the spelling; the default config lists every key)"
        elif any(h in key_path for h in _SECRET_HINT):
            head = f"{key_path} = <hidden>"
        elif err["type"] == "missing" or isinstance(value, dict):
            head = key_path
        else:
            head = f"{key_path} = {value!r}"
        msgs = problems.setdefault(head, [])
        if msg not in msgs:
            msgs.append(msg)
    lines = [f"{head}: {' or '.join(msgs)}" for head, msgs in problems.items()]
    if len(lines) == 1:
        return f"invalid configuration ({origin}): {lines[0]}"
    return f"invalid configuration ({origin}):\n  " + "\n  ".join(lines)


def load_config(
    path: Path | str | None = None,
    *,
    profile: str | None = None,
    overrides: Iterable[Mapping[str, Any]] = (),
    sets: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
) -> Config:
    """Load and validate the experiment configuration.

    ``path=None`` uses ``configs/hybrid/rewts_llm_rl.yaml`` when it exists in the working
    directory and the packaged defaults otherwise, so every command works from any folder.
    ``overrides`` are nested dicts (from dedicated CLI flags); ``sets`` are ``a.b=value`` strings.
    """
    sets = list(sets)
    if path is None and DEFAULT_CONFIG_PATH.is_file():
        path = DEFAULT_CONFIG_PATH
    if path is None:
        origin, text = "packaged defaults", packaged_default_text()
    else:
        path = Path(path)
        if not path.exists():
            raise ConfigError(
                f"config file not found: {path} (pass --config PATH or omit it to use the defaults)"
            )
        data = read_regular(path, limit=MAX_CONFIG_BYTES, error=ConfigError, what="--config ")
        origin, text = str(path), decode_utf8(data, path, ConfigError)

    missing: list[tuple[str, str]] = []
    tree = interpolate_env(_read_yaml(text, origin), env, missing=missing)
    _check_missing(missing, profile, origin)
    if profile is not None:
        profiles = tree.get("profiles") or {}
        if profile not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            raise ConfigError(f"unknown profile {profile!r} in {origin} (known: {known})")
        tree = deep_merge(tree, profiles[profile] or {})
    for override in overrides:
        tree = deep_merge(tree, override)
    for item in sets:
        cleared = _clears_mapping(item)
        if cleared is not None:
            tree = _replace_at(tree, cleared, {})
        else:
            missing = []
            tree = deep_merge(tree, interpolate_env(parse_set_option(item), env, missing=missing))
            _check_missing(missing, None, f"--set {item.split('=', 1)[0]}")
    tree = drop_null_entries(tree)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        where = f"{origin} with overrides" if sets or overrides else origin
        raise ConfigError(format_validation_error(exc, tree, where)) from exc
