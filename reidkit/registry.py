"""Lazy plugin registries read from package metadata (entry points).

Five groups: ``reidkit.methods``, ``reidkit.datasets``, ``reidkit.backbones``, and the two a dataset or a
method names in code rather than a user in a config: ``reidkit.exclusions`` (gallery exclusion rules, named
by ``Protocol.exclusion``) and ``reidkit.samplers`` (P x K batch samplers, named by ``EpochPlan.sampler``).
Built-in plugins register
through the same entry points as third-party ones, so nothing is registered by import side effect and
nothing is imported until it is used. A name registered by two distributions raises
:class:`RegistryError` naming both; a plugin that fails to import is reported as broken (``reidkit list``)
without stopping the others.

A name ``family:member`` asks the plugin registered as ``family`` for one of its members: that object has a
``member(name)`` method returning the plugin (the built-in backbone family ``timm`` builds ``timm:<any timm
model>``). Entry-point names cannot hold a ``:`` (setup.cfg reads it as a separator), so families are
registered under the bare prefix.
"""
from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

log = logging.getLogger(__name__)


class RegistryError(LookupError):
    """Unknown, duplicated or broken plugin name."""


@dataclass(frozen=True)
class Entry:
    name: str
    value: str  # "module:attr"
    distribution: str
    load: Callable[[], Any]


def _entry_points(group: str) -> Iterable[metadata.EntryPoint]:
    return metadata.entry_points(group=group)


def _distribution_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None) or "<unknown distribution>"


class Registry:
    """One entry-point group; ``get(name)`` imports the plugin on first use."""

    def __init__(self, group: str, kind: str) -> None:
        self.group = group
        self.kind = kind  # "method", "dataset", "backbone", ...: used in messages
        self._entries: dict[str, Entry] | None = None
        self._loaded: dict[str, Any] = {}
        self._errors: dict[str, str] = {}
        self._duplicates: dict[str, list[str]] = {}

    # discovery ----------------------------------------------------------------------------------------
    def _discover(self) -> dict[str, Entry]:
        if self._entries is None:
            entries: dict[str, Entry] = {}
            for ep in _entry_points(self.group):
                entry = Entry(ep.name, ep.value, _distribution_name(ep), ep.load)
                if ep.name in entries and entries[ep.name].value != ep.value:
                    self._duplicates.setdefault(ep.name, [entries[ep.name].distribution]).append(entry.distribution)
                    continue
                entries.setdefault(ep.name, entry)
            self._entries = entries
        return self._entries

    def refresh(self) -> None:
        """Forget what was discovered and loaded (after installing a plugin in-process)."""
        self._entries = None
        self._loaded.clear()
        self._errors.clear()
        self._duplicates.clear()

    def names(self) -> list[str]:
        return sorted(self._discover())

    def entry(self, name: str) -> Entry:
        entries = self._discover()
        if name not in entries:
            raise RegistryError(self._unknown_message(name, entries))
        return entries[name]

    def _unknown_message(self, name: str, entries: dict[str, Entry]) -> str:
        known = sorted(entries)
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        installed = ", ".join(known) if known else "none"
        return f"{self.kind} '{name}' is not installed{hint} (installed {self.kind}s: {installed})"

    # loading ------------------------------------------------------------------------------------------
    def get(self, name: str) -> Any:
        """The plugin object registered as ``name`` (imported now if needed), or a family's member."""
        if name in self._loaded:
            return self._loaded[name]
        family, sep, member = name.partition(":")
        if sep:
            return self._get_member(name, family, member)
        entry = self.entry(name)
        if name in self._duplicates:
            raise RegistryError(
                f"{self.kind} '{name}' is registered by more than one distribution: "
                f"{' and '.join(self._duplicates[name])}; uninstall one of them"
            )
        try:
            obj = entry.load()
        except Exception as e:  # a broken plugin must not take the others down
            self._errors[name] = f"{type(e).__name__}: {e}"
            raise RegistryError(
                f"{self.kind} '{name}' ({entry.value}, from {entry.distribution}) failed to import: "
                f"{type(e).__name__}: {e}"
            ) from e
        self._loaded[name] = obj
        return obj

    def _get_member(self, name: str, family: str, member: str) -> Any:
        """``family:member``: the member that the family plugin ``family`` returns for ``member``."""
        obj = self.get(family)
        resolve = getattr(obj, "member", None)
        if not callable(resolve):
            raise RegistryError(f"{self.kind} '{family}' is not a family: '{name}' names nothing "
                                f"(use '{family}')")
        if not member:
            raise RegistryError(f"{self.kind} '{name}' names no member: write {family}:<name>")
        try:
            plugin = resolve(member)
        except (KeyError, ValueError) as e:
            raise RegistryError(f"{self.kind} '{name}': {e}") from e
        self._loaded[name] = plugin
        return plugin

    def status(self) -> list[dict[str, str]]:
        """One row per registered name: name, target, distribution, and ``ok`` / ``broken: why``.

        Imports every plugin of the group (that is what ``reidkit list`` is for).
        """
        rows = []
        for name in self.names():
            entry = self.entry(name)
            try:
                self.get(name)
                state = "ok"
            except RegistryError as e:
                state = "duplicate" if name in self._duplicates else "broken"
                state += f": {self._errors.get(name, str(e))}"
            rows.append({"name": name, "target": entry.value, "distribution": entry.distribution, "status": state})
        return rows


METHODS = Registry("reidkit.methods", "method")
DATASETS = Registry("reidkit.datasets", "dataset")
BACKBONES = Registry("reidkit.backbones", "backbone")
#: ``rule(query, gallery) -> bool [Q, G]`` (reidkit.evaluation.protocols)
EXCLUSIONS = Registry("reidkit.exclusions", "exclusion rule")
#: P x K sampler classes (reidkit.data.samplers.PKSampler)
SAMPLERS = Registry("reidkit.samplers", "sampler")

REGISTRIES = {"methods": METHODS, "datasets": DATASETS, "backbones": BACKBONES, "exclusions": EXCLUSIONS,
              "samplers": SAMPLERS}
