"""One Heka Lua sandbox filter on lupa's Lua 5.1 runtime (spec: sandbox-api.md).

`SandboxFilter` owns one `LuaRuntime` (so memory is limited per sandbox), runs the host bootstrap
(`lua_host.lua`, which builds Heka's filter API and strips the globals), loads the script, and
feeds it messages. The message handed to `process_message` stays on the Python side: the script's
`read_message` calls come back here and read the cached `Message`, so a filter that reads nothing
costs one Lua call per message.
"""

from __future__ import annotations

import math
import os
import socket
import time
import uuid as uuidlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import SandboxError
from ..message import Field, Message, ValueType
from . import runtime
from .sketches import BloomFilter, HyperLogLog

TERMINATED_TYPE = "heka.sandbox-terminated"
OUTPUT_TYPE = "heka.sandbox-output"
MAX_ERROR = 255


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-sandbox limits (0 means unlimited), Heka's defaults."""

    memory: int = 8 * 1024 * 1024
    instructions: int = 1_000_000
    output: int = 63 * 1024


def _lua_source(name: str) -> str:
    # next to this module, so the package data rule `*.lua` ships them
    return resources.files("hekacli.sandbox").joinpath(f"lua_{name}").read_text("utf-8")


_HOST_LUA: str | None = None
_CBUF_LUA: str | None = None


def _b(s: str | None) -> bytes:
    return b"" if s is None else s.encode("utf-8", "surrogateescape")


def _s(b: bytes | str) -> str:
    return b.decode("utf-8", "surrogateescape") if isinstance(b, bytes) else str(b)


def _deny_attributes(obj: Any, attr: Any, is_setting: bool) -> Any:
    # Lua code never gets to touch a Python object's attributes (no __class__/__globals__ walks).
    raise AttributeError("access denied")


def _field_value(f: Field, index: int) -> Any:
    if index >= len(f.values):
        return None
    v = f.values[index]
    vt = f.value_type
    if vt == ValueType.STRING:
        return _b(v) if isinstance(v, str) else bytes(v)
    if vt == ValueType.BYTES:
        v = bytes(v) if not isinstance(v, str) else _b(v)
        return v or None
    if vt == ValueType.INTEGER or vt == ValueType.DOUBLE:
        return v
    return bool(v)


def _encode(msg: Message) -> bytes:
    from ..message import encode_message  # provided by the wire area

    return encode_message(msg)


def _decode(data: bytes) -> Message:
    from ..message import decode_message

    return decode_message(data)


