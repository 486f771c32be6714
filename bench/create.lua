-- POST /api/v3/core/users/ with a unique username per request: the wrk thread id, a
-- per-thread counter and a random suffix picked once per thread (so reruns never clash).
dofile(os.getenv("BENCH_DIR") .. "/status.lua")
wrk.method = "POST"
wrk.path = "/api/v3/core/users/"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN")
wrk.headers["Content-Type"] = "application/json"

local counter = 0
local suffix = nil

function init(args)
   -- tid is set by setup() in status.lua before init runs in the thread
   local f = io.open("/dev/urandom", "rb")
   local bytes = f:read(6)
   f:close()
   suffix = ""
   for i = 1, #bytes do suffix = suffix .. string.format("%02x", bytes:byte(i)) end
end

function request()
   counter = counter + 1
   local name = "bench-" .. tostring(tid) .. "-" .. counter .. "-" .. suffix
   local body = '{"username": "' .. name .. '", "name": "Bench ' .. name .. '"}'
   return wrk.format(nil, nil, nil, body)
end
