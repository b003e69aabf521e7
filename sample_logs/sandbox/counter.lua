-- The smallest useful filter: counts the messages it is given and reports the count.
count = 0

function process_message()
    count = count + 1
    return 0
end

function timer_event(ns)
    inject_payload("txt", "count", count)
end