class SandboxFilter:
    """A Heka SandboxFilter: load a script, feed it messages and ticks, collect what it injects.

    `on_inject(msg)` receives every message the sandbox injects (sandbox output, injected messages,
    and the `heka.sandbox-terminated` message when it is stopped for an error or a limit).
    """

    def __init__(
        self,
        name: str,
        script_text: str | bytes,
        *,
        config: Mapping[str, Any] | None = None,
        module_dir: str | os.PathLike | None = None,
        limits: Limits | None = None,
        preserve_path: Path | None = None,
        on_inject: Callable[[Message], None] | None = None,
        filename: str | None = None,
        matcher: Any = None,
        max_message_loops: int = 4,
        max_process_inject: int = 1,
        max_timer_inject: int = 10,
        hostname: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.script = script_text.encode("utf-8") if isinstance(script_text, str) else bytes(script_text)
        self.config = dict(config or {})
        self.module_dirs = [d for d in str(module_dir).split(";") if d] if module_dir else []
        self.limits = limits or Limits()
        self.preserve_path = Path(preserve_path) if preserve_path else None
        self.on_inject = on_inject
        self.filename = filename or f"{name}.lua"
        self.matcher = matcher
        self.max_message_loops = max_message_loops
        self.max_process_inject = max_process_inject
        self.max_timer_inject = max_timer_inject
        self.hostname = hostname or socket.gethostname()
        self.log = log
        self.state = "new"  # new | running | terminated | stopped
        self.last_error = ""
        self._rt: Any = None
        self._host: Any = None
        self._msg: Message | None = None
        self._raw: bytes | None = None
        self._loops = 0
        self._next_field = 0
        self._phase = "load"
        self._injected_this_call = 0
        self._outputs: dict[str, tuple[str, str]] = {}
        self._objects: dict[int, Any] = {}
        self._next_handle = 1
        self._field_names: dict[bytes, str] = {}
        self._prefetch: Callable[[Message], list[Any]] | None = None
        self.counters = {"processed": 0, "failures": 0, "injected": 0, "timer_events": 0,
                         "process_ns": 0, "timer_ns": 0}
        self._max_memory = 0

    # -- lifecycle ------------------------------------------------------------------------
    def load(self) -> None:
        """Create the Lua state, run the script's top level, restore preserved data."""
        global _HOST_LUA, _CBUF_LUA
        lua51 = runtime.lua51()
        if _HOST_LUA is None:
            _HOST_LUA, _CBUF_LUA = _lua_source("host.lua"), _lua_source("circular_buffer.lua")
        self._rt = rt = lua51.LuaRuntime(
            encoding=None, register_eval=False, register_builtins=False, unpack_returned_tuples=True,
            attribute_filter=_deny_attributes, max_memory=0,
        )
        py = rt.table_from(self._bridge())
        limits = rt.table_from({b"instructions": self.limits.instructions, b"output": self.limits.output})
        bootstrap = rt.execute("return function(src) return loadstring(src, '=host') end")
        chunk = bootstrap(_HOST_LUA.encode())
        self._host = chunk(py, _CBUF_LUA.encode(), limits)
        self._h_process = self._host[b"process"]
        self._h_timer = self._host[b"timer"]
        if self.limits.memory:
            rt.set_max_memory(self.limits.memory)
        self._phase = "load"
        r = self._call(self._host[b"load"], self.script, b"@" + _b(self.filename))
        kind, err = r[0], (r[1] if len(r) > 1 else None)
        if kind:
            self._close()
            self.state = "terminated"
            self.last_error = _s(err)
            raise SandboxError(self.last_error)
        if self.preserve_path is not None and self.preserve_path.exists():
            self._restore()
        self._phase = "idle"
        self.state = "running"
        self._note_memory()

    def _restore(self) -> None:
        assert self.preserve_path is not None
        text = self.preserve_path.read_bytes()
        self._rt.set_max_memory(0)
        self._phase = "restore"
        try:
            r = self._call(self._host[b"restore"], text)
            kind, err = r[0], (r[1] if len(r) > 1 else None)
        finally:
            if self.limits.memory:
                self._rt.set_max_memory(self.limits.memory)
        if kind:
            self._close()
            self.state = "terminated"
            self.last_error = _s(err)
            raise SandboxError(self.last_error)
        self._max_memory = 0

    def process_message(self, msg: Message, *, raw: bytes | None = None, loops: int = 0) -> int:
        """Run `process_message()` on `msg`; Heka's status: 0 ok, <0 failure, >0 fatal (terminated).

        A Lua error or a limit also terminates the sandbox (status 1); see `.state`/`.last_error`.
        """
        if self.state != "running":
            raise SandboxError(f"sandbox {self.name} is {self.state}")
        self._msg, self._raw, self._loops, self._next_field = msg, raw, loops, 0
        self._phase = "process"
        self._injected_this_call = 0
        t0 = time.perf_counter_ns()
        try:
            if self._prefetch is not None:
                r = self._h_process(*self._prefetch(msg))
            else:
                r = self._h_process()
        except Exception as exc:  # noqa: BLE001 - a LuaError/LuaMemoryError escaping the host's pcall
            r = self._lua_failure(exc)
        finally:
            self._msg = self._raw = None
            self._phase = "idle"
            self.counters["process_ns"] += time.perf_counter_ns() - t0
        self.counters["processed"] += 1
        if r.__class__ is not tuple:
            status = int(r)
            if status == 0:
                self.last_error = ""
                return 0
            errmsg = None
        else:
            kind = r[0]
            if kind == 1:
                self._terminate(_s(r[1]), preserve=False)
                return 1
            if kind == 2:
                self._sync_prefetch()
            status = int(r[1])
            errmsg = r[2] if len(r) > 2 else None
        if status < 0:
            self.counters["failures"] += 1
            if errmsg is not None:
                self.last_error = _s(errmsg)[:MAX_ERROR]
                if self.log:
                    self.log(f"{self.name}: {self.last_error}")
        elif errmsg is not None:
            self.last_error = _s(errmsg)[:MAX_ERROR]
        else:
            self.last_error = ""
        if status > 0:
            self._terminate(self.last_error, preserve=True)
        return status

    def timer_event(self, ns: int) -> None:
        """Run `timer_event(ns)`; a failure terminates the sandbox."""
        if self.state != "running":
            raise SandboxError(f"sandbox {self.name} is {self.state}")
        self._phase = "timer"
        self._injected_this_call = 0
        t0 = time.perf_counter_ns()
        try:
            r = self._call(self._h_timer, float(ns))
        finally:
            self._phase = "idle"
            self.counters["timer_ns"] += time.perf_counter_ns() - t0
        self.counters["timer_events"] += 1
        if r[0]:
            self._terminate(_s(r[1]), preserve=False)

    def stop(self, *, shutdown_timer: bool = False) -> None:
        """Stop the sandbox; with preserve_path, write its globals there (Heka's Destroy)."""
        if self.state != "running":
            self._close()
            return
        if shutdown_timer:
            self.timer_event(time.time_ns())
            if self.state != "running":
                self.last_error = f"FATAL: {self.last_error}"
                return
        self._preserve()
        self._close()
        self.state = "stopped"

    def has_function(self, name: str) -> bool:
        """Whether the script defines the global function `name` (e.g. timer_event)."""
        if self._rt is None:
            return False
        return self._rt.globals()[name.encode()].__class__.__name__ == "_LuaFunction"

    # -- reporting -----------------------------------------------------------------------
    def stats(self) -> dict[str, Any]:
        """Counters and state (JSON-safe), Heka's report fields included."""
        c = self.counters
        n = c["processed"]
        memory = self._memory()
        return {
            "name": self.name,
            "state": self.state,
            "processed": n,
            "failures": c["failures"],
            "injected": c["injected"],
            "timer_events": c["timer_events"],
            "memory": memory,
            "max_memory": max(self._max_memory, memory),
            "memory_limit": self.limits.memory,
            "instruction_limit": self.limits.instructions,
            "output_limit": self.limits.output,
            "process_avg_ns": c["process_ns"] // n if n else 0,
            "timer_avg_ns": c["timer_ns"] // c["timer_events"] if c["timer_events"] else 0,
            "last_error": self.last_error,
            "outputs": sorted(self._outputs),
        }

    def outputs(self) -> dict[str, tuple[str, str]]:
        """The latest payload of each output: name -> (payload_type, text).

        The key is the payload name; a second payload type under the same name (e.g. the `cbufd`
        next to a `cbuf`) is kept as `<name>.<type>`.
        """
        return dict(self._outputs)

    # -- internals -----------------------------------------------------------------------
    def _memory(self) -> int:
        if self._rt is None:
            return 0
        try:
            return int(self._rt.get_memory_used() or 0)
        except Exception:  # noqa: BLE001 - a closed runtime reports nothing
            return 0

    def _note_memory(self) -> None:
        m = self._memory()
        if m > self._max_memory:
            self._max_memory = m

    def _call(self, fn: Any, *args: Any) -> tuple:
        try:
            r = fn(*args)
        except Exception as exc:  # noqa: BLE001 - LuaError/LuaMemoryError from outside the host's pcall
            return self._lua_failure(exc)
        self._note_memory()
        return r if isinstance(r, tuple) else (r,)

    def _lua_failure(self, exc: Exception) -> tuple:
        lua51 = runtime.lua51()
        if isinstance(exc, lua51.LuaMemoryError):
            return (1, self._entry_prefix() + "not enough memory")
        if isinstance(exc, lua51.LuaError):
            text = str(exc).split("\nstack traceback:", 1)[0]
            return (1, (self._entry_prefix() + text)[:MAX_ERROR])
        raise exc

    def _entry_prefix(self) -> str:
        return {"process": "process_message() ", "timer": "timer_event() ", "load": "Init() ",
                "restore": "Init() lsb_restore_global_data "}.get(self._phase, "")

    def _close(self) -> None:
        self._host = self._h_process = self._h_timer = None
        self._objects.clear()
        self._rt = None

    def _preserve(self) -> None:
        if self.preserve_path is None or self._host is None:
            return
        try:
            self._rt.set_max_memory(0)
            r = self._host[b"serialize"]()
            text, err = (r[0], r[1]) if isinstance(r, tuple) else (r, None)
        except runtime.lua51().LuaError as exc:
            text, err = None, str(exc).encode()
        if text is None:
            self.last_error = f"Destroy() {_s(err)}"[:MAX_ERROR]
            if self.log:
                self.log(f"{self.name}: {self.last_error}")
            self.preserve_path.unlink(missing_ok=True)
            return
        self.preserve_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.preserve_path.with_name(self.preserve_path.name + ".tmp")
        # Sandbox state can hold whatever the messages carried: readable by the owner only, and
        # replaced atomically so a crash never leaves half a file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.preserve_path)

    def _terminate(self, reason: str, *, preserve: bool) -> None:
        self.last_error = reason[:MAX_ERROR]
        if preserve:
            self._preserve()
        self._close()
        self.state = "terminated"
        if self.log:
            self.log(f"{self.name}: terminated: {self.last_error}")
        if self.on_inject is not None:
            self.on_inject(terminated_message(self.name, self.last_error, self.hostname))

    # -- the bridge: Python functions the host Lua code calls ------------------------------
    def _bridge(self) -> dict[bytes, Callable[..., Any]]:
        return {
            b"read": self._read,
            b"read_next_field": self._read_next_field,
            b"read_config": self._read_config,
            b"inject_payload": self._inject_payload,
            b"inject_table": self._inject_table,
            b"inject_raw": self._inject_raw,
            b"decode_message": self._decode_message,
            b"module_source": self._module_source,
            b"c_module_path": self._c_module_path,
            b"normal_cdf": lambda x: 0.5 * math.erfc(-float(x) / math.sqrt(2.0)),
            b"hll_new": self._hll_new,
            b"hll_add": lambda h, k: self._objects[h].add(k),
            b"hll_count": lambda h: self._objects[h].count(),
            b"hll_clear": lambda h: self._objects[h].clear(),
            b"hll_bytes": lambda h: self._objects[h].to_bytes(),
            b"hll_fromstring": self._hll_fromstring,
            b"bloom_new": self._bloom_new,
            b"bloom_add": lambda h, k: self._objects[h].add(k),
            b"bloom_query": lambda h, k: self._objects[h].query(k),
            b"bloom_count": lambda h: self._objects[h].count,
            b"bloom_clear": lambda h: self._objects[h].clear(),
            b"bloom_state": self._bloom_state,
            b"bloom_fromstring": self._bloom_fromstring,
            b"free": lambda h: self._objects.pop(h, None) and None,
        }

    def _read(self, var: bytes, fi: Any = 0, ai: Any = 0) -> Any:
        msg = self._msg
        if msg is None:
            return None
        getter = _HEADER_READERS.get(var)
        if getter is not None:
            return getter(self, msg)
        name = self._field_names.get(var)
        if name is None:
            if not (var.startswith(b"Fields[") and var.endswith(b"]")):
                return None
            name = self._field_names[var] = _s(var[7:-1])
        fi = int(fi)
        for f in msg.fields:
            if f.name == name:
                if fi == 0:
                    return _field_value(f, int(ai))
                fi -= 1
        return None

    def _sync_prefetch(self) -> None:
        """Take the variables the script has read so far and pass them with every message."""
        names = self._host[b"prefetch"]()
        if names is None:
            return
        if not isinstance(names, tuple):
            names = (names,)
        self._prefetch = self._extractor(names)

    def _extractor(self, names: tuple[bytes, ...]) -> Callable[[Message], list[Any]]:
        """One function computing all prefetched values of a message in a single pass over its fields."""
        headers: list[tuple[int, Callable[[SandboxFilter, Message], Any]]] = []
        wanted: dict[str, int] = {}
        for i, var in enumerate(names):
            h = _HEADER_READERS.get(var)
            if h is not None:
                headers.append((i, h))
            elif var.startswith(b"Fields[") and var.endswith(b"]"):
                wanted.setdefault(_s(var[7:-1]), i)
        n = len(names)
        nfields = len(wanted)

        def extract(m: Message) -> list[Any]:
            out: list[Any] = [None] * n
            for i, h in headers:
                out[i] = h(self, m)
            if nfields:
                found = 0
                seen = set()
                for f in m.fields:
                    i = wanted.get(f.name)
                    if i is not None and i not in seen:
                        seen.add(i)
                        vals = f.values
                        if vals:
                            v = vals[0]
                            vt = f.value_type
                            if vt == 0 and v.__class__ is str:
                                v = v.encode("utf-8", "surrogateescape")
                            elif vt == 1:
                                v = _b(v) if isinstance(v, str) else bytes(v)
                                v = v or None
                            out[i] = v
                        found += 1
                        if found == nfields:
                            break
            return out

        return extract

    def _read_raw(self) -> bytes | None:
        if self._raw is None and self._msg is not None:
            try:
                self._raw = _encode(self._msg)
            except Exception:  # noqa: BLE001 - unencodable means "no raw bytes"
                return None
        return self._raw

    def _read_next_field(self) -> tuple:
        msg = self._msg
        if msg is None or self._next_field >= len(msg.fields):
            return (None, None, None, None, None)
        f = msg.fields[self._next_field]
        self._next_field += 1
        return (int(f.value_type), _b(f.name), _field_value(f, 0), _b(f.representation), len(f.values))

    def _read_config(self, key: bytes) -> Any:
        v = self.config.get(_s(key))
        if isinstance(v, bool):
            return v
        if isinstance(v, (int, float)):
            return v
        if isinstance(v, str):
            return _b(v)
        if isinstance(v, bytes):
            return v
        return None

    def _check_inject(self) -> str | None:
        """Heka's injection limits; returns the error text or None."""
        if self._phase == "process":
            if self._injected_this_call >= self.max_process_inject:
                return "exceeded InjectMessage count"
            if self._loops + 1 > self.max_message_loops:
                return "exceeded MaxMsgLoops"
        elif self._phase == "timer":
            if self._injected_this_call >= self.max_timer_inject:
                return "exceeded InjectMessage count"
        return None

    def _deliver(self, msg: Message) -> str | None:
        if self._phase in ("load", "restore"):
            return None  # Heka sends injections made during load to a logging stub
        if self.matcher is not None and self.matcher.match_message(msg):
            return "creates a circular reference (matches this plugin's message_matcher)"
        self._injected_this_call += 1
        self.counters["injected"] += 1
        if self.on_inject is not None:
            self.on_inject(msg)
        return None

    def _inject_payload(self, ptype: bytes, pname: bytes, payload: bytes) -> bytes | None:
        err = self._check_inject()
        if err:
            return err.encode()
        t, n, text = _s(ptype), _s(pname), _s(payload)
        msg = Message.new(type=OUTPUT_TYPE, logger=self.name, payload=text, hostname=self.hostname,
                          pid=os.getpid())
        msg.fields.append(Field("payload_type", ValueType.STRING, "file-extension", [t]))
        msg.fields.append(Field("payload_name", ValueType.STRING, "", [n]))
        err = self._deliver(msg)
        if err:
            return err.encode()
        if self._phase not in ("load", "restore"):
            key = n
            if key in self._outputs and self._outputs[key][0] != t:
                key = f"{n}.{t}"
            self._outputs[key] = (t, text)
        return None

    def _finish_injected(self, msg: Message) -> bytes | None:
        msg.type = "heka.sandbox." + (msg.type or "")
        msg.logger = self.name
        msg.hostname = self.hostname
        err = self._deliver(msg)
        return err.encode() if err else None

    def _inject_table(self, flat: Any) -> bytes | None:
        err = self._check_inject()
        if err:
            return err.encode()
        ts = flat[b"Timestamp"]
        if ts is None:
            ts = int(time.time()) * 1_000_000_000
        else:
            ts = int(ts) % (1 << 64)
            if ts >= 1 << 63:
                ts -= 1 << 64
        uid = flat[b"Uuid"]
        msg = Message(
            uuid=bytes(uid) if uid is not None else uuidlib.uuid4().bytes,
            timestamp=ts,
            type=_s(flat[b"Type"]) if flat[b"Type"] is not None else None,
            payload=_s(flat[b"Payload"]) if flat[b"Payload"] is not None else None,
            env_version=_s(flat[b"EnvVersion"]) if flat[b"EnvVersion"] is not None else None,
            severity=int(flat[b"Severity"]) if flat[b"Severity"] is not None else None,
            pid=int(flat[b"Pid"]) if flat[b"Pid"] is not None else None,
        )
        fields = flat[b"Fields"]
        for i in range(1, len(fields) + 1):
            name, vt, rep, values = fields[i][1], int(fields[i][2]), fields[i][3], fields[i][4]
            vals = [values[j] for j in range(1, len(values) + 1)]
            if vt == ValueType.STRING:
                vals = [_s(v) for v in vals]
            elif vt == ValueType.BYTES:
                vals = [v if isinstance(v, bytes) else _b(str(v)) for v in vals]
            elif vt == ValueType.INTEGER:
                vals = [int(v) for v in vals]
            elif vt == ValueType.DOUBLE:
                vals = [float(v) for v in vals]
            else:
                vals = [bool(v) for v in vals]
            msg.fields.append(Field(_s(name), ValueType(vt), _s(rep), vals))
        if self.limits.output:
            try:
                size = len(_encode(msg))
            except ImportError:
                size = 0
            except Exception as exc:  # noqa: BLE001 - reported to the script as Heka does
                return f"could not encode protobuf - {exc}".encode()
            if size >= self.limits.output:
                return b"output_limit exceeded"
        return self._finish_injected(msg)

    def _inject_raw(self, data: bytes) -> bytes | None:
        err = self._check_inject()
        if err:
            return err.encode()
        try:
            msg = _decode(bytes(data))
        except Exception:  # noqa: BLE001 - any parse failure is Heka's unmarshal failure
            return b"protobuf unmarshal failed"
        return self._finish_injected(msg)

    def _decode_message(self, data: bytes) -> tuple:
        if len(data) < 20:
            return None, b"invalid message, too short"
        try:
            msg = _decode(bytes(data))
        except Exception as exc:  # noqa: BLE001 - the text goes back to the script
            return None, _b(getattr(exc, "message", None) or str(exc))
        if msg.uuid is None or msg.timestamp is None:
            uuid_state = "found" if msg.uuid is not None else "not found"
            ts_state = "found" if msg.timestamp is not None else "not found"
            return None, _b(f"missing required field uuid: {uuid_state} timestamp: {ts_state}")
        t: dict[bytes, Any] = {b"Uuid": bytes(msg.uuid), b"Timestamp": msg.timestamp}
        for key, attr in ((b"Type", "type"), (b"Logger", "logger"), (b"Payload", "payload"),
                          (b"EnvVersion", "env_version"), (b"Hostname", "hostname")):
            v = getattr(msg, attr)
            if v is not None:
                t[key] = _b(v)
        if msg.severity is not None:
            t[b"Severity"] = msg.severity
        if msg.pid is not None:
            t[b"Pid"] = msg.pid
        fields = []
        for f in msg.fields:
            e: dict[bytes, Any] = {b"name": _b(f.name), b"value_type": int(f.value_type)}
            if f.representation:
                e[b"representation"] = _b(f.representation)
            vals = [_b(v) if isinstance(v, str) else v for v in f.values]
            e[b"value"] = self._rt.table_from(vals)
            fields.append(self._rt.table_from(e))
        if fields:
            t[b"Fields"] = self._rt.table_from(fields)
        return self._rt.table_from(t), None

    def _module_source(self, name: bytes) -> tuple:
        rel = _s(name).replace(".", "/")
        tried = []
        for d in self.module_dirs:
            p = Path(d) / f"{rel}.lua"
            if p.is_file():
                return p.read_bytes(), _b(str(p))
            tried.append(f"\n\tno file '{p}'")
            tried.append(f"\n\tno file '{Path(d) / (rel + '.so')}'")
        if rel == "re":
            p = runtime.system_lua_module("re")
            if p is not None:
                return p.read_bytes(), _b(str(p))
        return None, _b(f"module '{_s(name)}' not found:" + "".join(tried))

    def _c_module_path(self, name: bytes) -> tuple:
        path, symbol = runtime.c_module_path(_s(name))
        return (_b(path) if path else None), _b(symbol)

    def _handle(self, obj: Any) -> int:
        h = self._next_handle
        self._next_handle += 1
        self._objects[h] = obj
        return h

    def _hll_new(self) -> tuple:
        return self._handle(HyperLogLog()), None

    def _hll_fromstring(self, h: int, data: bytes) -> tuple:
        try:
            self._objects[h].from_bytes(bytes(data))
        except ValueError as exc:
            return None, _b(str(exc))
        return True, None

    def _bloom_new(self, items: float, p: float) -> tuple:
        bf = BloomFilter(float(items), float(p))
        if self.limits.memory and len(bf.data) > self.limits.memory:
            return None, b"not enough memory"
        return self._handle(bf), None

    def _bloom_state(self, h: int) -> tuple:
        bf = self._objects[h]
        return bf.items, bf.probability, bf.count, bytes(bf.data)

    def _bloom_fromstring(self, h: int, data: bytes, count: float) -> tuple:
        try:
            self._objects[h].from_bytes(bytes(data), int(count))
        except ValueError as exc:
            return None, _b(str(exc))
        return True, None


def _uuid_text(msg: Message) -> bytes:
    return msg.uuid_string.encode()


_HEADER_READERS: dict[bytes, Callable[[SandboxFilter, Message], Any]] = {
    b"Type": lambda s, m: _b(m.type),
    b"Logger": lambda s, m: _b(m.logger),
    b"Payload": lambda s, m: _b(m.payload),
    b"EnvVersion": lambda s, m: _b(m.env_version),
    b"Hostname": lambda s, m: _b(m.hostname),
    b"Uuid": lambda s, m: _uuid_text(m),
    b"Timestamp": lambda s, m: float(m.timestamp or 0),
    b"Severity": lambda s, m: m.severity,
    b"Pid": lambda s, m: m.pid,
    b"raw": lambda s, m: s._read_raw(),
}


def terminated_message(name: str, reason: str, hostname: str | None = None) -> Message:
    """A `heka.sandbox-terminated` message as Heka sends it when a sandbox is stopped."""
    msg = Message.new(type=TERMINATED_TYPE, logger="hekad", payload=reason,
                      hostname=hostname or socket.gethostname(), pid=os.getpid())
    msg.add_field("plugin", name)
    return msg
