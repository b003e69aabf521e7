"""Importing lupa's Lua 5.1 runtime so the Debian C modules (cjson, lpeg) can be loaded into it.

Debian's ``cjson.so`` and ``lpeg.so`` are not linked against a Lua library: they expect the Lua C
API symbols (``lua_checkstack`` ...) to be global in the process. lupa's ``lua51`` extension is
loaded by Python with RTLD_LOCAL, so loading ``cjson.so`` fails with ``undefined symbol:
lua_checkstack`` (measured on this machine). Importing it with RTLD_GLOBAL, or re-opening the
already loaded extension with RTLD_GLOBAL | RTLD_NOLOAD when something imported it first, makes the
symbols global and both modules load.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path
from types import ModuleType

# Where Debian (and a plain `make install`) put Lua 5.1 C modules and Lua modules.
C_MODULE_DIRS = (
    "/usr/lib/x86_64-linux-gnu/lua/5.1",
    "/usr/lib/aarch64-linux-gnu/lua/5.1",
    "/usr/lib/lua/5.1",
    "/usr/local/lib/lua/5.1",
)
LUA_MODULE_DIRS = ("/usr/share/lua/5.1", "/usr/local/share/lua/5.1")
# Which Debian package provides each C module, for the error text.
C_MODULE_PACKAGES = {"cjson": "lua-cjson", "lpeg": "lua-lpeg"}

_lua51: ModuleType | None = None
_global_symbols = False


def lua51() -> ModuleType:
    """The `lupa.lua51` module, with its Lua C API symbols made global (once per process)."""
    global _lua51, _global_symbols
    if _lua51 is not None:
        return _lua51
    already = "lupa.lua51" in sys.modules
    flags = sys.getdlopenflags()
    if not already:
        sys.setdlopenflags(flags | os.RTLD_GLOBAL)
    try:
        import lupa.lua51 as mod
    finally:
        sys.setdlopenflags(flags)
    try:
        # Promote to global if someone imported it before us (a no-op otherwise).
        ctypes.CDLL(mod.__file__, mode=os.RTLD_GLOBAL | os.RTLD_NOLOAD | os.RTLD_NOW)
        _global_symbols = True
    except OSError:
        _global_symbols = not already
    _lua51 = mod
    return mod


def c_module_path(name: str) -> tuple[str | None, str]:
    """(path of `<name>.so`, its `luaopen_` symbol) or (None, an error text saying what to install)."""
    lua51()
    for d in C_MODULE_DIRS:
        p = Path(d) / f"{name}.so"
        if p.is_file():
            if not _global_symbols:
                return None, f"module '{name}' cannot be loaded: lupa's Lua symbols are not global"
            return str(p), f"luaopen_{name}"
    pkg = C_MODULE_PACKAGES.get(name, f"lua-{name}")
    return None, (f"module '{name}' not available: {name}.so not found in "
                  f"{', '.join(C_MODULE_DIRS[:1])} (install the Debian package {pkg})")


def system_lua_module(name: str) -> Path | None:
    """A Lua module shipped with a Debian C module (lpeg's `re.lua`), or None."""
    for d in LUA_MODULE_DIRS:
        p = Path(d) / f"{name}.lua"
        if p.is_file():
            return p
    return None
