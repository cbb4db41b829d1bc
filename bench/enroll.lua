-- wrk script: POST /api/v1/enroll with a new machine each request (a unique service tag and MAC per thread and
-- counter) and a realistic ~1.3 KB hardware object, as bench/enroll.ts sends with autocannon.
-- wrk -t1 -c64 -d10s -s bench/enroll.lua http://127.0.0.1:PORT -- RUN   (RUN 0-255: machines unique per run and data dir)
-- bench/enroll-ab.ts runs it; wrk is the Debian package wrk.
local nextId = 0

function setup(thread)
  thread:set("tid", nextId)
  nextId = nextId + 1
end

local run, counter = 0, 0
local letters = "BCDFGHJKLMNPQRSTVWXZ"
local products = { "PowerEdge R650", "PowerEdge R750", "PowerEdge R6525" }
local cpus = { "Intel(R) Xeon(R) Gold 6338 CPU @ 2.00GHz", "AMD EPYC 7543 32-Core Processor", "Intel(R) Xeon(R) Silver 4314 CPU @ 2.40GHz" }

function init(args)
  run = tonumber(args[1] or "0") % 256
end

local function byte(n, shift)
  return math.floor(n / 2 ^ shift) % 256
end

request = function()
  counter = counter + 1
  local l1 = math.floor(run / 20) % 20 + 1
  local l2 = run % 20 + 1
  local tag = string.format("%s%s%d%05X", letters:sub(l1, l1), letters:sub(l2, l2), tid, counter)
  local mac = string.format("02:%02x:%02x:%02x:%02x:%02x", run, tid, byte(counter, 16), byte(counter, 8), byte(counter, 0))
  local mac2 = string.format("02:%02x:%02x:%02x:%02x:%02x", run, tid, byte(counter, 16), byte(counter, 8), (byte(counter, 0) + 128) % 256)
  local m = counter % 3 + 1
  local dimms = {}
  for _, slot in ipairs({ "A1", "A2", "B1", "B2" }) do
    dimms[#dimms + 1] = string.format('{"slot":"%s","size_gb":128,"type":"DDR4","speed_mts":3200,"manufacturer":"Samsung"}', slot)
  end
  local body = string.format(
    '{"service_tag":"%s","mac_address":"%s","hardware":{' ..
      '"system":{"manufacturer":"Dell Inc.","product":"%s","serial":"%s","bios":{"vendor":"Dell Inc.","version":"1.13.2","date":"2024-03-07"}},' ..
      '"cpu":{"model":"%s","sockets":2,"cores":64,"threads":128,"mhz":%d,"flags":["avx2","avx512f","aes","sse4_2","vmx"]},' ..
      '"memory":{"total_bytes":549755813888,"dimms":[%s]},' ..
      '"disks":[{"name":"nvme0n1","model":"Dell Ent NVMe P5600 MU U.2 1.6TB","serial":"PHAB%s0A","size_bytes":1600321314816,"rotational":false},' ..
      '{"name":"nvme1n1","model":"Dell Ent NVMe P5600 MU U.2 1.6TB","serial":"PHAB%s0B","size_bytes":1600321314816,"rotational":false},' ..
      '{"name":"sda","model":"BOSS-N1","serial":"BS%s","size_bytes":480103981056,"rotational":false}],' ..
      '"nics":[{"name":"eno12399np0","mac":"%s","driver":"bnxt_en","speed_mbps":25000,"link":true},' ..
      '{"name":"eno12409np1","mac":"%s","driver":"bnxt_en","speed_mbps":25000,"link":false}],' ..
      '"os":{"kernel":"6.6.32","image":"muster-register 1.4.0"}}}',
    tag, mac, products[m], tag, cpus[m], 2000 + (m - 1) * 200, table.concat(dimms, ","), tag, tag, tag, mac, mac2)
  return wrk.format("POST", "/api/v1/enroll", { ["content-type"] = "application/json" }, body)
end

