-- The host side of one Heka sandbox, run once in a fresh lupa lua51 runtime before the script.
--
-- It captures everything it needs as locals (upvalues the script cannot reach: `debug` is not
-- offered), builds Heka's filter API on top of the Python bridge `py`, then strips the global table
-- down to what Heka's sandbox exposes. The script and the host share that one global table, so
-- getfenv(0) gives the script nothing it could not already see.
--
-- Called as: host = chunk(py, cbuf_src, limits); returns the table of entry points Python uses.
local py, cbuf_src, limits = ...

local G = _G
local type, pairs, ipairs, next, select, error, pcall, tostring, tonumber, setmetatable, getmetatable =
  type, pairs, ipairs, next, select, error, pcall, tostring, tonumber, setmetatable, getmetatable
local rawget, rawset, unpack, setfenv, getfenv = rawget, rawset, unpack, setfenv, getfenv
local loadstring, newproxy = loadstring, newproxy
local string, table, math, os = string, table, math, os
local sformat, ssub, sbyte, sgsub, sfind, srep = string.format, string.sub, string.byte, string.gsub,
  string.find, string.rep
local tconcat, tinsert = table.concat, table.insert
local floor, huge = math.floor, math.huge
local sethook = debug.sethook
local collect = collectgarbage
local loadlib = package.loadlib
local pkg_loaded = package.loaded

local instruction_limit = limits.instructions
local output_limit = limits.output  -- at most output_limit - 1 bytes fit (0: unlimited)

-- ---------------------------------------------------------------------------------------------
-- Number text (spec 3.1): not Lua's %.14g.
local function fmtnum(d)
  if d ~= d then return "nan" end
  if d == huge then return "inf" end
  if d == -huge then return "-inf" end
  if d > 2147483647 or d < -2147483647 then return sformat("%0.17g", d) end
  local neg = d < 0
  if neg then d = -d end
  local number = floor(d)
  local tmp = (d - number) * 1e8
  local fraction = floor(tmp)
  local diff = tmp - fraction
  if diff > 0.5 or (diff == 0.5 and (fraction == 0 or fraction % 2 == 1)) then
    fraction = fraction + 1
    if fraction >= 1e8 then
      fraction = 0
      number = number + 1
    end
  end
  local s = sformat("%d", number)
  if fraction ~= 0 then
    s = s .. "." .. (sgsub(sformat("%08d", fraction), "0+$", ""))
  end
  if neg then s = "-" .. s end
  return s
end

-- ---------------------------------------------------------------------------------------------
-- Userdata objects (circular_buffer, hyperloglog, bloom_filter): zero-size proxies whose state the
-- host keeps in weak tables, so `type(x)` is "userdata" exactly as with Heka's C modules.
local KIND = setmetatable({}, {__mode = "k"})     -- proxy -> "cbuf" | "hll" | "bloom"
local OUTPUT = {}                                 -- kind -> function(proxy) -> text
local SERIALIZE = {}                              -- kind -> function(proxy, path, lines)

local function new_class(tname, methods)
  local proto = newproxy(true)
  local mt = getmetatable(proto)
  mt.__index = methods
  mt.__tostring = function(u) return tname end
  return function(kind)
    local u = newproxy(proto)
    KIND[u] = kind
    return u
  end, mt
end

local function argerror(n, fname, msg)
  error(sformat("bad argument #%d to '%s' (%s)", n, fname, msg), 0)
end

local host_env = {
  py = py, fmtnum = fmtnum, KIND = KIND, OUTPUT = OUTPUT, SERIALIZE = SERIALIZE, new_class = new_class,
  argerror = argerror, math = math, string = string, table = table, type = type, error = error,
  select = select, setmetatable = setmetatable, pairs = pairs, next = next, tostring = tostring,
  tonumber = tonumber, sformat = sformat, floor = floor, huge = huge,
}

local cbuf_chunk = assert(loadstring(cbuf_src, "=circular_buffer"))
setfenv(cbuf_chunk, host_env)
local circular_buffer = cbuf_chunk()

