-- circular_buffer, rebuilt in Lua from spec section 6 (lua_circular_buffer's behaviour and text).
-- Runs in the host's private environment (see lua_host.lua); objects are userdata proxies whose state
-- lives in the weak table S, so scripts see the same types, methods, errors and output as Heka's.
local S = setmetatable({}, {__mode = "k"})
local methods = {}
local new_proxy = new_class("lsb.circular_buffer", methods)
local fmod, sqrt, nan = math.fmod, math.sqrt, 0 / 0
local DBL_MIN, DBL_MAX = 2.2250738585072014e-308, 1.7976931348623157e+308
local AGG = {sum = true, min = true, max = true, none = true}
local tconcat, sgsub, ssub = table.concat, string.gsub, string.sub

local function trunc(x)
  if x >= 0 then return floor(x) end
  return -floor(-x)
end

local function self_of(u, fname)
  local s = S[u]
  if not s then argerror(1, fname, "lsb.circular_buffer expected, got " .. type(u)) end
  return s
end

local function nargs(fname, n, lo, hi)
  if n < lo or n > hi then argerror(-1, fname, "incorrect number of arguments") end
end

local function checknum(v, i, fname)
  local n = tonumber(v)
  if n == nil then argerror(i, fname, "number expected, got " .. type(v)) end
  return n
end

local function checkcol(s, v, i, fname)
  local c = trunc(checknum(v, i, fname))
  if c < 1 or c > s.cols then argerror(i, fname, "column out of range") end
  return c
end

-- Seconds of a ns timestamp, truncated to the row boundary (C truncating arithmetic).
local function row_time(s, ns)
  local t = trunc(ns / 1e9)
  return t - fmod(t, s.spr)
end

-- Physical row for time t (s), or nil when out of range; `advance` allows moving the window.
local function row_index(s, t, advance)
  local spr, rows = s.spr, s.rows
  local d = t / spr - s.ct / spr
  local row = fmod(t / spr, rows)
  if row < 0 then row = row + rows end
  if d > 0 then
    if not advance then return nil end
    local n = d < rows and d or rows
    local data, cols = s.data, s.cols
    local r = s.cr
    for _ = 1, n do
      r = r + 1
      if r == rows then r = 0 end
      local base = r * cols
      for c = 1, cols do data[base + c] = nan end
    end
    s.ct, s.cr = t, row
    return row
  end
  if -d >= rows then return nil end
  return row
end

local function add_delta(s, t, col, v)
  local dl = s.delta
  local r = dl[t]
  if not r then
    r = {}
    dl[t] = r
  end
  r[col] = (r[col] or 0) + v
end

local circular_buffer = {}

function circular_buffer.new(...)
  local n = select("#", ...)
  if n < 3 or n > 4 then argerror(0, "new", "incorrect number of arguments") end
  local rows, cols, spr, delta = ...
  rows = trunc(checknum(rows, 1, "new"))
  cols = trunc(checknum(cols, 2, "new"))
  spr = trunc(checknum(spr, 3, "new"))
  if rows <= 1 then argerror(1, "new", "rows must be > 1") end
  if cols <= 0 then argerror(2, "new", "columns must be > 0") end
  if spr <= 0 or spr > 86400 * 365 then argerror(3, "new", "seconds_per_row is out of range") end
  if n == 4 and type(delta) ~= "boolean" then argerror(4, "new", "boolean expected, got " .. type(delta)) end
  local data = {}
  for i = 1, rows * cols do data[i] = nan end
  local names, units, aggs = {}, {}, {}
  for c = 1, cols do
    names[c], units[c], aggs[c] = "Column_" .. c, "count", "sum"
  end
  local u = new_proxy("cbuf")
  S[u] = {
    rows = rows, cols = cols, spr = spr, ct = spr * (rows - 1), cr = rows - 1, data = data,
    names = names, units = units, aggs = aggs, delta = delta and {} or nil, fmt = "cbuf",
  }
  return u
end

function methods.add(u, ...)
  local s = self_of(u, "add")
  nargs("add", select("#", ...), 3, 3)
  local ns, col, v = ...
  ns = checknum(ns, 1, "add")
  col = checkcol(s, col, 2, "add")
  v = checknum(v, 3, "add")
  local t = row_time(s, ns)
  local row = row_index(s, t, true)
  if row == nil then return nil end
  local i = row * s.cols + col
  local old = s.data[i]
  local new
  if old ~= old then new = v else new = old + v end
  s.data[i] = new
  if s.delta and v ~= 0 then
    add_delta(s, t, col, s.aggs[col] == "sum" and v or new)
  end
  return new
end

function methods.set(u, ...)
  local s = self_of(u, "set")
  nargs("set", select("#", ...), 3, 3)
  local ns, col, v = ...
  ns = checknum(ns, 1, "set")
  col = checkcol(s, col, 2, "set")
  v = checknum(v, 3, "set")
  local t = row_time(s, ns)
  local row = row_index(s, t, true)
  if row == nil then return nil end
  local i = row * s.cols + col
  local old = s.data[i]
  local agg = s.aggs[col]
  if agg == "min" then
    if old ~= old or v < old then
      s.data[i] = v
      if s.delta then add_delta(s, t, col, v) end
    end
  elseif agg == "max" then
    if old ~= old or v > old then
      s.data[i] = v
      if s.delta then add_delta(s, t, col, v) end
    end
  else
    s.data[i] = v
    if s.delta then
      if old ~= old then add_delta(s, t, col, v) else add_delta(s, t, col, v - old) end
    end
  end
  return s.data[i]
end

function methods.get(u, ...)
  local s = self_of(u, "get")
  nargs("get", select("#", ...), 2, 2)
  local ns, col = ...
  ns = checknum(ns, 1, "get")
  col = checkcol(s, col, 2, "get")
  local row = row_index(s, row_time(s, ns), false)
  if row == nil then return nil end
  return s.data[row * s.cols + col]
end

function methods.set_header(u, ...)
  local s = self_of(u, "set_header")
  nargs("set_header", select("#", ...), 2, 4)
  local col, name, unit, agg = ...
  col = checkcol(s, col, 1, "set_header")
  if type(name) ~= "string" then
    if type(name) == "number" then name = tostring(name)
    else argerror(2, "set_header", "string expected, got " .. type(name)) end
  end
  if unit == nil then unit = "count" end
  if type(unit) ~= "string" then argerror(3, "set_header", "string expected, got " .. type(unit)) end
  if agg == nil then agg = "sum" end
  if type(agg) ~= "string" then argerror(4, "set_header", "string expected, got " .. type(agg)) end
  if not AGG[agg] then argerror(4, "set_header", "invalid option '" .. agg .. "'") end
  s.names[col] = (sgsub(ssub(name, 1, 15), "[^%w]", "_"))
  s.units[col] = (sgsub(ssub(unit, 1, 7), "[^%w/%*]", "_"))
  s.aggs[col] = agg
  return col
end

function methods.get_header(u, ...)
  local s = self_of(u, "get_header")
  nargs("get_header", select("#", ...), 1, 1)
  local col = checkcol(s, (...), 1, "get_header")
  return s.names[col], s.units[col], s.aggs[col]
end

function methods.get_configuration(u, ...)
  local s = self_of(u, "get_configuration")
  nargs("get_configuration", select("#", ...), 0, 0)
  return s.rows, s.cols, s.spr
end

function methods.current_time(u, ...)
  local s = self_of(u, "current_time")
  nargs("current_time", select("#", ...), 0, 0)
  return s.ct * 1e9
end

function methods.format(u, ...)
  local s = self_of(u, "format")
  nargs("format", select("#", ...), 1, 1)
  local f = ...
  if type(f) ~= "string" then argerror(1, "format", "string expected, got " .. type(f)) end
  if f ~= "cbuf" and f ~= "cbufd" then argerror(1, "format", "invalid option '" .. f .. "'") end
  s.fmt = f
  return u
end

-- Rows [start, end] for a range of ns (defaults: the whole window), or nil when out of range.
local function range_rows(s, sns, ens, fname, i)
  local start_t = s.ct - s.spr * (s.rows - 1)
  local st = sns == nil and start_t or row_time(s, checknum(sns, i, fname))
  local et = ens == nil and s.ct or row_time(s, checknum(ens, i + 1, fname))
  if et < st then argerror(i + 1, fname, "end must be >= start") end
  local r1 = row_index(s, st, false)
  local r2 = row_index(s, et, false)
  if r1 == nil or r2 == nil then return nil end
  return r1, (et - st) / s.spr + 1
end

local COMPUTE = {sum = true, avg = true, sd = true, min = true, max = true, variance = true}

function methods.compute(u, ...)
  local s = self_of(u, "compute")
  nargs("compute", select("#", ...), 2, 4)
  local fn, col, sns, ens = ...
  if type(fn) ~= "string" then argerror(1, "compute", "string expected, got " .. type(fn)) end
  if not COMPUTE[fn] then argerror(1, "compute", "invalid option '" .. fn .. "'") end
  col = checkcol(s, col, 2, "compute")
  local r, n = range_rows(s, sns, ens, "compute", 3)
  if r == nil then return nil, 0 end
  local data, cols, rows = s.data, s.cols, s.rows
  local vals, count = {}, 0
  for _ = 1, n do
    local v = data[r * cols + col]
    if v == v then
      count = count + 1
      vals[count] = v
    end
    r = r + 1
    if r == rows then r = 0 end
  end
  if fn == "sum" then
    local sum = 0
    for i = 1, count do sum = sum + vals[i] end
    return sum, count
  elseif fn == "min" then
    local m = DBL_MAX
    for i = 1, count do if vals[i] < m then m = vals[i] end end
    if count == 0 then m = nan end
    return m, count
  elseif fn == "max" then
    -- Heka's quirk: starts from DBL_MIN, so data that is all <= 0 gives NaN.
    local m = DBL_MIN
    for i = 1, count do if vals[i] > m then m = vals[i] end end
    if m == DBL_MIN then m = nan end
    return m, count
  end
  local sum = 0
  for i = 1, count do sum = sum + vals[i] end
  local avg = sum / count
  if fn == "avg" then return avg, count end
  local sq = 0
  for i = 1, count do
    local d = vals[i] - avg
    sq = sq + d * d
  end
  local var = sq / count
  if fn == "variance" then return var, count end
  return sqrt(var), count
end

function methods.mannwhitneyu(u, ...)
  local s = self_of(u, "mannwhitneyu")
  local n = select("#", ...)
  if n > 6 then argerror(7, "mannwhitneyu", "too many arguments") end
  nargs("mannwhitneyu", n, 5, 6)
  local col, s1, e1, s2, e2, cont = ...
  col = checkcol(s, col, 1, "mannwhitneyu")
  s1, e1 = checknum(s1, 2, "mannwhitneyu"), checknum(e1, 3, "mannwhitneyu")
  s2, e2 = checknum(s2, 4, "mannwhitneyu"), checknum(e2, 5, "mannwhitneyu")
  if e1 < s1 then argerror(3, "mannwhitneyu", "end_1 must be >= start_1") end
  if e2 < s2 then argerror(5, "mannwhitneyu", "end_2 must be >= start_2") end
  if not (e1 < s2 or e2 < s1) then argerror(4, "mannwhitneyu", "ranges must not overlap") end
  if cont == nil then cont = true end
  if type(cont) ~= "boolean" then argerror(6, "mannwhitneyu", "use_continuity must be a boolean") end
  local ra, n1 = range_rows(s, s1, e1, "mannwhitneyu", 2)
  local rb, n2 = range_rows(s, s2, e2, "mannwhitneyu", 4)
  if ra == nil or rb == nil then return end
  local data, cols, rows = s.data, s.cols, s.rows
  local pool = {}
  local function take(r, cnt, group)
    for _ = 1, cnt do
      pool[#pool + 1] = {data[r * cols + col], group}
      r = r + 1
      if r == rows then r = 0 end
    end
  end
  take(ra, n1, 1)
  take(rb, n2, 2)
  -- NaNs sort lowest and form one tie group.
  table.sort(pool, function(a, b)
    local x, y = a[1], b[1]
    if x ~= x then return y == y end
    if y ~= y then return false end
    return x < y
  end)
  local total = #pool
  local r1, ties = 0, 0
  local i = 1
  while i <= total do
    local j = i
    local v = pool[i][1]
    local isnan = v ~= v
    while j < total do
      local w = pool[j + 1][1]
      if (isnan and w ~= w) or (not isnan and w == v) then j = j + 1 else break end
    end
    local rank = (i + j) / 2
    local t = j - i + 1
    if t > 1 then ties = ties + (t * t * t - t) end
    for k = i, j do
      if pool[k][2] == 1 then r1 = r1 + rank end
    end
    i = j + 1
  end
  local u1 = r1 - n1 * (n1 + 1) / 2
  local u2 = n1 * n2 - u1
  local tc = 1 - ties / (total * total * total - total)
  if tc == 0 then return end
  local big = u1 > u2 and u1 or u2
  local z = big - n1 * n2 / 2
  if cont then z = z - 0.5 end
  if z < 0 then z = -z end
  z = z / sqrt(tc * n1 * n2 * (n1 + n2 + 1) / 12)
  return u1, py.normal_cdf(-z)
end

local function parse_numbers(str)
  local vals = {}
  for tok in string.gmatch(str, "%S+") do
    local v
    if tok == "nan" or tok == "-nan" then v = nan
    elseif tok == "inf" then v = huge
    elseif tok == "-inf" then v = -huge
    else v = tonumber(tok) end
    if v == nil then return nil, tok end
    vals[#vals + 1] = v
  end
  return vals
end

function methods.fromstring(u, ...)
  local s = self_of(u, "fromstring")
  nargs("fromstring", select("#", ...), 1, 1)
  local str = ...
  if type(str) ~= "string" then argerror(1, "fromstring", "string expected, got " .. type(str)) end
  local vals = parse_numbers(str)
  local need = 2 + s.rows * s.cols
  if vals == nil then error("fromstring() invalid value", 0) end
  if #vals < need then
    error(sformat("fromstring() too few values: %d, expected %d", #vals, need), 0)
  end
  local extra = #vals - need
  if extra > 0 and (not s.delta or extra % (s.cols + 1) ~= 0) then
    if not s.delta then
      error(sformat("fromstring() too many values, more than: %d", need), 0)
    end
    error("fromstring() invalid delta", 0)
  end
  s.ct, s.cr = vals[1], vals[2]
  for i = 1, s.rows * s.cols do s.data[i] = vals[2 + i] end
  local k = need + 1
  while k <= #vals do
    local t = vals[k]
    local r = {}
    for c = 1, s.cols do
      local d = vals[k + c]
      if d ~= 0 then r[c] = d end
    end
    s.delta[t] = r
    k = k + s.cols + 1
  end
end

-- Text output (spec 6 "Text output").
local function header(s)
  local info = {}
  for c = 1, s.cols do
    info[c] = sformat('{"name":"%s","unit":"%s","aggregation":"%s"}', s.names[c], s.units[c], s.aggs[c])
  end
  return sformat('{"time":%s,"rows":%d,"columns":%d,"seconds_per_row":%d,"column_info":[%s]}\n',
    sformat("%d", s.ct - s.spr * (s.rows - 1)), s.rows, s.cols, s.spr, tconcat(info, ","))
end

local function cbuf_text(s)
  local out = {header(s)}
  local data, cols, rows = s.data, s.cols, s.rows
  local r = s.cr
  local line = {}
  for _ = 1, rows do
    r = r + 1
    if r == rows then r = 0 end
    local base = r * cols
    for c = 1, cols do line[c] = fmtnum(data[base + c]) end
    out[#out + 1] = tconcat(line, "\t", 1, cols) .. "\n"
  end
  return tconcat(out)
end

local function cbufd_text(s)
  if not s.delta or next(s.delta) == nil then return "" end
  local out = {header(s)}
  local line = {}
  for t, r in pairs(s.delta) do
    line[1] = sformat("%d", t)
    for c = 1, s.cols do
      local d = r[c]
      line[c + 1] = d == nil and "nan" or fmtnum(d)
    end
    out[#out + 1] = tconcat(line, "\t", 1, s.cols + 1) .. "\n"
  end
  s.delta = {}
  return tconcat(out)
end

OUTPUT.cbuf = function(u)
  local s = S[u]
  if s.fmt == "cbufd" then return cbufd_text(s) end
  return cbuf_text(s)
end

SERIALIZE.cbuf = function(u, path, lines)
  local s = S[u]
  lines[#lines + 1] = sformat("if %s == nil then %s = circular_buffer.new(%d, %d, %d%s) end", path, path,
    s.rows, s.cols, s.spr, s.delta and ", true" or "")
  for c = 1, s.cols do
    lines[#lines + 1] = sformat("%s:set_header(%d, %q, %q, %q)", path, c, s.names[c], s.units[c], s.aggs[c])
  end
  local vals = {sformat("%d", s.ct), sformat("%d", s.cr)}
  for i = 1, s.rows * s.cols do vals[#vals + 1] = fmtnum(s.data[i]) end
  if s.delta then
    for t, r in pairs(s.delta) do
      vals[#vals + 1] = sformat("%d", t)
      for c = 1, s.cols do vals[#vals + 1] = fmtnum(r[c] or 0) end
    end
  end
  lines[#lines + 1] = sformat('%s:fromstring("%s")', path, tconcat(vals, " "))
end

return circular_buffer
