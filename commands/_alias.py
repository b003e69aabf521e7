"""Drop-in aliases for Heka's original tools (`heka-cat`, `heka-inject`, ...).

Go's `flag` package accepts `-name value`, `-name=value`, `--name value` and `-name` for booleans.
`translate_go_flags` rewrites such an argv into the `--option` form of the matching `heka` subcommand,
so existing scripts keep working.
"""

from __future__ import annotations

import sys
from collections.abc import Collection, Mapping, Sequence


def translate_go_flags(argv: Sequence[str], flag_map: Mapping[str, str],
                       bool_flags: Collection[str] = ()) -> list[str]:
    """Rewrite Go-style flags with `flag_map` (Go flag name -> our option, e.g. "heka" -> "--heka").

    Boolean Go flags (`bool_flags`) also take Go's `-x=true` / `-x=false` forms. Unknown
    single-dash words are passed through with a double dash so Typer can report them. Positional
    arguments and negative numbers are left alone.
    """
    out: list[str] = []
    for arg in argv:
        if arg.startswith("-") and len(arg) > 1 and not _is_number(arg):
            name, sep, value = arg.lstrip("-").partition("=")
            option = flag_map.get(name, f"--{name}")
            if sep and name in bool_flags and value.lower() in ("true", "false", "1", "0", "t", "f"):
                if value.lower() in ("true", "1", "t"):
                    out.append(option)
                continue
            out.append(f"{option}={value}" if sep else option)
        else:
            out.append(arg)
    return out


def _is_number(arg: str) -> bool:
    try:
        float(arg)
    except ValueError:
        return False
    return True


def run_alias(subcommand: Sequence[str], flag_map: Mapping[str, str], argv: Sequence[str] | None = None,
              bool_flags: Collection[str] = ()) -> None:
    """Run `heka <subcommand> <translated argv>` and exit with its code."""
    from .main import main

    args = list(sys.argv[1:] if argv is None else argv)
    main([*subcommand, *translate_go_flags(args, flag_map, bool_flags)])
