-- Shared by list.lua and create.lua: counts responses per HTTP status in each wrk thread
-- and prints them once at the end as "status codes: 200=N 500=M".
local threads = {}
local next_id = 0

function setup(thread)
   next_id = next_id + 1
   thread:set("tid", next_id)
   table.insert(threads, thread)
end

codes = {}

function response(status, headers, body)
   codes[status] = (codes[status] or 0) + 1
end

function done(summary, latency, requests)
   local total = {}
   for _, t in ipairs(threads) do
      local c = t:get("codes")
      for k, v in pairs(c) do total[k] = (total[k] or 0) + v end
   end
   local keys = {}
   for k in pairs(total) do table.insert(keys, k) end
   table.sort(keys)
   local parts = {}
   for _, k in ipairs(keys) do table.insert(parts, k .. "=" .. total[k]) end
   io.write("status codes: " .. table.concat(parts, " ") .. "\n")
end
