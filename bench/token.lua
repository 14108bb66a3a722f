-- wrk script: each request exchanges a fresh authorization code at /token (client_secret_basic).
-- usage: wrk -t2 -c16 -d10s -s bench/token.lua URL -- CODES_FILE NTHREADS BASIC_AUTH_B64
local counter = 1
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

function init(args)
  codes = {}
  local n = tonumber(args[2])
  local k = 0
  for line in io.lines(args[1]) do
    if (k % n) == (id - 1) then codes[#codes + 1] = line end
    k = k + 1
  end
  idx = 0
  auth = args[3]
end

function request()
  idx = idx + 1
  local code = codes[idx] or "exhausted"
  local body = "grant_type=authorization_code&redirect_uri=http%3A%2F%2Flocalhost%3A9%2Fcb&code=" .. code
  return wrk.format("POST", "/token", {
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Authorization"] = "Basic " .. auth,
  }, body)
end
