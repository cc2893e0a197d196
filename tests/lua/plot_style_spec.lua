-- What tide.plot hands gnuplot (captured through Plot._render, so these
-- run without gnuplot): integer ticks for integer x, headroom above an
-- autoscaled top, a distinct colour, dash and point shape per series, and
-- one style per variant across every plot of an experiment's report; and
-- the experiment's text tables, which right-align columns of numbers.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local P = tide.plot
local X = tide.experiment

local tmpdir, remove_tmpdirs = H.tmpdirs()
teardown(remove_tmpdirs)

-- the script and data of each plot call, in order
local function capture(fn)
    local calls = {}
    local saved_render, saved_available = P._render, P.available
    P._render = function(kind, path, script, data)
        calls[#calls + 1] = {kind = kind, path = path, script = script, data = data}
    end
    P.available = function() return true end
    local ok, err = pcall(fn)
    P._render, P.available = saved_render, saved_available
    assert(ok, err)
    return calls
end

local function one(fn) return capture(fn)[1].script end

-- the plot clauses of a script, one per series, in order
local function clauses(script)
    local out = {}
    local body = script:match("\nplot (.-)%s*$")
    for c in (body .. ", \\\n"):gmatch("(.-),%s*\\\n%s*") do out[#out + 1] = c end
    return out
end

local function field(clause, key, pattern)
    return clause:match(" " .. key .. " " .. (pattern or "(%S+)"))
end

describe("plot.lines axes", function()
    it("gives integer x integer ticks, and a single epoch a range around it", function()
        local s = one(function()
            P.lines{path = "a.png", series = {{name = "ce", x = {1, 2, 3, 4, 5}, y = {0.5, 0.6, 0.7, 0.8, 0.9}}}}
        end)
        assert.matches("\nset xtics 1\n", s, 1, true)
        assert.matches("\nset xrange [1:5]\n", s, 1, true)
        assert.matches("\nset format x '%.0f'\n", s, 1, true)
        s = one(function() P.lines{path = "a.png", series = {{name = "ce", x = {1}, y = {0.5}}}} end)
        assert.matches("\nset xtics 1\n", s, 1, true)
        assert.matches("\nset xrange [0.5:1.5]\n", s, 1, true)
        -- many steps: a round step giving at most 10 ticks
        local x, y = {}, {}
        for i = 1, 63 do x[i], y[i] = 10 * i, 1 / i end
        s = one(function() P.lines{path = "a.png", series = {{name = "ce", x = x, y = y}}} end)
        assert.matches("\nset xtics 100\n", s, 1, true)
        -- fractional x: gnuplot's own ticks
        s = one(function() P.lines{path = "a.png", series = {{name = "ce", x = {0.05, 0.15}, y = {1, 2}}}} end)
        assert.is_nil(s:find("set xtics", 1, true))
        assert.is_nil(s:find("set xrange", 1, true))
    end)

    it("leaves headroom above an autoscaled linear y axis only", function()
        local curves = {{name = "ce", x = {1, 2}, y = {0.9, 1.0}}}
        local s = one(function() P.lines{path = "a.png", series = curves} end)
        assert.matches("\nset offsets 0, 0, graph 0.05, 0\n", s, 1, true)
        s = one(function() P.lines{path = "a.png", series = curves, logy = true} end)
        assert.is_nil(s:find("set offsets", 1, true))
        s = one(function() P.lines{path = "a.png", series = curves, yrange = {0, 1.05}} end)
        assert.is_nil(s:find("set offsets", 1, true))
        assert.matches("\nset yrange [0:1.05]\n", s, 1, true)
        s = one(function()
            P.bars{path = "b.png", categories = {"a", "b"}, series = {{name = "ce", values = {1, 0.5}}}}
        end)
        assert.matches("\nset yrange [0:*]\nset offsets 0, 0, graph 0.05, 0\n", s, 1, true)
        s = one(function()
            P.reliability{path = "r.png", series = {{name = "ce", bins = {{lo = 0.9, hi = 1, count = 3,
                                                                            confidence = 0.95, accuracy = 1}}}}}
        end)
        assert.matches("\nset xrange [0:1.05]\nset yrange [0:1.05]\n", s, 1, true)
    end)
end)

describe("plot styles", function()
    it("draws every series of a chart in its own colour, dash and point shape", function()
        local series = {}
        for i = 1, 5 do series[i] = {name = "s" .. i, x = {1, 2}, y = {1, 1}} end
        local c = clauses(one(function() P.lines{path = "a.png", series = series} end))
        assert.are.equal(5, #c)
        local seen = {color = {}, dt = {}, pt = {}}
        for i, clause in ipairs(c) do
            local color, dt, pt = field(clause, "lc rgb", "'(#%x+)'"), field(clause, "dt"), field(clause, "pt")
            assert.are.equal(P.style(i).color, color)
            assert.are.equal(tostring(P.style(i).dash), dt)
            assert.are.equal(tostring(P.style(i).point), pt)
            for k, v in pairs({color = color, dt = dt, pt = pt}) do
                assert.is_nil(seen[k][v], string.format("series %d repeats %s %s", i, k, v))
                seen[k][v] = true
            end
        end
        -- later lines thinner, so one drawn over another leaves its edge
        assert.is_true(tonumber(field(c[1], "lw")) > tonumber(field(c[5], "lw")))
    end)

    it("takes a series' style index and its own colour, dash and point", function()
        local c = clauses(one(function()
            P.lines{path = "a.png", series = {{name = "a", y = {1, 2}, style = 3},
                                              {name = "b", y = {1, 2}, style = 3, color = "#000000", dash = 5,
                                               point = 1}}}
        end))
        assert.are.equal(P.style(3).color, field(c[1], "lc rgb", "'(#%x+)'"))
        assert.are.equal(tostring(P.style(3).dash), field(c[1], "dt"))
        assert.are.equal("#000000", field(c[2], "lc rgb", "'(#%x+)'"))
        assert.are.equal("5", field(c[2], "dt"))
        assert.are.equal("1", field(c[2], "pt"))
        local b = clauses(one(function()
            P.bars{path = "b.png", categories = {"x"}, series = {{name = "a", values = {1}, style = 2}}}
        end))
        assert.are.equal(P.style(2).color, field(b[1], "lc rgb", "'(#%x+)'"))
    end)

    it("rejects a bad style, colour, dash or point", function()
        local function e(s) return H.error_of(P.lines, {path = "x.png", series = {s}}) end
        assert.matches("series 1: style must be a positive integer", e({y = {1}, style = 0}), 1, true)
        assert.matches("series 1: dash must be a positive integer", e({y = {1}, dash = 1.5}), 1, true)
        assert.matches("series 1: color must be a string '#rrggbb'", e({y = {1}, color = "red'; !rm"}), 1, true)
        assert.matches("bad argument #1 to 'style'", H.error_of(P.style, 0), 1, true)
    end)
end)

describe("experiment plots", function()
    it("keep one style per variant in every plot, whichever variants a plot shows", function()
        local cfg = assert(X.parse_args({"--out", tmpdir(), "--epochs", "2"},
                                        {name = "styles", defaults = {epochs = 2, model = "mlp"}}))
        local ex = X.new(cfg, {quiet = true})
        for i, name in ipairs({"ce", "mse", "focal"}) do
            ex:variant(name, function()
                for e = 1, 2 do ex:log{epoch = e, test_acc = 0.5 + 0.1 * i + 0.01 * e} end
            end)
        end
        assert.are.same({1, 2, 3, nil}, {ex:style("ce"), ex:style("mse"), ex:style("focal"), ex:style("other")})
        local calls = capture(function()
            ex:plot_curves{field = "test_acc"}
            ex:plot_curves{field = "test_acc", file = "two.png", variants = {"mse", "focal"}}
        end)
        local all, two = clauses(calls[1].script), clauses(calls[2].script)
        assert.are.equal(3, #all)
        assert.are.equal(2, #two)
        local function color_of(c, name)
            for _, clause in ipairs(c) do
                if clause:match("title '" .. name .. "'$") then return field(clause, "lc rgb", "'(#%x+)'") end
            end
        end
        assert.are.equal(P.style(2).color, color_of(all, "mse"))
        assert.are.equal(P.style(2).color, color_of(two, "mse"))
        assert.are.equal(P.style(3).color, color_of(all, "focal"))
        assert.are.equal(P.style(3).color, color_of(two, "focal"))
        assert.matches("\nset xtics 1\n", calls[1].script, 1, true)
    end)
end)

describe("experiment text tables", function()
    it("right-align a column of numbers that holds inf, NaN or none", function()
        local text = X.format_table{columns = {"case", "loss", "from"},
                                    rows = {{"a", "2.4076", "100"}, {"b", "inf", "none"}, {"c", "200.0000", "1000"}}}
        assert.are.equal("case      loss  from\n" ..
                         "----  --------  ----\n" ..
                         "a       2.4076   100\n" ..
                         "b          inf  none\n" ..
                         "c     200.0000  1000\n", text)
    end)
end)
