"""The Lua 5.1 sandbox host (lupa): Heka's filter API, circular buffers, limits, the manager."""
