-- tide.plot: PNGs through gnuplot (where it is installed), the CSV
-- fallback (forced with TIDE_NO_GNUPLOT=1 in a child tide), quoting of
-- paths and titles, and bad arguments.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local P = tide.plot

local TIDE = arg and arg[-1] or "tide"

local sh = H.sh
local tmpdir, remove_tmpdirs = H.tmpdirs()
teardown(remove_tmpdirs)

local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() end
    return f ~= nil
end

local function check_png(path)
    local bytes = H.read_file(path)
    assert.are.equal("\137PNG\r\n\26\n", bytes:sub(1, 8))
    assert(#bytes > 5000, string.format("%s is only %d bytes", path, #bytes))
end

local curves = {
    {name = "ce", x = {1, 2, 3}, y = {0.71, 0.8, 0.85}},
    {name = "mse", x = {1, 2, 3}, y = {0.6, 0.75, 0 / 0}},
}
local classes = {"T-shirt/top", "Trouser", "Pullover"}
local per_class = {{name = "ce", values = {0.9, 0.95, 0.5}}, {name = "focal, g=2", values = {0.88, 0.96, 0 / 0}}}

-- reliability bins as tide.metrics gives them
local function bins()
    tide.manual_seed(3)
    local y = tide.randint(0, 10, {2000})
    local x = tide.randn({2000, 10}) * 3
    return tide.metrics.reliability(x, y, {bins = 10})
end

describe("plot with gnuplot", function()
    it("knows whether gnuplot is there", function()
        assert.is_boolean(P.available())
        assert.are.equal(P.available(), P.available())
    end)

    local dir = tmpdir()
    -- a folder whose name would run a command if a path reached the shell raw
    local odd = dir .. "/it's a $(touch pwned) dir"
    local png = function(name) return odd .. "/" .. name end

    it("draws line charts", function()
        if not P.available() then pending("gnuplot with pngcairo is not installed") return end
        local path = png("acc.png")
        assert.are.equal(path, P.lines{path = path, title = "it's 'quoted' $(x) a_b", xlabel = "epoch",
                                       ylabel = "accuracy", series = curves})
        check_png(path)
        -- no x: 1, 2, ...; log scale
        check_png(P.lines{path = png("loss.png"), logy = true, series = {{name = "ce", y = {2, 1, 0.5, 0.25}}},
                          yrange = {0.1, 3}})
        assert.is_false(exists("pwned"))
        assert.is_false(exists(dir .. "/pwned"))
    end)

    it("draws grouped bars and reliability diagrams", function()
        if not P.available() then pending("gnuplot with pngcairo is not installed") return end
        check_png(P.bars{path = png("per_class.png"), title = "per class", ylabel = "accuracy",
                         categories = classes, series = per_class})
        local b = bins()
        check_png(P.reliability{path = png("rel1.png"), title = "ce", series = {{name = "ce", bins = b}}})
        check_png(P.reliability{path = png("rel2.png"), series = {{name = "ce", bins = b}, {name = "ls", bins = b}}})
    end)

    it("reports gnuplot's own errors", function()
        if not P.available() then pending("gnuplot with pngcairo is not installed") return end
        local e = H.error_of(P.lines, {path = "/proc/nonexistent/x.png", series = curves})
        assert.matches("gnuplot failed writing /proc/nonexistent/x.png", e, 1, true)
    end)
end)

describe("plot without gnuplot", function()
    it("writes CSV and says so once", function()
        local dir = tmpdir()
        local script = dir .. "/fallback.lua"
        local f = assert(io.open(script, "w"))
        f:write([[
local P = require("tide").plot
local dir, curves, classes, per_class = ...
assert(P.available() == false)
print(P.lines{path = dir .. "/out/acc.png", xlabel = "epoch", series = curves})
print(P.lines{path = dir .. "/out/ragged.png",
    series = {{name = "a", x = {1, 2}, y = {3, 4}}, {name = "b", x = {1}, y = {5}}}})
print(P.bars{path = dir .. "/out/per_class.png", categories = classes, series = per_class})
print(P.reliability{path = dir .. "/rel", series = {{name = "ce", bins = {
    {lo = 0, hi = 0.5, count = 0}, {lo = 0.5, hi = 1, count = 4, confidence = 0.75, accuracy = 0.5}}}}})
]])
        f:close()
        -- the child runs the script with the same tables
        local code = "local nan = 0/0; local f = loadfile(" .. string.format("%q", script) .. "); f(" ..
            string.format("%q", dir) .. ", {{name = 'ce', x = {1, 2, 3}, y = {0.71, 0.8, 0.85}}, " ..
            "{name = 'mse', x = {1, 2, 3}, y = {0.6, 0.75, nan}}}, {'T-shirt/top', 'Trouser', 'Pullover'}, " ..
            "{{name = 'ce', values = {0.9, 0.95, 0.5}}, {name = 'focal, g=2', values = {0.88, 0.96, nan}}})"
        local p = assert(io.popen("TIDE_NO_GNUPLOT=1 " .. sh(TIDE) .. " -e " .. sh(code) .. " 2>&1"))
        local out = p:read("a")
        assert(p:close(), out)
        local notice = "tide.plot: gnuplot not found (apt-get install gnuplot-nox); writing CSV data instead: "
            .. dir .. "/out/acc.csv\n"
        assert.are.equal(notice .. dir .. "/out/acc.csv\n" .. dir .. "/out/ragged.csv\n" ..
            dir .. "/out/per_class.csv\n" .. dir .. "/rel.csv\n", out)
        assert.are.equal("epoch,ce,mse\n1,0.71,0.6\n2,0.8,0.75\n3,0.85,NaN\n", H.read_file(dir .. "/out/acc.csv"))
        assert.are.equal("a x,a,b x,b\n1,3,1,5\n2,4,,\n", H.read_file(dir .. "/out/ragged.csv"))
        assert.are.equal('category,ce,"focal, g=2"\nT-shirt/top,0.9,0.88\nTrouser,0.95,0.96\nPullover,0.5,NaN\n',
            H.read_file(dir .. "/out/per_class.csv"))
        assert.are.equal("lo,hi,ce confidence,ce accuracy,ce count\n0,0.5,,,0\n0.5,1,0.75,0.5,4\n",
            H.read_file(dir .. "/rel.csv"))
    end)
end)

describe("plot rejects bad arguments", function()
    local function e(fn, opts) return H.error_of(fn, opts) end
    it("names the function and the problem", function()
        assert.matches("bad argument #1 to 'lines' (path is required", e(P.lines, {series = curves}), 1, true)
        assert.matches("bad argument #1 to 'bars' (path is required", e(P.bars, {path = "", series = per_class,
            categories = classes}), 1, true)
        assert.matches("series 2 ('b') has 3 x values but 2 y values", e(P.lines, {path = "x.png",
            series = {{name = "a", y = {1}}, {name = "b", x = {1, 2, 3}, y = {1, 2}}}}), 1, true)
        assert.matches("series must be a non-empty list", e(P.lines, {path = "x.png", series = {}}), 1, true)
        assert.matches("unknown option 'titel'", e(P.lines, {path = "x.png", series = curves, titel = "a"}), 1, true)
        assert.matches("series 1 ('a') y: value 2 is a string", e(P.lines, {path = "x.png",
            series = {{name = "a", y = {1, "2"}}}}), 1, true)
        assert.matches("series 1 ('a') has 0 x values but 1 y values", e(P.lines, {path = "x.png",
            series = {{name = "a", x = {}, y = {1}}}}), 1, true)
        assert.matches("bad argument #1 to 'bars' (series 2 ('focal, g=2') has 3 values for 2 categories",
            e(P.bars, {path = "x.png", categories = {"a", "b"},
                series = {{name = "ce", values = {1, 2}}, per_class[2]}}),
            1, true)
        assert.matches("categories must be a non-empty list", e(P.bars, {path = "x.png", series = per_class}), 1, true)
        assert.matches("bad argument #1 to 'reliability' (series 1 ('ce'): bins must be the list",
            e(P.reliability, {path = "x.png", series = {{name = "ce", bins = {}}}}), 1, true)
        assert.matches("bin 1 needs numbers lo, hi and count",
            e(P.reliability, {path = "x.png", series = {{name = "ce", bins = {{lo = 0}}}}}), 1, true)
        assert.matches("expected a table of options", e(P.lines, "x.png"), 1, true)
    end)
end)
