-- ctc_loss against PyTorch 1.13 (tests/reference/losses_ctc.json, written by
-- tests/reference/gen_losses_ctc.py): losses and the gradient of
-- (loss * w):sum() w.r.t. log_probs; a gradcheck through log_softmax; bad
-- input; the same bits at 1 and 2 threads; nn.CTCLoss.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"

local F = tide.F
local data = cjson.decode(H.read_file("tests/reference/losses_ctc.json"))

local function lengths(v, as)
    v = H.ints(v)
    if as == "tensor" then return tide.tensor(v, "int64") end
    return v
end

local function tol(dtype)
    return dtype == "float64" and H.F64 or H.F32
end

describe("ctc_loss reference cases", function()
    it("has cases", function() assert.is_true(#data.cases >= 20) end)
    for _, c in ipairs(data.cases) do
        it(c.name, function()
            local lp = H.tensor(c.log_probs)
            if c.transpose then lp = lp:transpose(0, 1) end
            lp.requires_grad = true
            local tg = H.tensor(c.targets)
            local o = c.options
            local loss = F.ctc_loss(lp, tg, lengths(c.input_lengths, c.lengths_as),
                lengths(c.target_lengths, c.lengths_as),
                { blank = math.tointeger(o.blank), reduction = o.reduction, zero_infinity = o.zero_infinity })
            local t = tol(c.log_probs.dtype)
            H.check_tensor(loss, c.loss, t.rtol, t.atol, c.name .. " loss")
            local weighted = loss * H.tensor(c.weight)
            weighted:sum():backward()
            H.check_tensor(lp.grad, c.grad, t.rtol, t.atol, c.name .. " grad")
        end)
    end
end)

describe("ctc_loss by hand", function()
    local function lp_of(values, dtype)
        return tide.tensor(values, dtype or "float64"):log_softmax(-1)
    end

    it("one frame, one label: the label's log-probability", function()
        local lp = lp_of({ { { 0.3, 1.2, -0.5 } } })
        local l = F.ctc_loss(lp, tide.tensor({ { 1 } }, "int64"), { 1 }, { 1 }, { reduction = "sum" })
        H.assert_close({ l:item() }, { -lp:get(0, 0, 1) })
    end)

    it("an empty input: 0 for an empty target, inf otherwise, zero gradient", function()
        local lp = lp_of({ { { 0.3, 1.2, -0.5 }, { 0.1, 0.2, 0.3 } } })
        lp.requires_grad = true
        local l = F.ctc_loss(lp, tide.tensor({ { 1 }, { 2 } }, "int64"), { 0, 0 }, { 0, 1 }, { reduction = "none" })
        assert.are.same({ 0, math.huge }, l:totable())
        l = F.ctc_loss(lp, tide.tensor({ { 1 }, { 2 } }, "int64"), { 0, 0 }, { 0, 1 },
            { reduction = "sum", zero_infinity = true })
        assert.are.equal(0, l:item())
        l:backward()
        assert.are.same({ 0, 0, 0, 0, 0, 0 }, H.values(lp.grad))
    end)

    it("an empty batch: mean is NaN, sum is 0", function()
        local lp = tide.zeros({ 3, 0, 4 }, { dtype = "float64" })
        local tg = tide.zeros({ 0, 2 }, { dtype = "int64" })
        local m = F.ctc_loss(lp, tg, {}, {})
        assert.is_true(m:item() ~= m:item())
        assert.are.equal(0, F.ctc_loss(lp, tg, {}, {}, { reduction = "sum" }):item())
        assert.are.same({ 0 }, F.ctc_loss(lp, tg, {}, {}, { reduction = "none" }):shape())
    end)

    it("keeps log_probs' dtype", function()
        local lp = tide.randn({ 4, 2, 3 }):log_softmax(2)
        local l = F.ctc_loss(lp, tide.tensor({ 1, 2, 1 }, "int64"), { 4, 4 }, { 2, 1 })
        assert.are.equal("float32", l:dtype())
    end)
end)

describe("ctc_loss gradcheck through log_softmax", function()
    tide.manual_seed(11)
    local function leaf(shape)
        return tide.randn(shape, { dtype = "float64", requires_grad = true })
    end
    local padded = tide.tensor({ { 1, 2, 2 }, { 3, 1, 0 }, { 2, 0, 0 } }, "int64")
    local concat = tide.tensor({ 1, 2, 2, 3, 1, 2 }, "int64")
    local cases = {
        { "padded mean", padded, { 7, 6, 4 }, { 3, 2, 1 }, {} },
        { "padded sum", padded, { 7, 6, 4 }, { 3, 2, 1 }, { reduction = "sum" } },
        { "padded none", padded, { 7, 5, 4 }, { 3, 2, 1 }, { reduction = "none" } },
        { "concat mean", concat, { 7, 6, 4 }, { 3, 2, 1 }, {} },
        { "blank 3", tide.tensor({ { 1, 2, 2 }, { 0, 1, 0 }, { 2, 0, 0 } }, "int64"), { 7, 6, 4 }, { 3, 2, 1 },
            { blank = 3 } },
        { "empty target", padded, { 7, 6, 4 }, { 3, 0, 1 }, { reduction = "sum" } },
        { "zero_infinity", padded, { 7, 2, 4 }, { 3, 2, 1 }, { reduction = "sum", zero_infinity = true } },
    }
    for _, c in ipairs(cases) do
        it(c[1], function()
            local x = leaf { 7, 3, 4 }
            assert.is_true(tide.gradcheck(function(a)
                return F.ctc_loss(a:log_softmax(2), c[2], c[3], c[4], c[5])
            end, { x }))
        end)
    end
    it("unbatched", function()
        local x = leaf { 6, 4 }
        assert.is_true(tide.gradcheck(function(a)
            return F.ctc_loss(a:log_softmax(1), tide.tensor({ 1, 3, 3 }, "int64"), 6, 3, { reduction = "none" })
        end, { x }))
    end)
end)

describe("ctc_loss bad input", function()
    local lp = tide.randn({ 5, 2, 4 }, { dtype = "float64" }):log_softmax(2)
    local tg = tide.tensor({ { 1, 2 }, { 3, 3 } }, "int64")

    local function fails(pattern, fn)
        local err = H.error_of(fn)
        assert(err, "expected an error matching " .. pattern)
        assert(err:find("ctc_loss", 1, true), "error does not name ctc_loss: " .. err)
        assert(err:find(pattern), "error '" .. err .. "' does not match '" .. pattern .. "'")
    end

    it("log_probs of the wrong dims or dtype", function()
        fails("#1.*log_probs must be %(T, N, C%)", function() F.ctc_loss(tide.randn { 5 }, tg, { 5, 5 }, { 2, 2 }) end)
        fails("#1.*log_probs must be %(T, N, C%)", function()
            F.ctc_loss(tide.randn { 5, 2, 4, 1 }, tg, { 5, 5 }, { 2, 2 })
        end)
        fails("#1.*log_probs must be float", function()
            F.ctc_loss(tide.zeros({ 5, 2, 4 }, { dtype = "int64" }), tg, { 5, 5 }, { 2, 2 })
        end)
    end)
    it("lengths of the wrong size", function()
        fails("#3.*input_lengths must hold one length per sample", function() F.ctc_loss(lp, tg, { 5 }, { 2, 2 }) end)
        fails("#4.*target_lengths must hold one length per sample", function()
            F.ctc_loss(lp, tg, { 5, 5 }, { 2, 2, 1 })
        end)
        fails("#3.*input_lengths must hold", function()
            F.ctc_loss(lp, tg, tide.tensor({ { 5, 5 } }, "int64"), { 2, 2 })
        end)
    end)
    it("input lengths outside [0, T]", function()
        fails("#3.*input_lengths%[1%] = 6 is outside %[0, 5%]", function() F.ctc_loss(lp, tg, { 5, 6 }, { 2, 2 }) end)
        fails("#3.*input_lengths%[0%] = %-1", function() F.ctc_loss(lp, tg, { -1, 5 }, { 2, 2 }) end)
    end)
    it("target lengths negative or past S", function()
        fails("#4.*target_lengths%[1%] = %-1 is negative", function() F.ctc_loss(lp, tg, { 5, 5 }, { 2, -1 }) end)
        fails("#4.*target_lengths%[0%] = 3 is more than S = 2", function() F.ctc_loss(lp, tg, { 5, 5 }, { 3, 1 }) end)
        fails("#4.*target_lengths sum to more than the 3", function()
            F.ctc_loss(lp, tide.tensor({ 1, 2, 3 }, "int64"), { 5, 5 }, { 2, 2 })
        end)
    end)
    it("target labels outside [0, C) or blank", function()
        fails("#2.*target 1 of sample 0 is 4, outside %[0, 4%)", function()
            F.ctc_loss(lp, tide.tensor({ { 1, 4 }, { 3, 3 } }, "int64"), { 5, 5 }, { 2, 2 })
        end)
        fails("#2.*target 0 of sample 1 is %-2", function()
            F.ctc_loss(lp, tide.tensor({ { 1, 2 }, { -2, 3 } }, "int64"), { 5, 5 }, { 2, 2 })
        end)
        fails("#2.*target 1 of sample 1 is 0, the blank label", function()
            F.ctc_loss(lp, tide.tensor({ { 1, 2 }, { 3, 0 } }, "int64"), { 5, 5 }, { 2, 2 })
        end)
        fails("#2.*target 0 of sample 1 is 3, the blank label", function()
            F.ctc_loss(lp, tg, { 5, 5 }, { 2, 2 }, { blank = 3 })
        end)
    end)
    it("blank outside [0, C)", function()
        fails("#5.*option 'blank' = 4 is outside %[0, 4%)", function()
            F.ctc_loss(lp, tg, { 5, 5 }, { 2, 2 }, { blank = 4 })
        end)
        fails("#5.*option 'blank' = %-1", function() F.ctc_loss(lp, tg, { 5, 5 }, { 2, 2 }, { blank = -1 }) end)
        fails("#5.*option 'blank' must be an integer", function()
            F.ctc_loss(lp, tg, { 5, 5 }, { 2, 2 }, { blank = 0.5 })
        end)
    end)
    it("float targets and float lengths", function()
        fails("#2.*targets must be int64 class indices, got float64", function()
            F.ctc_loss(lp, tide.tensor({ { 1, 2 }, { 3, 3 } }, "float64"), { 5, 5 }, { 2, 2 })
        end)
        fails("#3.*input_lengths must be an int64 tensor", function()
            F.ctc_loss(lp, tg, tide.tensor({ 5, 5 }), { 2, 2 })
        end)
        fails("#4.*target_lengths%[1%] must be an integer", function() F.ctc_loss(lp, tg, { 5, 5 }, { 2, 1.5 }) end)
        fails("#3.*int64 tensor or list of integers expected", function() F.ctc_loss(lp, tg, "5", { 2, 2 }) end)
    end)
    it("targets of the wrong shape", function()
        fails("#2.*targets has 3 rows, but log_probs has a batch of 2", function()
            F.ctc_loss(lp, tide.tensor({ { 1 }, { 2 }, { 3 } }, "int64"), { 5, 5 }, { 1, 1 })
        end)
        fails("#2.*targets must be %(N, S%) padded or 1%-D", function()
            F.ctc_loss(lp, tide.zeros({ 2, 2, 1 }, { dtype = "int64" }), { 5, 5 }, { 1, 1 })
        end)
    end)
    it("unknown option or reduction", function()
        fails("#5.*unknown option 'blanks'", function() F.ctc_loss(lp, tg, { 5, 5 }, { 2, 2 }, { blanks = 0 }) end)
        fails("#5.*unknown reduction 'avg'", function()
            F.ctc_loss(lp, tg, { 5, 5 }, { 2, 2 }, { reduction = "avg" })
        end)
        fails("#5.*unknown reduction 'batchmean'", function()
            F.ctc_loss(lp, tg, { 5, 5 }, { 2, 2 }, { reduction = "batchmean" })
        end)
        fails("#5.*option 'zero_infinity' must be a boolean", function()
            F.ctc_loss(lp, tg, { 5, 5 }, { 2, 2 }, { zero_infinity = 1 })
        end)
    end)
    it("the process goes on", function()
        local l = F.ctc_loss(lp, tg, { 5, 5 }, { 2, 2 })
        assert.is_true(l:item() > 0)
    end)
end)

describe("ctc_loss threads", function()
    it("gives the same bits with 1 and 2 threads", function()
        tide.manual_seed(5)
        local T, N, C, S = 40, 16, 12, 10
        local x = tide.randn({ T, N, C }, { dtype = "float64" })
        local x32 = x:float()
        local tg = tide.randint(1, C, { N, S }, { dtype = "int64" })
        local il, tl = {}, {}
        for b = 1, N do
            il[b] = T - (b - 1) % 7
            tl[b] = 1 + (b * 3) % S
        end
        local function run(src, reduction)
            local lp = src:log_softmax(2):detach()
            lp.requires_grad = true
            local l = F.ctc_loss(lp, tg, il, tl, { reduction = reduction })
            local s = reduction == "none" and (l * tide.linspace(0.5, 1.5, N, { dtype = src:dtype() })):sum() or l
            s:backward()
            return H.values(l), H.values(lp.grad)
        end
        local saved = tide.get_num_threads()
        for _, src in ipairs { x, x32 } do
            for _, red in ipairs { "mean", "sum", "none" } do
                tide.set_num_threads(1)
                local l1, g1 = run(src, red)
                tide.set_num_threads(2)
                local l2, g2 = run(src, red)
                tide.set_num_threads(saved)
                assert.are.same(l1, l2)
                assert.are.same(g1, g2)
            end
        end
    end)
end)

describe("nn.CTCLoss", function()
    it("equals the functional form", function()
        tide.manual_seed(3)
        local lp = tide.randn({ 6, 3, 5 }, { dtype = "float64" }):log_softmax(2)
        local tg = tide.tensor({ { 1, 2, 3 }, { 4, 1, 0 }, { 2, 0, 0 } }, "int64")
        local il, tl = { 6, 5, 4 }, { 3, 2, 1 }
        for _, opts in ipairs {
            { blank = 0 },
            { blank = 0, reduction = "sum" },
            { blank = 0, reduction = "none", zero_infinity = true },
        } do
            local m = tide.nn.CTCLoss(opts)
            local a, b = m(lp, tg, il, tl), F.ctc_loss(lp, tg, il, tl, opts)
            assert.are.same(H.values(b), H.values(a))
            assert.are.same(H.values(b), H.values(m:forward(lp, tg, il, tl)))
        end
        local blank4 = tide.nn.CTCLoss { blank = 4 }
        local tg4 = tide.tensor({ { 1, 2, 3 }, { 0, 1, 0 }, { 2, 0, 0 } }, "int64")
        assert.are.same(H.values(F.ctc_loss(lp, tg4, il, tl, { blank = 4 })), H.values(blank4(lp, tg4, il, tl)))
    end)
end)
