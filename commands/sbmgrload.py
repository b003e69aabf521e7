"""`heka sbmgrload` (placeholder: the command is being built; see the issue that owns it)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's command(s) to the `heka` app."""


def alias_main() -> None:
    """Console-script entry point for the Heka-compatible alias (not built yet)."""
    raise SystemExit("this alias is not built yet")
