-- tide.progress: the terminal bar and the plain lines, written to a fake
-- stream with an injected clock; TIDE_PROGRESS through a child tide.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local P = tide.progress

-- a stream that keeps what is written, and a clock that we move
local function fake()
    local s = {out = {}, flushes = 0}
    function s:write(...)
        for _, v in ipairs({...}) do self.out[#self.out + 1] = v end
        return self
    end
    function s:flush() self.flushes = self.flushes + 1 end
    function s:text() return table.concat(self.out) end
    local c = {t = 100}
    local function clock() return c.t end
    return s, c, clock
end

describe("progress bar on a terminal", function()
    it("redraws one line with count, rate, ETA and stats", function()
        local s, c, clock = fake()
        local bar = P.new{total = 60000, desc = "ce 1/10", unit = "img", stream = s, mode = "bar",
                          clock = clock, width = 10, order = {"loss", "acc"}}
        c.t = 100.05
        bar:update(1000, {loss = 0.9})          -- within the interval: nothing drawn
        assert.are.equal("", s:text())
        c.t = 102.5
        bar:update(2200, {loss = 0.53, acc = 0.91})
        -- 3200 in 2.5 s = 1280 img/s; 56800 left = 44.4 s
        assert.are.equal("\rce 1/10 [..........] 3200/60000 1280 img/s ETA 0:44 loss 0.530 acc 0.910", s:text())
        assert(s.flushes >= 1)
        c.t = 150
        s.out = {}
        bar:update(56800, {loss = 0.25})
        assert.are.equal("\rce 1/10 [##########] 60000/60000 1200 img/s ETA 0:00 loss 0.250 acc 0.910", s:text())
        s.out = {}
        c.t = 160
        bar:close()
        -- shorter than the line before: padded to wipe it, then a newline
        local final = "ce 1/10 [##########] 60000/60000 1000 img/s in 1:00 loss 0.250 acc 0.910"
        assert.are.equal("\r" .. final .. " \n", s:text())
        bar:close() -- twice is fine
        assert.has_error(function() bar:update(1) end, "tide.progress: update after close")
    end)

    it("orders new stats by first appearance, alphabetically within one update", function()
        local s, c, clock = fake()
        local bar = P.new{total = 10, stream = s, mode = "bar", clock = clock, width = 4, interval = 0}
        c.t = 101
        bar:update(1, {z = 1, b = 2.5})
        bar:update(2, {a = 1e-5, b = 123456.0, lr = "cos"})
        assert.are.equal("\r[....] 1/10 1.00 it/s ETA 0:09 b 2.500 z 1" ..
            "\r[#...] 3/10 3.00 it/s ETA 0:02 b 1.23e+05 z 1 a 1e-05 lr cos", s:text())
    end)

    it("counts without a total", function()
        local s, c, clock = fake()
        local bar = P.new{stream = s, mode = "bar", clock = clock, interval = 0, unit = "batch"}
        c.t = 3700
        bar:update(360)
        assert.are.equal("\r360 0.10 batch/s 1:00:00", s:text())
    end)
end)

describe("progress as plain lines", function()
    it("writes a line every interval and one at close", function()
        local s, c, clock = fake()
        local bar = P.new{total = 1000, desc = "mse", unit = "img", stream = s, clock = clock}
        assert.are.equal("plain", bar.mode)   -- a table is no terminal
        assert.are.equal(10, bar.interval)
        for _ = 1, 9 do
            c.t = c.t + 1
            bar:update(50, {loss = 1.5})
        end
        assert.are.equal("", s:text())       -- 9 s: nothing yet
        c.t = c.t + 1
        bar:update(50, {loss = 1.25})
        assert.are.equal("mse 500/1000 (50%) 50.0 img/s ETA 0:10 loss 1.250\n", s:text())
        c.t = c.t + 5
        bar:update(500)
        assert.are.equal(1, #s.out)            -- finishing is not a reason in plain mode
        bar:close()
        assert.are.equal("mse 1000/1000 (100%) 66.7 img/s in 0:15 loss 1.250\n", s.out[2])
    end)

    it("prints nothing when off", function()
        local s, c, clock = fake()
        local bar = P.new{total = 3, stream = s, clock = clock, mode = "off", interval = 0}
        c.t = 200
        bar:update(3, {loss = 1})
        bar:close()
        assert.are.equal("", s:text())
        assert.are.equal(3, bar.count)
    end)

    it("closes with <close>", function()
        local s, _, clock = fake()
        do
            local bar <close> = P.new{total = 2, stream = s, clock = clock, mode = "plain"}
            bar:update(2)
        end
        assert.are.equal("2/2 (100%) ? it/s in 0:00\n", s:text())
    end)
end)

describe("progress detection and arguments", function()
    local tide_cmd = arg and arg[-1] or "tide"

    local function run(env, code)
        local f = assert(io.popen(env .. " '" .. tide_cmd .. "' -e '" .. code .. "' 2>&1"))
        local out = f:read("a")
        f:close()
        return out
    end

    it("follows TIDE_PROGRESS and a pipe", function()
        local code = 'local b = require(\"tide\").progress.new{total = 2}; print(b.mode, b.interval)'
        assert.are.equal("plain\t10\n", run("TIDE_PROGRESS=", code))
        assert.are.equal("off\t10\n", run("TIDE_PROGRESS=off", code))
        assert.are.equal("bar\t0.1\n", run("TIDE_PROGRESS=bar", code))
        assert.matches("TIDE_PROGRESS must be bar, plain or off, got 'fancy'", run("TIDE_PROGRESS=fancy", code), 1,
            true)
    end)

    it("asks the C core whether a file is a terminal", function()
        local core = require "tide.core"
        local f = io.tmpfile()
        assert.is_false(core.isatty(f))
        assert.is_false(core.isatty({}))
        assert.is_boolean(core.isatty("stdout"))
        assert.is_boolean(core.isatty(2))
        f:close()
        assert.is_false(core.isatty(f))
        assert.matches("expected \"stdin\", \"stdout\" or \"stderr\"", H.error_of(core.isatty, "tty"), 1, true)
    end)

    it("rejects bad arguments", function()
        assert.matches("bad argument #1 to 'new' (unknown option 'totl'; known: clock",
            H.error_of(P.new, {totl = 3}), 1, true)
        assert.matches("total must be a number >= 0", H.error_of(P.new, {total = -1}), 1, true)
        assert.matches("mode must be", H.error_of(P.new, {mode = "tty"}), 1, true)
        assert.matches("stream must be a file", H.error_of(P.new, {stream = 3}), 1, true)
        local bar = P.new{total = 3, mode = "off"}
        assert.matches("bad argument #1 to 'update' (n must be a number >= 0, got -1)",
            H.error_of(bar.update, bar, -1), 1, true)
        assert.matches("stats must be a table", H.error_of(bar.update, bar, 1, 0.5), 1, true)
    end)
end)
