-- A save killed at a random moment leaves the old checkpoint or the new one,
-- never a torn file, and at most one temporary file beside it (the next
-- save sweeps the orphans of killed ones).
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local tide = require "tide"

local TIDE = arg and arg[-1] or "tide"

local TMP = os.tmpname()
os.remove(TMP)
assert(os.execute("mkdir -p " .. H.sh(TMP)))
local PATH = TMP .. "/run.ckpt"

-- saves epoch e, e+1, ... forever, each with a tensor full of e: 8 MB, so
-- that a kill often lands inside a save
local CHILD = [[
local tide = require "tide"
local path = os.getenv("CKPT")
local e = 0
if io.open(path) then e = tide.checkpoint.load(path, {rng = false}) + 1 end
while true do
    tide.checkpoint.save(path, {epoch = e, extra = {w = tide.ones({2 * 1024 * 1024}, "float32"):mul(e)}})
    e = e + 1
end
]]

local function temps()
    local p = io.popen("ls -A " .. H.sh(TMP))
    local n = 0
    for l in p:lines() do
        if l:find("^run%.ckpt%.tmp%.") then n = n + 1 end
    end
    p:close()
    return n
end

local function dead(pid)
    local f = io.open("/proc/" .. pid .. "/stat")
    if not f then return true end
    local s = f:read("a")
    f:close()
    return s:match("^%d+ %b() (%a)") == "Z"
end

describe("checkpoint.save under SIGKILL", function()
    it("leaves the old or the new file and at most one temporary", function()
        math.randomseed(os.time())
        local last = -1
        for _ = 1, 10 do
            local p = assert(io.popen("CKPT=" .. H.sh(PATH) .. " " .. H.sh(TIDE) .. " -e " .. H.sh(CHILD) ..
                                      " >/dev/null 2>&1 & echo $!"))
            local pid = assert(tonumber(p:read("l")))
            p:close()
            -- let it finish at least one save, then kill it mid-way
            for _ = 1, 500 do
                if io.open(PATH) then break end
                os.execute("sleep 0.01")
            end
            os.execute(string.format("sleep %.3f", 0.05 + 0.25 * math.random()))
            os.execute("kill -9 " .. pid)
            for _ = 1, 500 do
                if dead(pid) then break end
                os.execute("sleep 0.01")
            end
            assert.is_true(dead(pid), "the child did not die")
            assert.is_true(temps() <= 1, temps() .. " temporary files")
            local epoch, extra = tide.checkpoint.load(PATH, {rng = false})
            assert.is_true(epoch >= last, "went back from " .. last .. " to " .. epoch)
            assert.are.equal(epoch, extra.w:min():item())
            assert.are.equal(epoch, extra.w:max():item())
            last = epoch
        end
        assert.is_true(last >= 0)
        os.execute("rm -rf " .. H.sh(TMP))
    end)
end)
