"""The settings a run states at its start: regional ones (time zone, currency) are never guessed.

A mapping declares them under `source.required_settings`. Each run takes every one from the
first place that says it, in this order, and states the value and its origin at its start
(CLI output, run tags), in its extract metadata and in its report:

1. `--set NAME=VALUE` (the run's overrides),
2. the environment variable `<SLUG>__<NAME>` (e.g. `ACTIONSTEP__TIMEZONE`),
3. `migration_settings.yaml` in the export folder (file sources: the data engineer writes it
   beside the export, which says nothing about its zone),
4. the mapping's `source.settings`.

A source whose API says its zone or currency would come before all of these; Actionstep's
published API has no organisation endpoint that does (bills carry a currency per bill only).
A run missing one stops before anything runs, with a message saying how to set it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as MappingOf
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from migration_pipeline.engine.mapping import Mapping

SETTINGS_FILE = "migration_settings.yaml"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_EXAMPLES = {"timezone": "Pacific/Auckland", "currency": "NZD"}


class SettingsMissing(ValueError):
    """A required setting is unstated or invalid; the message says how to state it."""


@dataclass(frozen=True)
class RunSettings:
    values: dict[str, Any]  # every setting of the run
    stated: dict[str, dict[str, str]]  # required setting -> {"value": ..., "from": ...}

    def tags(self) -> dict[str, str]:
        """Run tags stating them (`migration/setting/<name>`)."""
        return {f"migration/setting/{name}": entry["value"] for name, entry in self.stated.items()}

    def lines(self) -> list[str]:
        return [f"  {name}: {entry['value']} (from {entry['from']})" for name, entry in self.stated.items()]


def env_name(slug: str, setting: str) -> str:
    return f"{slug.upper()}__{setting.upper()}"


def folder_settings(folder: Path | None) -> dict[str, Any]:
    """The export folder's `migration_settings.yaml` (a mapping of setting -> value), or {}."""
    path = folder / SETTINGS_FILE if folder is not None else None
    if path is None or not path.is_file():
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise SettingsMissing(f"{path} is not valid YAML: {error}") from None
    if not isinstance(loaded, dict):
        raise SettingsMissing(f"{path} must hold `name: value` lines, e.g. `timezone: America/Los_Angeles`")
    return {str(k): v for k, v in loaded.items()}


def resolve_settings(mapping: Mapping, overrides: MappingOf[str, Any], folder: Path | None,
                     environ: MappingOf[str, str]) -> RunSettings:
    from_file = folder_settings(folder) if mapping.source.kind == "files" else {}
    values = {**mapping.source.settings, **from_file, **overrides}
    stated: dict[str, dict[str, str]] = {}
    problems: list[str] = []
    for name, spec in mapping.source.required_settings.items():
        variable = env_name(mapping.slug, name)
        places = [("--set", overrides.get(name)), (variable, environ.get(variable)),
                  (str(folder / SETTINGS_FILE) if folder else SETTINGS_FILE, from_file.get(name)),
                  (f"mappings/{mapping.slug}__twenty.yaml", mapping.source.settings.get(name))]
        origin, value = next(((o, str(v).strip()) for o, v in places if v is not None and str(v).strip()), ("", ""))
        if not value:
            problems.append(f"{name} ({spec.description}) is not set")
        elif (error := _invalid(spec.kind, value)) is not None:
            problems.append(f"{name} {value!r} from {origin} {error}")
        else:
            values[name] = value
            stated[name] = {"value": value, "from": origin}
    if problems:
        raise SettingsMissing(_how_to_set(mapping, problems))
    return RunSettings(values, stated)


def _invalid(kind: str, value: str) -> str | None:
    if kind == "timezone":
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            return "is not an IANA time zone (e.g. Australia/Sydney, Pacific/Auckland, America/New_York)"
    if kind == "currency" and not _CURRENCY.match(value):
        return "is not an ISO 4217 currency code (three capital letters, e.g. AUD, NZD, USD)"
    return None


def _how_to_set(mapping: Mapping, problems: list[str]) -> str:
    names = list(mapping.source.required_settings)
    flags = " ".join(f"--set {n}={_EXAMPLES.get(mapping.source.required_settings[n].kind, '...')}" for n in names)
    variables = ", ".join(env_name(mapping.slug, n) for n in names)
    where = (f", or a {SETTINGS_FILE} in the export folder (`{names[0]}: ...`)" if mapping.source.kind == "files"
             else "")
    return (f"{mapping.source.label}: {'; '.join(problems)}. The run never guesses these: state them with "
            f"{flags}, or {variables}{where}. Nothing was run.")


__all__ = ["RunSettings", "SettingsMissing", "resolve_settings", "folder_settings", "env_name", "SETTINGS_FILE"]
