-- status_counter.lua: counts the HTTP status codes of nginx access messages into a circular
-- buffer (one column per status class), which the `heka serve` dashboard draws as a graph.
--
-- Config ([<section>.config] in the TOML sent with it):
--   rows         number of rows in the buffer        (default 1440)
--   sec_per_row  seconds per row                     (default 60: a day of minutes)
--   status_field the field holding the status code   (default "status")
--   title        the output's name on the dashboard  (default "HTTP Status")
--
-- The buffer is dated by each message's Timestamp, so replayed old logs are graphed at the time
-- they happened. Messages older than the buffer's window are counted in `skipped`.
require "circular_buffer"
require "string"

local rows = read_config("rows") or 1440
local sec_per_row = read_config("sec_per_row") or 60
local status_field = "Fields[" .. (read_config("status_field") or "status") .. "]"
local title = read_config("title") or "HTTP Status"

-- globals survive a restart when preserve_data = true
status = circular_buffer.new(rows, 6, sec_per_row)
skipped = 0

local columns = {"HTTP_1xx", "HTTP_2xx", "HTTP_3xx", "HTTP_4xx", "HTTP_5xx", "HTTP_other"}
for i, name in ipairs(columns) do
    status:set_header(i, name, "count", "sum")
end

function process_message()
    local code = tonumber(read_message(status_field))
    local col = 6
    if code and code >= 100 and code < 600 then
        col = (code - code % 100) / 100
    end
    if not status:add(read_message("Timestamp"), col, 1) then
        skipped = skipped + 1 -- outside the buffer's time window
    end
    return 0
end

function timer_event(ns)
    inject_payload("cbuf", title, status)
end