-- hyperloglog and bloom_filter keep their registers in Python (64/32-bit hashing).
local HID = setmetatable({}, {__mode = "k"})  -- proxy -> python handle
local hll_methods, bloom_methods = {}, {}
local new_hll_proxy, hll_mt = new_class("lsb.hyperloglog", hll_methods)
local new_bloom_proxy, bloom_mt = new_class("lsb.bloom_filter", bloom_methods)
local gc_hook = function(u) local h = HID[u]; if h then py.free(h) end end
hll_mt.__gc = gc_hook
bloom_mt.__gc = gc_hook

local function checkself(u, kind, fname)
  if KIND[u] ~= kind then argerror(1, fname, "lsb." .. (kind == "hll" and "hyperloglog" or "bloom_filter") ..
    " expected") end
  return HID[u]
end

local function py_result(r, e)
  if e then error(e, 0) end
  return r
end

local function keyarg(k, fname)
  local t = type(k)
  if t == "string" then return k end
  if t == "number" then return k end
  argerror(1, fname, "must be a string or number")
end

local hyperloglog = {
  new = function(...)
    if select("#", ...) ~= 0 then argerror(0, "new", "incorrect number of arguments") end
    local h = py_result(py.hll_new())
    local u = new_hll_proxy("hll")
    HID[u] = h
    return u
  end,
}
function hll_methods.add(u, ...)
  local h = checkself(u, "hll", "add")
  if select("#", ...) ~= 1 then argerror(-1, "add", "incorrect number of arguments") end
  return py.hll_add(h, keyarg((...), "add"))
end
function hll_methods.count(u)
  return py.hll_count(checkself(u, "hll", "count"))
end
function hll_methods.clear(u)
  py.hll_clear(checkself(u, "hll", "clear"))
end
function hll_methods.fromstring(u, s)
  local h = checkself(u, "hll", "fromstring")
  if type(s) ~= "string" then argerror(1, "fromstring", "string expected, got " .. type(s)) end
  py_result(py.hll_fromstring(h, s))
end
OUTPUT.hll = function(u) return py.hll_bytes(HID[u]) end
local function escape_bytes(s)
  return (sgsub(s, '[%z\n\r"\\]', function(c)
    if c == "\n" then return "\\n" elseif c == "\r" then return "\\r" elseif c == "\0" then return "\\000" end
    return "\\" .. c
  end))
