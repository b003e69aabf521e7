-- Heartbeat monitor in the style of Heka's heartbeat filter: remembers when each Hostname was
-- last seen and reports them as JSON; hosts silent for longer than heartbeat_timeout are marked
-- "missing" and an alert message is injected.
-- Config: heartbeat_timeout (30 seconds).
require "cjson"
require "string"

local timeout = (read_config("heartbeat_timeout") or 30) * 1e9

hosts = {}

function process_message()
    local host = read_message("Hostname")
    if host == "" then return -1, "no Hostname" end
    local h = hosts[host]
    if not h then
        h = {last_heartbeat = 0, status = "ok"}
        hosts[host] = h
    end
    h.last_heartbeat = read_message("Timestamp")
    h.status = "ok"
    return 0
end

function timer_event(ns)
    local missing = {}
    for host, h in pairs(hosts) do
        if ns - h.last_heartbeat > timeout then
            if h.status ~= "missing" then missing[#missing + 1] = host end
            h.status = "missing"
        end
    end
    inject_payload("json", "heartbeat", cjson.encode(hosts))
    if #missing > 0 then
        table = require "table"
        table.sort(missing)
        inject_message({Type = "heartbeat.alert", Payload = "Missing Heartbeat - " .. table.concat(missing, ", "),
                        Severity = 1, Fields = {missing = missing}})
    end
end
