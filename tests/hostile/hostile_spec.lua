-- Every reader tide has, against hostile files (tests/hostile/generate.lua
-- writes them, in a child tide, before the first case): each must be a Lua
-- error that names the file and the problem, in this same process, which
-- must survive them all with its peak resident set under 200 MB. A control
-- of each format must still load, with the values written.
--
-- ctest runs this under an address-space limit (tests/CMakeLists.txt), so
-- an allocation a file does not justify fails with an error here rather
-- than succeeding on a machine with memory to spare. Under ASan, which
-- keeps freed memory in quarantine and shadows every byte, the RSS bounds
-- mean nothing: TIDE_HOSTILE_NO_RSS=1 turns them off (the errors are still
-- checked, and ASan checks every read).
-- luacheck: std +busted
local tide = require "tide"
local G = dofile("tests/hostile/generate.lua")

-- `tide busted ...`: the tide running busted (for the generator's process)
local TIDE = arg and arg[-1] or "tide"
local MAX_RSS_KB = 200 * 1024
local CHECK_RSS = os.getenv("TIDE_HOSTILE_NO_RSS") ~= "1"

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function status()
    local f = assert(io.open("/proc/self/status"))
    local s = f:read("a")
    f:close()
    local function kb(key) return assert(tonumber(s:match(key .. ":%s*(%d+) kB")), key) end
    return {hwm = kb("VmHWM"), rss = kb("VmRSS"), peak = kb("VmPeak")}
end

-- resets the peak RSS to the current RSS (Linux 4.0 on), so that each
-- case's own peak can be read; false where the kernel refuses
local function reset_peak()
    local f = io.open("/proc/self/clear_refs", "w")
    if not f then return false end
    local ok = f:write("5")
    ok = f:close() and ok
    return ok and status().hwm <= status().rss + 1024
end

local function same(a, b) return a:shape()[1] == b:shape()[1] and a:eq(b):all():item() == 1 end

local root = os.tmpname()
os.remove(root)
local highest = {kb = 0, case = "(none)"}
local started = os.time()

describe("hostile files", function()
    setup(function()
        local ok = os.execute(q(TIDE) .. " tests/hostile/generate.lua " .. q(root) .. " > /dev/null")
        assert(ok, "the generator failed")
    end)
    teardown(function()
        os.execute("rm -rf " .. q(root))
        local s = status()
        io.stderr:write(string.format("hostile: %d cases in %d s; highest peak RSS %.1f MB (%s), VmPeak %.1f MB\n",
            #G.cases, os.time() - started, highest.kb / 1024, highest.case, s.peak / 1024))
    end)

    it("runs under the address-space limit ctest sets", function()
        local want = tonumber(os.getenv("TIDE_HOSTILE_AS_KB") or "")
        if not want then return end -- run by hand, or under ASan (tests/CMakeLists.txt)
        local f = assert(io.open("/proc/self/limits"))
        local soft = f:read("a"):match("Max address space%s+(%d+)")
        f:close()
        assert.are.equal(want * 1024, tonumber(soft))
    end)

    it("has a control and hostile cases for every format", function()
        local controls, hostile = {}, {}
        for _, c in ipairs(G.cases) do
            local t = c.check and controls or hostile
            t[c.kind] = (t[c.kind] or 0) + 1
        end
        for _, kind in ipairs({"idx", "cifar", "safetensors", "checkpoint", "module", "jsonl"}) do
            assert.is_truthy(controls[kind], "no control for " .. kind)
            assert.is_truthy(hostile[kind], "no hostile case for " .. kind)
        end
    end)

    for _, c in ipairs(G.cases) do
        it(c.kind .. ": " .. c.name, function()
            local dir = root .. "/" .. c.name
            local m, opt, before
            if c.model then
                m, opt = G.checkpoint_objects(tide)
                before = {}
                for k, t in pairs(m:state_dict()) do before[k] = t:clone() end
            end
            collectgarbage()
            collectgarbage()
            local exact = reset_peak()
            local base = exact and status().rss or status().hwm
            local t0 = os.clock()
            local r = table.pack(pcall(c.load, tide, dir, m, opt))
            local seconds = os.clock() - t0
            local after = status().hwm
            if after > highest.kb then highest.kb, highest.case = after, c.name end

            if c.check then
                assert(r[1], "the control did not load: " .. tostring(r[2]))
                local ok, why = c.check(table.unpack(r, 2, r.n))
                assert(ok, "the control loaded wrong: " .. tostring(why))
            else
                local err = tostring(r[2])
                assert(not r[1], "a hostile file loaded")
                local path = dir .. "/" .. c.file
                assert(err:find(path, 1, true), "the error does not name " .. path .. ": " .. err)
                for _, want in ipairs(c.expect) do
                    assert(err:find(want, 1, true), "the error does not say '" .. want .. "': " .. err)
                end
                for _, bad in ipairs(c.absent or {}) do
                    assert(not err:find(bad, 1, true), "the error says '" .. bad .. "': " .. err)
                end
            end
            if m then
                for k, t in pairs(m:state_dict()) do
                    assert(same(t, before[k]), "the model's " .. k .. " changed")
                end
                if opt then
                    assert.are.equal(0.5, opt.param_groups[1].lr)
                    assert.is_nil(next(opt.state), "the optimizer gained state")
                end
            end
            if not CHECK_RSS then return end
            assert(after < MAX_RSS_KB, string.format("peak RSS %.1f MB", after / 1024))
            if c.max_growth_kb then
                local grown = after - base
                assert(grown < c.max_growth_kb, string.format("peak RSS grew by %.1f MB while loading (at most %.1f)",
                    grown / 1024, c.max_growth_kb / 1024))
            end
            if c.max_seconds then
                assert(seconds < c.max_seconds, string.format("took %.1f s (at most %g)", seconds, c.max_seconds))
            end
        end)
    end
end)
