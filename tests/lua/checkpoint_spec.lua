-- tide.save / tide.load (safetensors) and tide.checkpoint: round trips,
-- files written by PyTorch (tests/reference/gen_safetensors.py), the byte
-- layout of tide's files, every malformed-file error, atomic writes, and
-- resuming a run bit for bit.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local tide = require "tide"

local TMP = os.tmpname()
os.remove(TMP)
assert(os.execute("mkdir -p " .. TMP))
local function tmp(name) return TMP .. "/" .. name end

local function write(path, bytes)
    local f = assert(io.open(path, "wb"))
    f:write(bytes)
    f:close()
end

local function listdir(dir)
    local p = io.popen("ls -A " .. dir)
    local names = {}
    for l in p:lines() do names[#names + 1] = l end
    p:close()
    table.sort(names)
    return names
end

-- a safetensors file from a header string and data bytes
local function st_file(header, data, len)
    return string.pack("<I8", len or #header) .. header .. (data or "")
end

-- bitwise equality of two tensors' values, through their bytes in a file
local function same_bits(a, b)
    if a:dtype() ~= b:dtype() then return false end
    tide.save(tmp("bits_a"), {x = a})
    tide.save(tmp("bits_b"), {x = b})
    return H.read_file(tmp("bits_a")) == H.read_file(tmp("bits_b"))
end

describe("tide.save / tide.load", function()
    it("round-trips every dtype and shape, 0-dim and empty included", function()
        local ts = {
            f32 = tide.tensor({{1.5, -2}, {3, 1e-30}}),
            f64 = tide.tensor({0.1, -1e300, 5e-324}, "float64"),
            i64 = tide.tensor({-4611686018427387904, 0, 7}, "int64"),
            u8 = tide.tensor({0, 255, 128}, "uint8"),
            scalar = tide.tensor(2.5, "float64"),
            empty = tide.zeros({0}),
            empty2 = tide.zeros({3, 0, 2}, "int64"),
            strided = tide.tensor({{1, 2, 3}, {4, 5, 6}}):t(), -- not contiguous
        }
        tide.save(tmp("rt.safetensors"), ts, {metadata = {k = "v", epoch = "3"}})
        local got, meta = tide.load(tmp("rt.safetensors"))
        assert.same({k = "v", epoch = "3"}, meta)
        for name, t in pairs(ts) do
            local g = got[name]
            assert.is_not_nil(g, name)
            assert.equal(t:dtype(), g:dtype(), name)
            assert.same(t:shape(), g:shape(), name)
            assert.same(t:totable(), g:totable(), name)
            if g:numel() > 0 then assert.is_true(g:is_contiguous(), name) end
        end
        assert.same({{1, 4}, {2, 5}, {3, 6}}, got.strided:totable())
        assert.equal(0, got.scalar:dim())
    end)

    it("reads the file PyTorch wrote (gen_safetensors.py) with exact values", function()
        local ref = tide._json_decode(H.read_file("tests/reference/torch_safetensors.json"))
        local got, meta = tide.load("tests/reference/torch.safetensors")
        assert.same(ref.metadata, meta)
        local n = 0
        for name, want in pairs(ref.tensors) do
            n = n + 1
            local g = assert(got[name], name)
            assert.equal(want.dtype, g:dtype(), name)
            assert.same(want.shape, g:shape(), name)
            local vals = H.values(g)
            assert.equal(#want.values, #vals, name)
            for i = 1, #vals do
                assert.is_true(vals[i] == want.values[i],
                    string.format("%s[%d]: %.17g vs %.17g", name, i - 1, vals[i], want.values[i]))
            end
        end
        assert.equal(7, n)
    end)

    it("writes the layout the format specifies (the committed tide.safetensors, which gen_safetensors.py reads)",
        function()
        local ts = {
            a = tide.tensor({{1.5, -2.0, 3.0}, {0.25, 0.0, -7.0}}),
            b = tide.tensor({1e-310, 2 ^ 0.5}, "float64"),
            c = tide.tensor({-5, 0, 9007199254740991}, "int64"),
            d = tide.tensor({0, 255, 17}, "uint8"),
            e = tide.tensor(42, "float64"),
            f = tide.zeros({0, 3}),
        }
        local meta = {written_by = "tide", epoch = "3"}
        local path = os.getenv("TIDE_WRITE_REFERENCE") and "tests/reference/tide.safetensors" or tmp("tide.safetensors")
        tide.save(path, ts, {metadata = meta})
        local bytes = H.read_file(path)
        -- by hand: length, JSON header padded to 8, data in name order
        local n = string.unpack("<I8", bytes)
        assert.equal(0, (8 + n) % 8)
        local header = tide._json_decode(bytes:sub(9, 8 + n))
        assert.same(meta, header.__metadata__)
        assert.same({dtype = "F32", shape = {2, 3}, data_offsets = {0, 24}}, header.a)
        assert.same({dtype = "F64", shape = {2}, data_offsets = {24, 40}}, header.b)
        assert.same({dtype = "I64", shape = {3}, data_offsets = {40, 64}}, header.c)
        assert.same({dtype = "U8", shape = {3}, data_offsets = {64, 67}}, header.d)
        assert.same({dtype = "F64", shape = {}, data_offsets = {67, 75}}, header.e)
        assert.same({dtype = "F32", shape = {0, 3}, data_offsets = {75, 75}}, header.f)
        local data = bytes:sub(9 + n)
        assert.equal(75, #data)
        local floats = {string.unpack("<ffffff", data)}
        floats[7] = nil -- the next position
        assert.same({1.5, -2.0, 3.0, 0.25, 0.0, -7.0}, floats)
        assert.equal(1e-310, (string.unpack("<d", data, 25)))
        assert.equal(9007199254740991, (string.unpack("<i8", data, 57)))
        assert.equal(string.char(0, 255, 17), data:sub(65, 67))
        assert.equal(42.0, (string.unpack("<d", data, 68)))
        -- and it is the committed file, byte for byte
        assert.equal(H.read_file("tests/reference/tide.safetensors"), bytes)
    end)

    describe("rejects malformed files with an error naming the file and the problem", function()
        local good_h = '{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
        local data8 = string.pack("<ff", 1, 2)
        local cases = {
            {"missing file", nil, "No such file"},
            {"too short", "abc", "too short"},
            {"header length past the end", st_file(good_h, data8, 4096), "header length 4096 runs past the end"},
            {"header length absurd", st_file(good_h, data8, 1 << 40), "over the limit"},
            {"bad JSON", st_file('{"w":{"dtype":"F32",', ""), "bad JSON in the header"},
            {"not an object", st_file('[1,2]', ""), "not a JSON object"},
            {"unknown dtype", st_file('{"w":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}', data8),
                "unknown dtype 'Q7'"},
            {"unsupported dtype", st_file('{"w":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}', data8), "I32"},
            {"negative shape", st_file('{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', data8), "negative"},
            {"offsets out of range", st_file('{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', data8),
                "run past the end of the data"},
            {"truncated data", st_file(good_h, data8:sub(1, 5)), "truncated"},
            {"size mismatch", st_file('{"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}}', data8), "needs 16"},
            {"overlapping offsets", st_file('{"v":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},' ..
                '"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', data8), "overlap"},
            {"hole", st_file('{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', data8), "belong to no entry"},
            {"trailing bytes", st_file(good_h, data8 .. "xx"), "belong to no entry"},
            {"duplicate name", st_file('{"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0]},' ..
                '"w":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}', ""), "duplicate"},
            {"metadata not strings", st_file('{"__metadata__":{"a":1}}', ""), "not a string"},
        }
        for i, c in ipairs(cases) do
            it(c[1], function()
                local path = tmp("bad" .. i .. ".safetensors")
                if c[2] then write(path, c[2]) end
                local err = H.error_of(tide.load, path)
                assert.is_not_nil(err, c[1])
                assert.truthy(err:find("load: ", 1, true), err)
                assert.truthy(err:find(path, 1, true), err)
                assert.truthy(err:find(c[3], 1, true), err)
                if c[1]:find("offsets") or c[1]:find("dtype") or c[1]:find("mismatch") then
                    assert.truthy(err:find("'w'", 1, true), "names the entry: " .. err)
                end
            end)
        end
        it("and the good file the cases start from loads", function()
            write(tmp("good.safetensors"), st_file(good_h, data8))
            assert.same({1, 2}, tide.load(tmp("good.safetensors")).w:totable())
        end)
    end)

    describe("writes atomically", function()
        local function setup()
            local dir = tmp("atomic")
            os.execute("rm -rf " .. dir .. " && mkdir -p " .. dir)
            tide.save(dir .. "/ck.safetensors", {x = tide.tensor({1, 2, 3})})
            return dir, H.read_file(dir .. "/ck.safetensors")
        end
        it("leaves the target unchanged and no temporary file when a value is not a tensor", function()
            local dir, before = setup()
            local err = H.error_of(tide.save, dir .. "/ck.safetensors", {x = tide.ones{4}, y = 5})
            assert.truthy(err:find("'y' is a number, not a tensor", 1, true), err)
            assert.equal(before, H.read_file(dir .. "/ck.safetensors"))
            assert.same({"ck.safetensors"}, listdir(dir))
        end)
        it("when a tensor was closed", function()
            local dir, before = setup()
            local t = tide.ones{4}
            t:close()
            assert.is_not_nil(H.error_of(tide.save, dir .. "/ck.safetensors", {x = t}))
            assert.equal(before, H.read_file(dir .. "/ck.safetensors"))
            assert.same({"ck.safetensors"}, listdir(dir))
        end)
        it("when the directory cannot hold the file", function()
            local dir = setup()
            local err = H.error_of(tide.save, dir .. "/ck.safetensors/inner", {x = tide.ones{2}})
            assert.truthy(err:find("save: " .. dir .. "/ck.safetensors/inner", 1, true), err)
            assert.truthy(err:find("temporary file", 1, true), err)
            err = H.error_of(tide.save, dir .. "/no/such/dir/f", {x = tide.ones{2}})
            assert.truthy(err:find("No such file", 1, true), err)
            assert.same({"ck.safetensors"}, listdir(dir))
        end)
        it("rejects bad arguments clearly", function()
            assert.truthy(H.error_of(tide.save, tmp("x"), {}, {metadata = {a = 1}}):find("metadata", 1, true))
            assert.truthy(H.error_of(tide.save, tmp("x"), {}, {meta = {}}):find("meta", 1, true))
            assert.truthy(H.error_of(tide.save, tmp("x"), {[1] = tide.ones{1}}):find("must be strings", 1, true))
            assert.truthy(H.error_of(tide.save, tmp("x"), {__metadata__ = tide.ones{1}}):find("reserved", 1, true))
        end)
    end)
end)

-- a tiny model and a table-based SGD with momentum, duck-typed as tide.nn
-- and tide.optim objects are
local function Model()
    local m = {w = tide.randn({3, 2}, {requires_grad = true}), b = tide.zeros({2}, {requires_grad = true})}
    function m:params() return {self.w, self.b} end
    function m:forward(x) return x:matmul(self.w) + self.b end
    function m:state_dict() return {weight = self.w, bias = self.b} end
    function m:load_state_dict(sd)
        tide.no_grad(function()
            self.w:copy_(sd.weight)
            self.b:copy_(sd.bias)
        end)
    end
    return m
end

local function SGD(params, lr, momentum)
    local o = {params = params, lr = lr, momentum = momentum, state = {}}
    function o:step()
        tide.no_grad(function()
            for i, p in ipairs(self.params) do
                local s = self.state[i - 1]
                if not s then
                    s = {momentum_buffer = p.grad:clone(), step = 0}
                    self.state[i - 1] = s
                else
                    s.momentum_buffer:mul_(self.momentum):add_(p.grad)
                end
                s.step = s.step + 1
                p:sub_(s.momentum_buffer * self.lr)
            end
        end)
    end
    function o:zero_grad() for _, p in ipairs(self.params) do p.grad = nil end end
    function o:state_dict()
        return {state = self.state, param_groups = {{lr = self.lr, momentum = self.momentum, params = {0, 1}}}}
    end
    function o:load_state_dict(sd)
        self.state = {}
        for k, s in pairs(sd.state) do self.state[k] = {momentum_buffer = s.momentum_buffer:clone(), step = s.step} end
        self.lr, self.momentum = sd.param_groups[1].lr, sd.param_groups[1].momentum
    end
    return o
end

local function train(m, opt, steps, losses)
    local y = tide.tensor({{1, -1}, {0.5, 2}, {0, 0}, {3, 1}})
    for _ = 1, steps do
        local x = tide.randn({4, 3}) -- fresh data from the generator each step
        local noise = tide.rand({4, 2}) * 0.1
        local loss = ((m:forward(x) + noise - y) ^ 2):mean()
        opt:zero_grad()
        loss:backward()
        opt:step()
        losses[#losses + 1] = loss:item()
    end
end

describe("tide.checkpoint", function()
    teardown(function() os.execute("rm -rf " .. TMP) end)

    it("restores the generator: the draws after a restore repeat bit for bit", function()
        tide.manual_seed(123)
        tide.randn{5}
        tide.checkpoint.save(tmp("rng.ckpt"), {rng = true})
        local a1, a2 = tide.randn{7}, tide.rand({3}, "float64")
        tide.manual_seed(999)
        tide.randn{11}
        tide.checkpoint.load(tmp("rng.ckpt"))
        local b1, b2 = tide.randn{7}, tide.rand({3}, "float64")
        assert.is_true(same_bits(a1, b1))
        assert.is_true(same_bits(a2, b2))
        -- and the state was really moved: a reseed gives other numbers
        tide.manual_seed(999)
        assert.is_false(same_bits(a1, tide.randn{7}))
    end)

    it("resumes a training run: 3 + checkpoint + 3 steps give the losses of 6 straight", function()
        tide.manual_seed(2024)
        local m, straight = Model(), {}
        local opt = SGD(m:params(), 0.05, 0.9)
        train(m, opt, 6, straight)

        tide.manual_seed(2024)
        local m1, resumed = Model(), {}
        local opt1 = SGD(m1:params(), 0.05, 0.9)
        train(m1, opt1, 3, resumed)
        tide.checkpoint.save(tmp("run.ckpt"),
            {model = m1, optimizer = opt1, epoch = 3, extra = {best = resumed[3], note = "x"}})

        tide.manual_seed(77) -- a fresh process, in effect: other weights, other generator state
        local m2 = Model()
        local opt2 = SGD(m2:params(), 1, 0)
        local epoch, extra = tide.checkpoint.load(tmp("run.ckpt"), {model = m2, optimizer = opt2})
        assert.equal(3, epoch)
        assert.same({best = resumed[3], note = "x"}, extra)
        assert.equal(0.05, opt2.lr)
        assert.equal(3, opt2.state[0].step)
        train(m2, opt2, 3, resumed)
        assert.equal(6, #resumed)
        for i = 1, 6 do
            assert.is_true(straight[i] == resumed[i],
                string.format("step %d: %.17g vs %.17g", i, straight[i], resumed[i]))
        end
        assert.is_true(same_bits(m.w:detach(), m2.w:detach()))
        -- the layout: model.<name>, optimizer.state.<i>.<key>, JSON metadata
        local ts, meta = tide.load(tmp("run.ckpt"))
        assert.is_not_nil(ts["model.weight"])
        assert.is_not_nil(ts["optimizer.state.0.momentum_buffer"])
        assert.is_not_nil(ts["optimizer.state.1.momentum_buffer"])
        assert.equal("3", meta.epoch)
        assert.equal(4, #tide._json_decode(meta.rng))
    end)

    it("keeps tensors in extra and round-trips module files", function()
        tide.checkpoint.save(tmp("x.ckpt"),
            {extra = {t = tide.tensor({1, 2}), list = {tide.tensor({3}), 4}}, rng = false})
        local epoch, extra = tide.checkpoint.load(tmp("x.ckpt"))
        assert.is_nil(epoch)
        assert.same({1, 2}, extra.t:totable())
        assert.same({3}, extra.list[1]:totable())
        assert.equal(4, extra.list[2])
        assert.is_nil(tide.load(tmp("x.ckpt"))._rng)

        tide.manual_seed(5)
        local m = Model()
        tide.checkpoint.save_module(m, tmp("m.safetensors"))
        local plain = tide.load(tmp("m.safetensors"))
        assert.same(m.w:detach():totable(), plain.weight:totable())
        local m2 = Model()
        tide.checkpoint.load_module(m2, tmp("m.safetensors"))
        assert.is_true(same_bits(m.w:detach(), m2.w:detach()))
    end)

    it("says what is wrong", function()
        tide.save(tmp("plain.safetensors"), {x = tide.ones{1}})
        local err = H.error_of(tide.checkpoint.load, tmp("plain.safetensors"), {model = Model()})
        assert.truthy(err:find("checkpoint.load: " .. tmp("plain.safetensors") .. ": not a tide checkpoint", 1, true),
            err)
        err = H.error_of(tide.checkpoint.load, tmp("nope.ckpt"))
        assert.truthy(err:find("checkpoint.load: " .. tmp("nope.ckpt") .. ": cannot open", 1, true), err)
        err = H.error_of(tide.checkpoint.save, tmp("y.ckpt"), {modle = 1})
        assert.truthy(err:find("unknown option 'modle'", 1, true), err)
        err = H.error_of(tide.checkpoint.save, tmp("y.ckpt"), {extra = {f = print}})
        assert.truthy(err:find("function", 1, true), err)
        tide.checkpoint.save(tmp("y.ckpt"), {epoch = 1})
        err = H.error_of(tide.checkpoint.load, tmp("y.ckpt"), {optimizer = SGD({}, 1, 0)})
        assert.truthy(err:find("holds no optimizer state", 1, true), err)
        err = H.error_of(tide.checkpoint.save, tmp("y.ckpt"), {modle = 1})
        assert.truthy(err:find("known: epoch, extra, loader, model, optimizer, rng, scheduler", 1, true), err)
    end)

    it("saves a scheduler and a loader, and load restores both", function()
        local p = tide.zeros({2}, {requires_grad = true})
        local opt = tide.optim.SGD({p}, {lr = 1})
        local sched = tide.optim.MultiStepLR(opt, {2, 3}, {gamma = 0.5})
        for _ = 1, 3 do sched:step() end -- lr: 1, 1, 0.5, 0.25
        local ds = tide.data.TensorDataset(tide.arange(0, 10):view({10, 1}), tide.arange(0, 10):long())
        local loader = tide.data.DataLoader(ds, {batch_size = 3, shuffle = true, seed = 4})
        loader:set_epoch(5)
        local step = loader:iter()
        local _, first = step()
        tide.checkpoint.save(tmp("s.ckpt"), {optimizer = opt, scheduler = sched, loader = loader})
        local rest = {}
        for _, y in step do rest[#rest + 1] = y:totable() end

        local opt2 = tide.optim.SGD({p}, {lr = 1})
        local sched2 = tide.optim.MultiStepLR(opt2, {7}, {gamma = 0.1})
        local loader2 = tide.data.DataLoader(ds, {batch_size = 3, shuffle = true, seed = 9})
        tide.checkpoint.load(tmp("s.ckpt"), {optimizer = opt2, scheduler = sched2, loader = loader2})
        assert.are.equal(3, sched2.last_epoch)
        assert.are.same({0.25}, sched2:get_last_lr())
        sched2:step()
        sched:step()
        assert.are.same(sched:get_last_lr(), sched2:get_last_lr())
        assert.are.same(opt.param_groups[1].lr, opt2.param_groups[1].lr)
        -- the loader goes on after the batch it had handed out
        local rest2 = {}
        for _, y in loader2:iter() do rest2[#rest2 + 1] = y:totable() end
        assert.are.same(rest, rest2)
        assert.are.equal(3, #rest2)
        assert.are.equal(3, first:numel())
        local err = H.error_of(tide.checkpoint.load, tmp("y.ckpt"), {loader = loader2})
        assert.truthy(err:find("holds no loader state", 1, true), err)
    end)
end)

