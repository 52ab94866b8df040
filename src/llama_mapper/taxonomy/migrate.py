"""Move labels and packs from one taxonomy version to the next.

``mapper taxonomy migrate-plan`` shows, for every label of the old version, what it becomes;
``migrate-apply`` rewrites pack targets accordingly. The plan is data, not code, so that a
person can read it, correct it by hand and feed it back: a hand-made entry wins over
everything the planner infers. Nothing here touches files; the CLI does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal, get_args

from llama_mapper.packs.model import DetectorPack
from llama_mapper.taxonomy.model import Label, Taxonomy
from llama_mapper.taxonomy.normalize import normalize_label

ChangeKind = Literal["kept", "renamed", "rolled_up", "removed"]
CHANGE_KINDS: tuple[ChangeKind, ...] = get_args(ChangeKind)

#: Labels that kept their 2025.09 name while their meaning moved. A rename is easy to see in
#: a plan; a change of meaning under the same name is not, and silently keeps packs that
#: relied on the old meaning emitting the wrong finding.
SEMANTIC_NOTES_2025_09: dict[str, str] = {
    "HARM.VIOLENCE.Sexual": (
        "in 2025.09 it meant sexual violence or sexual assault; in 2026.11 it means sexual "
        "content in general, and sexual crimes are HARM.CRIME.SexCrime"
    ),
    "SECRET.APIKey": (
        "in 2025.09 it covered API keys and tokens; in 2026.11 bearer, OAuth and session "
        "tokens are SECRET.AccessToken"
    ),
}
_NOTES_BY_VERSION: dict[str, dict[str, str]] = {"2025.09": SEMANTIC_NOTES_2025_09}


class MigrationError(ValueError):
    """A plan or a hand-made mapping cannot be used; the message says which entry and why."""


@dataclass(frozen=True, slots=True)
class LabelChange:
    old: str
    new: str | None
    kind: ChangeKind
    reason: str
    #: Why a reviewer should look at packs using this label although its name may be unchanged.
    note: str = ""


@dataclass(frozen=True)
class MigrationPlan:
    from_version: str
    to_version: str
    changes: tuple[LabelChange, ...]
    added: tuple[str, ...]

    @property
    def notes(self) -> tuple[str, ...]:
        return tuple(f"{change.old}: {change.note}" for change in self.changes if change.note)

    def renames(self) -> dict[str, str]:
        return {
            change.old: change.new
            for change in self.changes
            if change.new is not None and change.kind in ("renamed", "rolled_up")
        }

    def to_dict(self) -> dict[str, Any]:
        counts = Counter(change.kind for change in self.changes)
        changes: list[dict[str, Any]] = []
        for change in self.changes:
            entry: dict[str, Any] = {
                "old": change.old,
                "new": change.new,
                "kind": change.kind,
                "reason": change.reason,
            }
            if change.note:
                entry["note"] = change.note
            changes.append(entry)
        return {
            "from_version": self.from_version,
            "to_version": self.to_version,
            "summary": {kind: counts[kind] for kind in CHANGE_KINDS},
            "notes": list(self.notes),
            "changes": changes,
            "added": list(self.added),
        }


def plan_migration(
    old: Taxonomy, new: Taxonomy, explicit: Mapping[str, str] | None = None
) -> MigrationPlan:
    """What each label of ``old`` becomes in ``new``.

    ``explicit`` (old label -> new label, usually read back from an edited plan) wins where
    it differs from what the rules infer; where it agrees, the inferred entry is kept so
    that a plan fed back unchanged yields the same plan.
    """
    explicit = dict(explicit or {})
    _check_explicit(explicit, old, new)
    notes = _NOTES_BY_VERSION.get(old.version, {})
    changes: list[LabelChange] = []
    for name in sorted(old.labels):
        change = _infer(old.labels[name], new)
        chosen = explicit.get(name)
        if chosen is not None and chosen != change.new:
            change = LabelChange(name, chosen, "renamed", "mapped by hand in the plan")
        changes.append(_with_note(change, old.labels[name], new, notes.get(name, "")))
    added = tuple(sorted(name for name in new.labels if name not in old.labels))
    return MigrationPlan(old.version, new.version, tuple(changes), added)


def _check_explicit(explicit: Mapping[str, str], old: Taxonomy, new: Taxonomy) -> None:
    problems = [
        f"{source!r} is not a {old.version} label" for source in explicit if source not in old
    ]
    problems += [
        f"{source} -> {target!r}: {target!r} is not a {new.version} label"
        for source, target in explicit.items()
        if new.resolve(target) is None
    ]
    if problems:
        raise MigrationError("; ".join(problems))


def _infer(label: Label, new: Taxonomy) -> LabelChange:
    name = label.name
    if name in new:
        return LabelChange(name, name, "kept", f"same name in {new.version}")
    by_name = new.lookup_alias(normalize_label(name))
    if by_name is not None:
        if normalize_label(by_name) == normalize_label(name):
            return LabelChange(name, by_name, "renamed", f"spelled {by_name} in {new.version}")
        return LabelChange(name, by_name, "renamed", f"listed as an alias of {by_name}")
    hits = {alias: new.lookup_alias(normalize_label(alias)) for alias in label.aliases}
    found = {alias: target for alias, target in hits.items() if target is not None}
    targets = sorted(set(found.values()))
    if len(targets) == 1:
        alias = next(iter(found))
        reason = f"its alias {alias!r} is an alias of {targets[0]} in {new.version}"
        return LabelChange(name, targets[0], "renamed", reason)
    ambiguity = f"; its aliases point to {', '.join(targets)}" if targets else ""
    ancestor = new.resolve(name)
    if ancestor is not None:
        reason = f"{ancestor} is its nearest ancestor in {new.version}{ambiguity}"
        return LabelChange(name, ancestor, "rolled_up", reason)
    reason = f"no label, alias or ancestor in {new.version}{ambiguity}"
    return LabelChange(name, None, "removed", reason)


def _with_note(change: LabelChange, label: Label, new: Taxonomy, written: str) -> LabelChange:
    """Attach what a reviewer must know: a written note, and old aliases that moved elsewhere.

    An old alias that now belongs to another label is the mechanical trace of a narrowed
    meaning, so it is reported even for migrations nobody wrote notes for.
    """
    if change.new is None:
        return change
    moved: dict[str, list[str]] = {}
    for alias in label.aliases:
        owner = new.lookup_alias(normalize_label(alias))
        if owner is not None and owner != change.new:
            moved.setdefault(owner, []).append(repr(alias))
    parts = [written] if written else []
    for owner, aliases in sorted(moved.items()):
        noun, verb = ("alias", "belongs") if len(aliases) == 1 else ("aliases", "belong")
        parts.append(f"its old {noun} {', '.join(aliases)} now {verb} to {owner}")
    if not parts:
        return change
    reason = f"{change.reason}, but its meaning changed (see note)"
    return replace(change, reason=reason, note="; ".join(parts))


def apply_to_pack(pack: DetectorPack, plan: MigrationPlan) -> tuple[DetectorPack, list[str]]:
    """Rewrite ``pack``'s targets by ``plan``; the lines say what changed or needs a person.

    A target finer than an old label (``OLD.Sub``) follows its parent: a rename keeps the
    refinement, a roll-up drops it because the parent it refined no longer exists. Labels
    the new version added are left alone even below an old name: they are already current.
    The same ``pack`` object comes back when nothing was rewritten, so callers can tell
    whether to write a file.
    """
    by_old = {change.old: change for change in plan.changes}
    added = frozenset(plan.added)
    maps: dict[str, tuple[str, ...]] = {}
    lines: list[str] = []
    for key, targets in pack.maps.items():
        rewritten: list[str] = []
        for target in targets:
            found = None if target in added else _governing_change(target, by_old)
            successor = target
            if found is not None:
                change, suffix = found
                successor = _successor(target, change, suffix)
                if change.kind == "removed":
                    lines.append(f"{key}: {target} has no successor; edit by hand")
                elif successor != target:
                    lines.append(f"{key}: {target} -> {successor}")
                if change.note:
                    lines.append(f"{key}: review {successor}: {change.note}")
            rewritten.append(successor)
        maps[key] = tuple(dict.fromkeys(rewritten))
    if maps == dict(pack.maps):
        return pack, lines
    return replace(pack, maps=maps), lines


def _governing_change(
    target: str, by_old: Mapping[str, LabelChange]
) -> tuple[LabelChange, str] | None:
    """The change for ``target`` or for its nearest old ancestor, with the remaining suffix."""
    candidate = target
    while True:
        change = by_old.get(candidate)
        if change is not None:
            return change, target[len(candidate) :]
        if "." not in candidate:
            return None
        candidate = candidate.rsplit(".", 1)[0]


def _successor(target: str, change: LabelChange, suffix: str) -> str:
    if change.new is None or change.kind == "kept":
        return target
    if change.kind == "rolled_up":
        return change.new
    return change.new + suffix


def plan_from_dict(data: Any, source: str = "plan") -> MigrationPlan:
    """Read back what :meth:`MigrationPlan.to_dict` wrote (``migrate-apply`` takes a plan file)."""
    if not isinstance(data, Mapping):
        raise MigrationError(f"{source}: a plan must be a mapping")
    for field_name in ("from_version", "to_version", "changes"):
        if field_name not in data:
            raise MigrationError(f"{source}: missing {field_name}")
    if not isinstance(data["changes"], list):
        raise MigrationError(f"{source}: 'changes' must be a list")
    changes = tuple(_change_from_dict(entry, source) for entry in data["changes"])
    added = data.get("added") or []
    if not isinstance(added, list) or not all(isinstance(name, str) for name in added):
        raise MigrationError(f"{source}: 'added' must be a list of labels")
    return MigrationPlan(str(data["from_version"]), str(data["to_version"]), changes, tuple(added))


def _change_from_dict(entry: Any, source: str) -> LabelChange:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("old"), str):
        raise MigrationError(f"{source}: each change needs an 'old' label")
    old, new, kind = entry["old"], entry.get("new"), entry.get("kind")
    if new is not None and not isinstance(new, str):
        raise MigrationError(f"{source}: {old}: 'new' must be a label or null")
    if kind not in CHANGE_KINDS:
        raise MigrationError(f"{source}: {old}: kind must be one of {', '.join(CHANGE_KINDS)}")
    if (new is None) != (kind == "removed"):
        raise MigrationError(f"{source}: {old}: only a removed label has no 'new' label")
    return LabelChange(old, new, kind, str(entry.get("reason", "")), str(entry.get("note", "")))


def explicit_mapping(data: Any, source: str = "mapping") -> dict[str, str]:
    """Hand-made renames for :func:`plan_migration`, from a plan file or a flat ``old: new`` map.

    From a plan file every entry that names a successor counts, so a person fixes a
    ``removed`` entry by filling in ``new`` and re-running ``migrate-plan``.
    """
    if isinstance(data, Mapping) and "changes" in data:
        entries = data["changes"]
        if not isinstance(entries, list):
            raise MigrationError(f"{source}: 'changes' must be a list")
        pairs = [
            (entry.get("old"), entry.get("new"))
            for entry in entries
            if isinstance(entry, Mapping) and entry.get("new") is not None
        ]
    elif isinstance(data, Mapping):
        pairs = list(data.items())
    else:
        raise MigrationError(f"{source}: expected a plan or a mapping of old label to new label")
    mapping: dict[str, str] = {}
    for old, new in pairs:
        if not isinstance(old, str) or not isinstance(new, str):
            raise MigrationError(f"{source}: {old!r} -> {new!r}: both sides must be labels")
        mapping[old] = new
    return mapping
