"""``--help`` works for the app, every command and every sub-command."""

from __future__ import annotations

from typing import Any

import pytest
import typer

from llama_mapper.cli.main import app

EXPECTED = {
    (),
    ("serve",),
    ("map",),
    ("batch",),
    ("set-threshold",),
    ("show-thresholds",),
    ("validate-config",),
    ("show-config",),
    ("init-config",),
    ("train",),
    ("evaluate",),
    ("taxonomy",),
    ("taxonomy", "labels"),
    ("taxonomy", "migrate-plan"),
    ("taxonomy", "migrate-apply"),
    ("detectors",),
    ("detectors", "lint"),
    ("detectors", "add"),
    ("detectors", "fix"),
    ("auth",),
    ("auth", "create-key"),
    ("auth", "list"),
    ("auth", "rotate-key"),
    ("auth", "revoke"),
    ("db",),
    ("db", "upgrade"),
    ("db", "current"),
    ("audit",),
    ("audit", "verify"),
    ("audit", "export"),
    ("audit", "anchor"),
    ("audit", "projections"),
    ("audit", "rebuild-projections"),
    ("projections",),
    ("projections", "show"),
    ("projections", "rebuild"),
    ("analytics",),
    ("analytics", "sync"),
    ("analytics", "status"),
    ("analytics", "query"),
    ("objects",),
    ("objects", "list"),
    ("objects", "get"),
    ("model",),
    ("model", "list"),
    ("model", "register"),
    ("model", "show"),
    ("model", "promote"),
    ("model", "rollback"),
    ("model", "history"),
    ("model", "export-merged"),
    ("audit", "rewrap"),
    ("audit", "show-metadata"),
    ("retention",),
    ("retention", "run"),
    ("retention", "hold"),
    ("retention", "hold", "set"),
    ("retention", "hold", "release"),
    ("retention", "hold", "list"),
}


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    paths = {prefix}
    # Typer >= 0.16 vendors its own click: duck-type groups instead of isinstance(click.Group).
    for name, sub in (getattr(command, "commands", None) or {}).items():
        paths |= _command_paths(sub, (*prefix, name))
    return paths


ALL_PATHS = sorted(_command_paths(typer.main.get_command(app)))


def test_command_tree_is_the_documented_one():
    assert set(ALL_PATHS) == EXPECTED


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: " ".join(p) or "mapper")
def test_help(cli, path):
    result = cli(*path, "--help")
    assert result.exit_code == 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Usage: mapper" in result.stdout
    if path:
        assert f"mapper {' '.join(path)}" in result.stdout
    assert "--help" in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize("group", [(), ("taxonomy",), ("detectors",)])
def test_groups_without_arguments_show_help(cli, group):
    result = cli(*group)
    # Click's no_args_is_help exits 2 (usage) since 8.2; older versions exit 0.
    assert result.exit_code in (0, 2)
    assert "Usage: mapper" in result.output
    assert "Commands" in result.output


def test_help_lists_every_subcommand(cli):
    top = cli("--help").stdout
    for path in EXPECTED:
        if len(path) == 1:
            assert path[0] in top
    for group in ("taxonomy", "detectors"):
        text = cli(group, "--help").stdout
        for path in EXPECTED:
            if len(path) == 2 and path[0] == group:
                assert path[1] in text
