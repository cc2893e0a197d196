-- The thread count: TIDE_NUM_THREADS and `tide --threads N` pin it,
-- bad values are refused, set_num_threads is bounded, and the default
-- follows the cores other processes leave free (runtime/threads.c): on a
-- machine of two or more cores, a busy process beside tide takes one
-- thread away within a second, and its end gives it back. Each case runs a
-- tide process of its own, started without the suite's
-- TIDE_FOLLOW_FREE_CORES=0.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local tide = require "tide"

local TIDE = arg and arg[-1] or "tide"
local CLEAN = "env -u TIDE_FOLLOW_FREE_CORES -u TIDE_NUM_THREADS -u OMP_NUM_THREADS "

-- run `tide [opts] -e code` in a clean environment with the variables in
-- vars, after the shell command `before`; its output and status
local function run(vars, opts, code, before)
    local p = assert(io.popen((before or "") .. CLEAN .. vars .. " " .. H.sh(TIDE) .. " " .. opts
                              .. " -e " .. H.sh(code) .. " 2>&1; echo \"rc=$?\""))
    local out = p:read("a")
    p:close()
    local rc = tonumber(out:match("rc=(%d+)%s*$"))
    return out:gsub("rc=%d+%s*$", ""), rc
end

local function cores()
    local p = io.popen("nproc")
    local n = tonumber(p:read("a"))
    p:close()
    return n or 1
end

describe("thread count", function()
    it("TIDE_NUM_THREADS and --threads pin it", function()
        local out, rc = run("TIDE_NUM_THREADS=3", "", "io.write(require('tide').get_num_threads())")
        assert.equal(0, rc, out)
        assert.equal("3", out)
        out, rc = run("", "--threads 1", "io.write(require('tide').get_num_threads())")
        assert.equal(0, rc, out)
        assert.equal("1", out)
        out = run("", "--threads=2", "io.write(require('tide').get_num_threads())")
        assert.equal("2", out)
    end)

    it("refuses counts that are not counts", function()
        local out, rc = run("", "--threads 0", "print(1)")
        assert.is_true(rc ~= 0)
        assert.truthy(out:find("--threads needs a thread count from 1 to", 1, true), out)
        out, rc = run("", "--threads", "")
        assert.is_true(rc ~= 0)
        assert.truthy(out:find("--threads needs a thread count", 1, true), out)
        out, rc = run("TIDE_NUM_THREADS=lots", "", "io.write(require('tide').get_num_threads())")
        assert.equal(0, rc, out)
        assert.truthy(out:find("TIDE_NUM_THREADS=lots is not a thread count", 1, true), out)
        local e = H.error_of(function() tide.set_num_threads(100000) end)
        assert.truthy(e:find("set_num_threads", 1, true) and e:find("more than 4 per online CPU", 1, true), e)
        e = H.error_of(function() tide.set_num_threads(0) end)
        assert.truthy(e:find("at least 1", 1, true), e)
    end)

    it("follows the cores a busy process leaves free", function()
        local n = cores()
        if n < 2 then
            print("# skipped: one core, nothing to follow")
            return
        end
        -- a tide that reports its count every 100 ms for 4 s; a busy loop
        -- runs from 0.8 s to 2.4 s of it
        local code = [[
            local tide = require "tide"
            local t0 = tide.clock()
            local function at(s) while tide.clock() - t0 < s do end end
            local seen = {}
            for i = 1, 40 do
                at(i * 0.1)
                seen[#seen + 1] = tide.get_num_threads()
            end
            io.write(table.concat(seen, " "))
        ]]
        local busy = "(sleep 0.8; timeout 1.6 sh -c 'while :; do :; done') & "
        -- whatever else runs on the machine moves the count too: a try
        -- that did not start on every core says nothing, and is retried
        local tries, last = 0, nil
        for _ = 1, 4 do
            local out, rc = run("", "", code, busy)
            assert.equal(0, rc, out)
            local seen = {}
            for v in out:gmatch("%d+") do seen[#seen + 1] = tonumber(v) end
            assert.equal(40, #seen, out)
            last = out
            if seen[6] == n then
                tries = tries + 1
                -- during (from 0.8 s; two 200 ms windows to agree, and slack)
                local low = math.huge
                for i = 16, 24 do low = math.min(low, seen[i]) end
                -- after (from 2.4 s)
                if low == n - 1 and seen[40] == n then return end
            end
        end
        if tries == 0 then
            print("# skipped: the machine was never quiet: " .. last)
            return
        end
        error("the count did not follow the busy process: " .. last)
    end)

    it("set_num_threads pins it, busy or not", function()
        local out, rc = run("", "", [[
            local tide = require "tide"
            tide.set_num_threads(2)
            local t0 = tide.clock()
            while tide.clock() - t0 < 1 do end
            io.write(tide.get_num_threads())
        ]], "(timeout 2 sh -c 'while :; do :; done') & ")
        assert.equal(0, rc, out)
        assert.equal("2", out)
    end)
end)