end
SERIALIZE.hll = function(u, path, lines)
  lines[#lines + 1] = sformat("if %s == nil then %s = hyperloglog.new() end", path, path)
  lines[#lines + 1] = path .. ':fromstring("' .. escape_bytes(py.hll_bytes(HID[u])) .. '")'
end

local bloom_filter = {
  new = function(...)
    if select("#", ...) ~= 2 then argerror(0, "new", "incorrect number of arguments") end
    local items, p = ...
    if type(items) ~= "number" then argerror(1, "new", "number expected, got " .. type(items)) end
    if type(p) ~= "number" then argerror(2, "new", "number expected, got " .. type(p)) end
    if items <= 1 then argerror(1, "new", "items must be > 1") end
    if not (p > 0 and p < 1) then argerror(2, "new", "probability must be between 0 and 1") end
    local h = py_result(py.bloom_new(items, p))
    local u = new_bloom_proxy("bloom")
    HID[u] = h
    return u
  end,
}
function bloom_methods.add(u, ...)
  local h = checkself(u, "bloom", "add")
  if select("#", ...) ~= 1 then argerror(-1, "add", "incorrect number of arguments") end
  return py.bloom_add(h, keyarg((...), "add"))
end
function bloom_methods.query(u, ...)
  local h = checkself(u, "bloom", "query")
  if select("#", ...) ~= 1 then argerror(-1, "query", "incorrect number of arguments") end
  return py.bloom_query(h, keyarg((...), "query"))
end
function bloom_methods.count(u) return py.bloom_count(checkself(u, "bloom", "count")) end
function bloom_methods.clear(u) py.bloom_clear(checkself(u, "bloom", "clear")) end
function bloom_methods.fromstring(u, s, count)
  local h = checkself(u, "bloom", "fromstring")
  if type(s) ~= "string" then argerror(1, "fromstring", "string expected, got " .. type(s)) end
  py_result(py.bloom_fromstring(h, s, tonumber(count) or 0))
end
SERIALIZE.bloom = function(u, path, lines)
  local items, p, count, bits = py.bloom_state(HID[u])
  lines[#lines + 1] = sformat("if %s == nil then %s = bloom_filter.new(%s, %s) end", path, path,
    sformat("%.17g", items), sformat("%.17g", p))
  lines[#lines + 1] = path .. ':fromstring("' .. escape_bytes(bits) .. '", ' .. sformat("%d", count) .. ")"
end

-- ---------------------------------------------------------------------------------------------
-- The output buffer shared by add_to_payload / inject_payload / inject_message (spec 3).
local buf, buf_n, buf_len = {}, 0, 0

local function buf_reset() buf, buf_n, buf_len = {}, 0, 0 end

local function buf_put(s, level)
  local l = #s
  if output_limit > 0 and buf_len + l >= output_limit then
    error("output_limit exceeded", level)
  end
  buf_n = buf_n + 1
  buf[buf_n] = s
  buf_len = buf_len + l
end

local function output_value(v, i, fname, level)
  local t = type(v)
  if t == "string" then buf_put(v, level)
  elseif t == "number" then buf_put(fmtnum(v), level)
  elseif t == "nil" then buf_put("nil", level)
  elseif t == "boolean" then buf_put(v and "true" or "false", level)
  elseif t == "userdata" then
    local f = OUTPUT[KIND[v]]
    if not f then argerror(i, fname, "unknown userdata type") end
    buf_put(f(v), level)
  else
    buf_put("(unsupported type)", level)
  end
end

local function add_to_payload(...)
  local n = select("#", ...)
  if n == 0 then argerror(0, "add_to_payload", "must have at least one argument") end
  for i = 1, n do
    output_value((select(i, ...)), i, "add_to_payload", 4)
  end
end

-- ---------------------------------------------------------------------------------------------
-- Entry-point state.
local phase = "load"        -- load | process | timer | restore | idle
local limit_hit = false

local function inject_payload(...)
  local n = select("#", ...)
  local ptype, pname = ...
  if n >= 1 and type(ptype) ~= "string" then
    argerror(1, "inject_payload", "string expected, got " .. type(ptype))
  end
  if n >= 2 and type(pname) ~= "string" then
    argerror(2, "inject_payload", "string expected, got " .. type(pname))
  end
  if ptype == nil or ptype == "" then ptype = "txt" end
  pname = pname or ""
  for i = 3, n do
    output_value((select(i, ...)), i, "inject_payload", 4)
  end
  if buf_len == 0 then return end
  local payload = tconcat(buf, "", 1, buf_n)
  buf_reset()
  local err = py.inject_payload(ptype, pname, payload)
  if err then error("inject_payload() " .. err, 0) end
end

-- inject_message(table): validate and flatten into the plain shape Python encodes.
local HEADER_STR = {"Type", "Logger", "Payload", "EnvVersion", "Hostname"}
local VT_NAMES = {[0] = "string", [1] = "bytes", [2] = "integer", [3] = "double", [4] = "bool"}

local function enc_error(msg) error("inject_message() could not encode protobuf - " .. msg, 0) end

local function scalar_type(v, vt)
  -- returns the value type of one value given an optional explicit value_type
  local t = type(v)
  if t == "string" then
    if vt ~= nil and vt ~= 0 and vt ~= 1 then enc_error("invalid string value_type: " .. tostring(vt)) end
    return vt or 0, v
  elseif t == "number" then
    if vt ~= nil and vt ~= 2 and vt ~= 3 then enc_error("invalid numeric value_type: " .. tostring(vt)) end
    return vt or 3, v
  elseif t == "boolean" then
    if vt ~= nil and vt ~= 4 then enc_error("invalid boolean value_type: " .. tostring(vt)) end
    return 4, v
  elseif t == "userdata" then
    local f = OUTPUT[KIND[v]]
    if not f then enc_error("user data object does not implement lsb_output") end
    return 1, f(v)
  elseif t == "table" then
    enc_error("unsupported array type: table")
  end
  enc_error("unsupported type: " .. t)
end

local function flat_field(name, v, vt, rep)
  if type(name) ~= "string" then enc_error("field name must be a string") end
  local values = {}
  local ftype
  if type(v) == "table" then
    if next(v) == nil then enc_error("unsupported type: nil") end
    for i = 1, #v do
      local t, x = scalar_type(v[i], vt)
      if ftype == nil then ftype = t elseif ftype ~= t then enc_error("array has mixed types") end
      values[i] = x
    end
    if ftype == nil then enc_error("unsupported type: nil") end
  else
    ftype, values[1] = scalar_type(v, vt)
  end
  return {name, ftype, rep or "", values}
end

local function flatten_message(t)
  local out = {}
  for _, k in ipairs(HEADER_STR) do
    local v = t[k]
    if type(v) == "string" then out[k] = v
    elseif type(v) == "number" then out[k] = sformat("%.14g", v) end
  end
  local ts = t.Timestamp
  if type(ts) == "string" then ts = tonumber(ts) end
  if type(ts) == "number" then out.Timestamp = ts end
  for _, k in ipairs({"Severity", "Pid"}) do
    local v = t[k]
    if type(v) == "string" then v = tonumber(v) end
    if type(v) == "number" then out[k] = v end
  end
  if type(t.Uuid) == "string" and #t.Uuid == 16 then out.Uuid = t.Uuid end
  local fields = {}
  local f = t.Fields
  if type(f) == "table" then
    if f[1] ~= nil then
      for i = 1, #f do
        local e = f[i]
        if type(e) ~= "table" then enc_error("field name must be a string") end
        fields[i] = flat_field(e.name, e.value, e.value_type, e.representation)
      end
    else
      for name, v in pairs(f) do
        if type(v) == "table" and v.value ~= nil then
          fields[#fields + 1] = flat_field(name, v.value, v.value_type, v.representation)
        else
          fields[#fields + 1] = flat_field(name, v)
        end
      end
    end
  end
  out.Fields = fields
  return out
end

local function inject_message(...)
  if select("#", ...) ~= 1 then error("inject_message() takes a single string or table argument", 0) end
  local m = ...
  local t = type(m)
  local err
  if t == "string" then
    err = py.inject_raw(m)
  elseif t == "table" then
    buf_reset()
    local flat = flatten_message(m)
    err = py.inject_table(flat)
  else
    error("inject_message() takes a single string or table argument", 0)
  end
  if err then error("inject_message() " .. err, 0) end
end

-- read_* -----------------------------------------------------------------------------------------
local py_read, py_next_field, py_config = py.read, py.read_next_field, py.read_config

local function optindex(v, n, what)
  if v == nil then return 0 end
  if type(v) ~= "number" then
    local nv = tonumber(v)
    if nv == nil then argerror(n, "read_message", "number expected, got " .. type(v)) end
    v = nv
  end
  if v < 0 then argerror(n, "read_message", what .. " index must be >= 0") end
  return v
end

-- Prefetch: the variables a script reads by name alone are learnt on first use; from then on
-- Python passes their values along with each process_message call, so reading them costs no
-- crossing into Python (see SandboxFilter._sync_prefetch).
local PREFETCH_MAX = 8
local NIL = {}
local pre_keys, pre_vals, wanted, n_wanted = {}, {}, {}, 0

local function learn(var)
  if n_wanted < PREFETCH_MAX and var ~= "raw" and not wanted[var] then
    n_wanted = n_wanted + 1
    wanted[var] = true
    wanted[n_wanted] = var
  end
end

local function read_message(...)
  local n = select("#", ...)
  if n < 1 or n > 3 then error("read_message() incorrect number of arguments", 0) end
  local var, fi, ai = ...
  if type(var) ~= "string" then
    if type(var) == "number" then var = tostring(var)
    else argerror(1, "read_message", "string expected, got " .. type(var)) end
  end
  if fi ~= nil or ai ~= nil then
    fi = optindex(fi, 2, "field")
    ai = optindex(ai, 3, "array")
    if phase ~= "process" then return nil end
    if fi ~= 0 or ai ~= 0 then return py_read(var, fi, ai) end
  end
  if phase ~= "process" then return nil end
  local v = pre_vals[var]
  if v ~= nil then
    if v == NIL then return nil end
    return v
  end
  learn(var)
  return py_read(var, 0, 0)
end

local function read_next_field(...)
  if select("#", ...) ~= 0 then error("read_next_field() takes no arguments", 0) end
  if phase ~= "process" then return nil, nil, nil, nil, nil end
  return py_next_field()
end

local function read_config(...)
  if select("#", ...) ~= 1 then error("read_config() must have a single argument", 0) end
  local k = ...
  if type(k) ~= "string" then argerror(1, "read_config", "string expected, got " .. type(k)) end
  return py_config(k)
end

local function decode_message(...)
  local s = ...
  if select("#", ...) ~= 1 or type(s) ~= "string" then
    argerror(0, "decode_message", "must have one string argument")
  end
  local r, err = py.decode_message(s)
  if err then error(err, 0) end
  return r
end

-- ---------------------------------------------------------------------------------------------
-- Modules and require.
local allowed_os = {clock = os.clock, difftime = os.difftime, time = os.time}
local os_date = os.date
allowed_os.date = function(fmt, t)
  -- TZ=UTC for the sandbox without touching the daemon's process environment.
  if fmt == nil then fmt = "%c" end
  if type(fmt) == "string" and ssub(fmt, 1, 1) ~= "!" then fmt = "!" .. fmt end
  return os_date(fmt, t)
end

local cjson_mod, lpeg_mod  -- loaded lazily from the Debian .so files
local function load_c_module(name)
  local path, opener = py.c_module_path(name)
  if not path then return nil, opener end
  local f, err = loadlib(path, opener)
  if not f then return nil, err end
  return f()
end

local loaded = {}  -- name -> module value (Heka's private package.loaded)

local function set_module_global(name, m)
  G[name] = m
  return m
end

local builtin = {
  string = function() return set_module_global("string", string) end,
  table = function() return set_module_global("table", table) end,
  math = function() return set_module_global("math", math) end,
  os = function() return set_module_global("os", allowed_os) end,
  circular_buffer = function() return set_module_global("circular_buffer", circular_buffer) end,
  hyperloglog = function() return set_module_global("hyperloglog", hyperloglog) end,
  bloom_filter = function() return set_module_global("bloom_filter", bloom_filter) end,
  cjson = function()
    if not cjson_mod then
      local m, err = load_c_module("cjson")
      if not m then error(err, 0) end
      -- lua_sandbox's cjson: `new` and `encode_keep_buffer` removed, JSON null dropped by default.
      m.new, m.encode_keep_buffer = nil, nil
      pkg_loaded.cjson = nil
      local raw_decode, raw_null = m.decode, m.null
      local keep_null = false
      local function strip(v)
        if v == raw_null then return nil end
        if type(v) == "table" then
          for k, x in pairs(v) do
            if x == raw_null then v[k] = nil else strip(x) end
          end
        end
        return v
      end
      m.decode = function(s)
        local v = raw_decode(s)
        if keep_null then return v end
        return strip(v)
      end
      m.decode_null = function(b) keep_null = b and true or false end
      local raw_encode = m.encode
      m.encode = function(v)
        local s = raw_encode(v)
        if output_limit > 0 and #s >= output_limit then error("strbuf output_limit exceeded", 0) end
        return s
      end
      m.encode_max_depth(1000)
      m.decode_max_depth(1000)
      cjson_mod = m
    end
    return set_module_global("cjson", cjson_mod)
  end,
  lpeg = function()
    if not lpeg_mod then
      local m, err = load_c_module("lpeg")
      if not m then error(err, 0) end
      pkg_loaded.lpeg = nil
      lpeg_mod = m
    end
    return set_module_global("lpeg", lpeg_mod)
  end,
}

local disabled = {io = true, debug = true, ffi = true, package = true, coroutine = true, jit = true}

local function require(...)
  local name = ...
  if type(name) ~= "string" then argerror(1, "require", "string expected, got " .. type(name)) end
  local m = loaded[name]
  if m ~= nil then return m end
  if sfind(name, "[^%w_%.]") then error(sformat("invalid module name '%s'", name), 0) end
  if disabled[name] then error(sformat("module '%s' disabled", name), 0) end
  local b = builtin[name]
  if b then
    m = b()
  else
    if name == "re" then
      -- lpeg's re module is Lua source shipped next to lpeg; it needs lpeg loaded first.
      builtin.lpeg()
    end
    local src, where = py.module_source(name)
    if not src then error(where, 0) end
    if sbyte(src, 1) == 27 then error(sformat("error loading module '%s': bytecode is not allowed", name), 0) end
    local chunk, err = loadstring(src, "@" .. where)
    if not chunk then error(sformat("error loading module '%s' from file '%s':\n\t%s", name, where, err), 0) end
    m = chunk(name)
    if m == nil then m = loaded[name] end
    if m == nil then m = true end
  end
  if type(m) == "table" and getmetatable(m) == nil then setmetatable(m, {}) end
  loaded[name] = m
  return m
end

-- ---------------------------------------------------------------------------------------------
-- Limits.
local function on_count()
  limit_hit = true
  -- Fire on every instruction from now on, so a script that catches the error with pcall
  -- cannot run on: the next instruction outside its pcall fails too.
  sethook(on_count, "", 1)
  error("instruction_limit exceeded", 0)
end

local function arm()
  limit_hit = false
  if instruction_limit > 0 then sethook(on_count, "", instruction_limit) end
end

local function disarm() sethook() end

-- ---------------------------------------------------------------------------------------------
-- Build the sandbox's global table: remove what Heka removes, install the API.
local keep = {
  assert = true, error = true, gcinfo = true, getfenv = true, setfenv = true, getmetatable = true,
  setmetatable = true, ipairs = true, pairs = true, next = true, pcall = true, xpcall = true,
  rawequal = true, rawget = true, rawset = true, select = true, tonumber = true, tostring = true,
  type = true, unpack = true, _G = true, _VERSION = true, module = true,
}
for k in pairs(G) do
  if not keep[k] then G[k] = nil end
end
G.require = require
G.read_message = read_message
G.read_next_field = read_next_field
G.read_config = read_config
G.add_to_payload = add_to_payload
G.inject_payload = inject_payload
G.inject_message = inject_message
G.decode_message = decode_message
-- string methods stay reachable via ("s"):method() as in stock Lua; string.dump is of no use
-- without loadstring, and is removed so no bytecode can be produced.
string.dump = nil

-- ---------------------------------------------------------------------------------------------
-- Preservation (spec 5).
local function qstr(s) return sformat("%q", s) end

local function keytext(k)
  local t = type(k)
  if t == "string" then return "[" .. qstr(k) .. "]" end
  if t == "number" then
    if k ~= k then return "[0/0]" end
    if k == huge then return "[1/0]" elseif k == -huge then return "[-1/0]" end
    return "[" .. fmtnum(k) .. "]"
  end
  if t == "boolean" then return "[" .. tostring(k) .. "]" end
  error(sformat("serialize_data cannot preserve type '%s'", t), 0)
end

local function valtext(v)
  local t = type(v)
  if t == "string" then return qstr(v) end
  if t == "number" then
    if v ~= v then return "0/0" end
    if v == huge then return "1/0" elseif v == -huge then return "-1/0" end
    return fmtnum(v)
  end
  if t == "boolean" then return tostring(v) end
  return nil
end

local function serialize()
  local pv = rawget(G, "_PRESERVATION_VERSION")
  pv = type(pv) == "number" and pv or 0
  rawset(G, "_PRESERVATION_VERSION", nil)
  local lines = {sformat("if _PRESERVATION_VERSION and _PRESERVATION_VERSION ~= %d then return end", pv)}
  local seen = {[G] = "_G"}
  local function walk(t, path)
    for k, v in pairs(t) do
      local tv = type(v)
      if tv ~= "function" and tv ~= "thread" and v ~= G then
        local p = path .. keytext(k)
        if tv == "table" or tv == "userdata" then
          if seen[v] then
            lines[#lines + 1] = p .. " = " .. seen[v]
          elseif tv == "table" then
            if getmetatable(v) == nil then
              seen[v] = p
              lines[#lines + 1] = p .. " = {}"
              walk(v, p)
            end
          else
            local s = SERIALIZE[KIND[v]]
            if s then
              seen[v] = p
              s(v, p, lines)
            end
          end
        else
          local text = valtext(v)
          if text then lines[#lines + 1] = p .. " = " .. text end
        end
      end
    end
  end
  walk(G, "_G")
  lines[#lines + 1] = ""
  return tconcat(lines, "\n")
end

-- ---------------------------------------------------------------------------------------------
-- Entry points for Python. Each returns a kind code first:
--   0 ok (then status, errmsg for process), 1 fatal (then the error text).
local host = {}

local function errtext(prefix, e)
  if type(e) ~= "string" then e = tostring(e) end
  return ssub(prefix .. e, 1, 255)
end

function host.load(src, chunkname)
  if sbyte(src, 1) == 27 then return 1, "Init() bytecode is not allowed" end
  local chunk, err = loadstring(src, chunkname)
  if not chunk then return 1, errtext("Init() ", err) end
  phase = "load"
  arm()
  local ok, e = pcall(chunk)
  disarm()
  phase = "idle"
  if limit_hit then return 1, "Init() instruction_limit exceeded" end
  if not ok then return 1, errtext("Init() ", e) end
  return 0
end

function host.restore(src)
  if sbyte(src, 1) == 27 then return 1, "Init() lsb_restore_global_data bytecode is not allowed" end
  local chunk, err = loadstring(src, "=preservation")
  if not chunk then return 1, errtext("Init() lsb_restore_global_data ", err) end
  phase = "restore"
  local ok, e = pcall(chunk)
  phase = "idle"
  if not ok then return 1, errtext("Init() lsb_restore_global_data ", e) end
  collect("collect")
  return 0
end

function host.serialize()
  local ok, r = pcall(serialize)
  if not ok then return nil, r end
  return r
end

local function process_result(ok, st, em)
  disarm()
  phase = "idle"
  if limit_hit then return 1, "process_message() instruction_limit exceeded" end
  if not ok then return 1, errtext("process_message() ", st) end
  if type(st) ~= "number" then return 1, "process_message() must return a numeric status code" end
  if em ~= nil and type(em) ~= "string" then
    return 1, "process_message() must return a nil or string error message"
  end
  if n_wanted > #pre_keys then return 2, st, em end
  if em == nil then return st end  -- the common case: one number, no tuple on the Python side
  return 0, st, em
end

function host.process(...)
  for i = 1, #pre_keys do
    local v = select(i, ...)
    if v == nil then v = NIL end
    pre_vals[pre_keys[i]] = v
  end
  local f = G.process_message
  if type(f) ~= "function" then return 1, "process_message() function was not found" end
  phase = "process"
  arm()
  return process_result(pcall(f))
end

-- Python asks for the learnt variable names and confirms it will pass their values.
function host.prefetch()
  for i = 1, n_wanted do pre_keys[i] = wanted[i] end
  return unpack(pre_keys)
end

local function timer_result(ok, e)
  disarm()
  phase = "idle"
  if limit_hit then return 1, "timer_event() instruction_limit exceeded" end
  if not ok then return 1, errtext("timer_event() ", e) end
  collect("collect")
  return 0
end

function host.timer(ns)
  local f = G.timer_event
  if type(f) ~= "function" then return 1, "timer_event() function was not found" end
  phase = "timer"
  arm()
  return timer_result(pcall(f, ns))
end

host.fmtnum = fmtnum
host.phase = function() return phase end
host.buffered = function() return buf_len end

return host
