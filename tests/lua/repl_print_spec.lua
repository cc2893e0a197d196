-- What the REPL shows: shapes that print as {2, 3} and stay plain
-- sequences, and tide.print's show laying out tables (state dicts, nested
-- and long results) within its depth and length limits.
local tide = require "tide"
local show = require("tide.print").show

describe("shape tables", function()
    it("print as {2, 3} through plain print and tostring", function()
        local x = tide.zeros({ 2, 3 })
        assert.are.equal("{2, 3}", tostring(x:shape()))
        assert.are.equal("{2, 3}", tostring(x:size()))
        assert.are.equal("{3, 1}", tostring(x:stride()))
        assert.are.equal("{}", tostring(tide.tensor(1.5):shape()))
        assert.are.equal("{5}", tostring(tide.zeros({ 5 }):shape()))
    end)

    it("stay ordinary sequences: index, #, ipairs, concat, reuse as a shape", function()
        local s = tide.zeros({ 4, 5, 6 }):shape()
        assert.are.equal("table", type(s))
        assert.are.equal(3, #s)
        assert.are.equal(5, s[2])
        local seen = {}
        for i, v in ipairs(s) do seen[i] = v end
        assert.are.same({ 4, 5, 6 }, seen)
        assert.are.equal("4x5x6", table.concat(s, "x"))
        assert.are.same({ 4, 5, 6 }, tide.ones(s):shape())
        s[4] = 7 -- a copy the caller owns
        assert.are.same({ 4, 5, 6 }, tide.zeros({ 4, 5, 6 }):shape())
    end)

    it("compare by value with == (torch.Size), not by identity", function()
        local a, b = tide.zeros({ 2, 3 }), tide.ones({ 2, 3 })
        assert.is_true(a:shape() == b:shape())
        assert.is_true(a:shape() == { 2, 3 })
        assert.is_false(a:shape() == { 3, 2 })
        assert.is_false(a:shape() == { 2, 3, 1 })
        assert.is_false(a:shape() == tide.zeros({ 2 }):shape())
    end)

    it("size(dim) and stride(dim) still give numbers, with dim errors named", function()
        local x = tide.zeros({ 2, 3 })
        assert.are.equal(3, x:size(-1))
        assert.are.equal(1, x:stride(1))
        local ok, err = pcall(x.stride, x, 5)
        assert.is_false(ok)
        assert.matches("stride", err)
        ok, err = pcall(tide.tensor(1).size, tide.tensor(1), 0)
        assert.is_false(ok)
        assert.matches("0%-dim", err)
    end)
end)

describe("show", function()
    it("prints numbers, strings and tensors as print does", function()
        assert.are.equal("3\thi\tnil", show(3, "hi", nil))
        local x = tide.ones({ 2 })
        assert.are.equal(tostring(x), show(x))
    end)

    it("lays out a short table on one line, a shape as {2, 3}", function()
        assert.are.equal("{2, 3}", show(tide.zeros({ 2, 3 }):shape()))
        assert.are.equal("{1, 2, a = true, b = \"x\\ny\"}", show({ 1, 2, b = "x\ny", a = true }))
        assert.are.equal("{}", show({}))
        assert.are.equal("{[2.5] = 2, [\"a b\"] = 1}", show({ ["a b"] = 1, [2.5] = 2 }))
    end)

    it("shows a state_dict as names, shapes and dtypes, in natural order", function()
        local nn = tide.nn
        local layers = {}
        for i = 1, 11 do layers[i] = nn.Linear(3, 3) end
        local text = show(nn.Sequential(table.unpack(layers)):state_dict())
        assert.matches('%["0%.weight"%] = tensor%(shape=%(3,3%), dtype=float32, device=cpu%)', text)
        assert.matches('%["10%.bias"%] = tensor%(shape=%(3%), dtype=float32', text)
        assert.is_nil(text:find("%d%.%d%d%d%d")) -- no values
        assert.is_true(text:find('"2.weight"', 1, true) < text:find('"10.weight"', 1, true))
        assert.are.equal("{", text:sub(1, 1))
        for line in text:gmatch("[^\n]+") do assert.is_true(#line <= 80, line) end
    end)

    it("shows a 0-dim tensor inside a table with its value", function()
        local text = show({ loss = tide.tensor(0.25) })
        assert.matches("loss = tensor%(0%.2500, shape=%(%)", text)
    end)

    it("stops at a depth and a length, and at cycles", function()
        local deep = { a = { b = { c = { d = { e = 1 } } } } }
        assert.are.equal("{a = {b = {c = {d = {...}}}}}", show(deep))
        local long = {}
        for i = 1, 1000 do long[i] = i end
        local text = show(long)
        assert.matches("%.%.%. 960 more\n}$", text)
        assert.is_true(#text < 400)
        local cyc = { 1 }
        cyc.me = cyc
        assert.are.equal("{1, me = {<cycle>}}", show(cyc))
    end)

    it("uses a table's own __tostring (modules), indenting its lines", function()
        local m = tide.nn.Sequential(tide.nn.Linear(2, 2), tide.nn.ReLU())
        assert.are.equal(tostring(m), show(m))
        local text = show({ model = m })
        assert.matches("^{\n  model = Sequential%(\n", text)
    end)
end)
