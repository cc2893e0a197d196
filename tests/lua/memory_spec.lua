-- Tensor memory is reported to Lua's collector: a loop that makes many
-- short-lived 4 MB tensors stays bounded, and the live bytes come back.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"

local MB = 1024 * 1024

local function live_bytes()
    local a = tide.memory("cpu")
    if type(a) == "table" then return a.live_bytes or a.live or a.in_use or a[1] end
    return a
end

describe("memory", function()
    it("tide.memory reports live bytes that follow allocation", function()
        collectgarbage()
        collectgarbage()
        local before = live_bytes()
        assert.is_number(before)
        local t = tide.zeros({ 1024 * 1024 }) -- luacheck: ignore 231 (4 MB, held until the collection below)
        assert.is_true(live_bytes() - before >= 4 * MB)
        t = nil -- luacheck: ignore
        collectgarbage()
        collectgarbage()
        assert.is_true(live_bytes() - before < MB)
    end)

    it("3000 iterations of a 4 MB tensor peak below 600 MB resident", function()
        collectgarbage()
        collectgarbage()
        local start_live = live_bytes()
        local start_rss = H.proc_status_kb("VmRSS")
        local peak_rss = start_rss or 0
        local acc = 0
        for i = 1, 3000 do
            local t = tide.full({ 1024 * 1024 }, i) -- writes every page
            acc = acc + t:get(0)
            if i % 50 == 0 then
                local rss = H.proc_status_kb("VmRSS")
                if rss and rss > peak_rss then peak_rss = rss end
            end
        end
        assert.is_true(acc == acc)
        local hwm = H.proc_status_kb("VmHWM")
        assert.is_true(peak_rss < 600 * 1024,
            string.format("resident set reached %.0f MB", peak_rss / 1024))
        if hwm then
            assert.is_true(hwm < 600 * 1024, string.format("VmHWM %.0f MB", hwm / 1024))
        end
        collectgarbage()
        collectgarbage()
        local end_live = live_bytes()
        assert.is_true(math.abs(end_live - start_live) < MB,
            string.format("live bytes %d at the start, %d at the end", start_live, end_live))
    end)

    it("the same with zeros and arithmetic temporaries", function()
        collectgarbage()
        collectgarbage()
        local start_live = live_bytes()
        local x = tide.zeros({ 1024 * 1024 })
        for _ = 1, 1000 do
            local y = (x + 1) * 2 -- two 4 MB temporaries each time
            x:copy_(y - 2)
        end
        local rss = H.proc_status_kb("VmRSS")
        assert.is_true(rss == nil or rss < 600 * 1024, string.format("VmRSS %.0f MB", (rss or 0) / 1024))
        assert.are.equal(0, x:sum():item())
        x = nil -- luacheck: ignore
        collectgarbage()
        collectgarbage()
        assert.is_true(math.abs(live_bytes() - start_live) < MB)
    end)

    it("peak bytes are reported and at least the live bytes", function()
        local m = tide.memory("cpu")
        if type(m) == "table" then
            local peak = m.peak_bytes or m.peak or m[2]
            assert.is_number(peak)
            assert.is_true(peak >= live_bytes())
        else
            local _, peak = tide.memory("cpu")
            assert.is_number(peak)
            assert.is_true(peak >= live_bytes())
        end
    end)
end)
