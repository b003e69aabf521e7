-- Top-N items in the style of Heka's frequent_items filter: counts the values of one message
-- variable and reports the N most frequent as TSV.
-- Config: message_variable (required, e.g. "Fields[remote_addr]"), max_items (10).
require "string"
require "table"
require "math"

local var = read_config("message_variable") or error("message_variable must be set")
local max_items = read_config("max_items") or 10

counts = {}
total = 0

function process_message()
    local v = read_message(var)
    if v == nil then return -1, "no " .. var end
    v = tostring(v)
    counts[v] = (counts[v] or 0) + 1
    total = total + 1
    return 0
end

function timer_event(ns)
    local items = {}
    for k, c in pairs(counts) do items[#items + 1] = {k, c} end
    table.sort(items, function(a, b) if a[2] ~= b[2] then return a[2] > b[2] end return a[1] < b[1] end)
    add_to_payload(var, "\tCount\n")
    for i = 1, math.min(max_items, #items) do
        add_to_payload(items[i][1], "\t", items[i][2], "\n")
    end
    inject_payload("tsv", "Top " .. var)
end
