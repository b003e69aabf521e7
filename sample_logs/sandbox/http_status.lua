-- HTTP status counting in the style of Heka's http_status filter: one circular buffer column per
-- status class (1xx..5xx + unknown), keyed by message time, graphed as a cbuf.
-- Config: status_field ("status"), rows (1440), sec_per_row (60), title ("HTTP Status"),
--         alert_window (0 = off: rows compared by mannwhitneyu for a 5xx trend alert).
require "circular_buffer"
require "string"
require "math"

local status_field = read_config("status_field") or "status"
local rows = read_config("rows") or 1440
local sec_per_row = read_config("sec_per_row") or 60
local title = read_config("title") or "HTTP Status"
local alert_window = read_config("alert_window") or 0
_PRESERVATION_VERSION = read_config("preservation_version") or 0

status = circular_buffer.new(rows, 6, sec_per_row)
local HTTP_100, HTTP_200, HTTP_300, HTTP_400, HTTP_500, HTTP_UNKNOWN =
    status:set_header(1, "HTTP_100"), status:set_header(2, "HTTP_200"), status:set_header(3, "HTTP_300"),
    status:set_header(4, "HTTP_400"), status:set_header(5, "HTTP_500"), status:set_header(6, "HTTP_UNKNOWN")

function process_message()
    local ts = read_message("Timestamp")
    local sc = tonumber(read_message("Fields[" .. status_field .. "]"))
    if not sc then return -1, "no " .. status_field .. " field" end
    local col = math.floor(sc / 100)
    if col < 1 or col > 5 then col = HTTP_UNKNOWN end
    status:add(ts, col, 1)
    return 0
end

function timer_event(ns)
    inject_payload("cbuf", title, status)
    local total, active = status:compute("sum", HTTP_200)
    local avg = status:compute("avg", HTTP_500)
    local summary = string.format("2xx total %d over %d rows; 5xx per row %s", total, active,
                                  avg == avg and string.format("%.2f", avg) or "nan")
    if alert_window > 0 then
        local ct = status:current_time()
        local w = alert_window * sec_per_row * 1e9
        local u, p = status:mannwhitneyu(HTTP_500, ct - 2 * w + sec_per_row * 1e9, ct - w, ct - w + sec_per_row * 1e9, ct)
        if u then summary = summary .. string.format("; 5xx mann-whitney U=%g p=%.5f", u, p) end
    end
    inject_payload("txt", "summary", summary)
end
