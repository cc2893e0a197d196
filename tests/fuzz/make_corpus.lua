-- Writes the seed corpora of the fuzz targets, tests/fuzz/corpus/NAME/, and
-- checks every seed against tide's own readers: a seed named valid_* must
-- load, any other must be refused. Run from the top of the tree, after
-- changing a reader or fuzz_checkpoint.lua:
--
--   build/tide tests/fuzz/make_corpus.lua
--
-- Each seed is a few bytes to a few KB: small inputs are what libFuzzer
-- mutates fastest, and each covers one branch of the reader that random
-- bytes would take long to find (a header that parses, a dtype tide lacks,
-- offsets that overlap, JSON that decodes but is not a state dict).
package.path = "tests/fuzz/?.lua;" .. package.path
local tide = require "tide"
local harness = require "fuzz_checkpoint"
local raw = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") .. "/../lib/rawfile.lua")

local ROOT = "tests/fuzz/corpus"
local TMP = os.tmpname()
os.remove(TMP)
assert(os.execute("mkdir -p " .. TMP))

local write, read = raw.write, raw.read

local corpora, problems = {}, {}

-- seeds[name] = bytes for target; check(path) -> ok, message
local function corpus(target, seeds, check)
    local dir = ROOT .. "/" .. target
    assert(os.execute("rm -rf " .. dir .. " && mkdir -p " .. dir))
    local names, total = {}, 0
    for name in pairs(seeds) do names[#names + 1] = name end
    table.sort(names)
    for _, name in ipairs(names) do
        local bytes = seeds[name]
        assert(#bytes < 4096, name .. " is over 4 KB")
        total = total + #bytes
        local path = dir .. "/" .. name
        write(path, bytes)
        local ok, msg = check(path, name)
        local want = name:match("^valid_") ~= nil
        if ok ~= want then
            problems[#problems + 1] = string.format("%s/%s: %s (%s)", target, name,
                want and "does not load" or "loads", tostring(msg))
        end
        print(string.format("%-11s %-28s %5d bytes  %s", target, name, #bytes, ok and "loads" or msg))
    end
    corpora[#corpora + 1] = string.format("%s: %d seeds, %d bytes", target, #names, total)
end

---------------------------------------------------------------------- IDX

-- an IDX file: type code, dims, data (big-endian counts)
local function idx(code, dims, data)
    local h = string.char(0, 0, code, #dims)
    for _, d in ipairs(dims) do h = h .. string.pack(">I4", d) end
    return h .. (data or "")
end

local function bytes(n, from)
    local t = {}
    for i = 1, n do t[i] = string.char(((from or 0) + i * 37) % 256) end
    return table.concat(t)
end

corpus("idx", {
    valid_u8_1d = idx(0x08, {5}, string.char(3, 1, 4, 1, 5)),
    valid_u8_2d = idx(0x08, {2, 3}, bytes(6)),
    valid_u8_3d = idx(0x08, {2, 3, 4}, bytes(24)),
    valid_u8_3d_image = idx(0x08, {1, 28, 28}, bytes(784)),
    valid_u8_empty = idx(0x08, {0}),
    valid_u8_zero_dim = idx(0x08, {3, 0, 2}),
    truncated_data = idx(0x08, {2, 3}, bytes(5)),
    trailing_data = idx(0x08, {4}, bytes(5)),
    truncated_header = idx(0x08, {2, 3}):sub(1, 9),
    short = string.char(0, 0, 8),
    bad_magic = string.char(1, 0, 8, 1) .. string.pack(">I4", 2) .. "ab",
    dims_0 = string.char(0, 0, 8, 0),
    dims_4 = idx(0x08, {1, 1, 1, 2}, "ab"),
    int8 = idx(0x09, {3}, "abc"),
    int16 = idx(0x0b, {2}, bytes(4)),
    int32 = idx(0x0c, {2}, bytes(8)),
    float32 = idx(0x0d, {2}, string.pack("<ff", 1.5, -2)),
    float64 = idx(0x0e, {1}, string.pack("<d", 0.25)),
    overflow = idx(0x08, {0xffffffff, 0xffffffff, 0xffffffff}),
    overflow_empty = idx(0x08, {0xffffffff, 0, 0xffffffff}),
}, function(path)
    local ok, err = pcall(tide._idx_read, path)
    return ok, not ok and tostring(err):match("[^:]*$") or nil
end)

-------------------------------------------------------------------- CIFAR

local function record(label, fill) return string.char(label) .. bytes(3072, fill) end

corpus("cifar", {
    valid_one_record = record(3, 0),
    label_10 = record(10, 1),
    short_record = record(7, 2):sub(1, 3072),
    record_and_a_byte = record(1, 3) .. "\0",
    one_byte = "\9",
}, function(path)
    local dir = TMP .. "/cifar"
    assert(os.execute("rm -rf " .. dir .. " && mkdir -p " .. dir))
    write(dir .. "/test_batch.bin", read(path))
    local ok, err = pcall(tide.data.cifar10, {dir = dir, split = "test"})
    return ok, not ok and tostring(err):match("[^:]*$") or nil
end)

-------------------------------------------------------------- safetensors

-- a file from a header (padded or not) and the data bytes
local st = raw.safetensors

local function saved(tensors, meta)
    local path = TMP .. "/saved.safetensors"
    tide.save(path, tensors, meta and {metadata = meta} or nil)
    return read(path)
end

local function entry(dtype, shape, b, e)
    return raw.st_entry('"' .. dtype .. '"', "[" .. table.concat(shape, ",") .. "]", string.format("[%d,%d]", b, e))
end

corpus("safetensors", {
    valid_f32 = saved({w = tide.tensor({{1.5, -2}, {0.25, 3}})}),
    valid_all_dtypes = saved({
        a = tide.tensor({1, 2, 3}),
        b = tide.tensor({0.1, -1e300}, "float64"),
        c = tide.tensor({-7, 0, 7}, "int64"),
        d = tide.tensor({0, 255}, "uint8"),
    }, {format = "pt", note = "seed"}),
    valid_metadata_only = st('{"__metadata__":{"tide.checkpoint":"1","epoch":"3"}}'),
    valid_empty = st("{}"),
    valid_scalar_unpadded = st('{"x":' .. entry("F64", {}, 0, 8) .. "}", string.pack("<d", 2.5)),
    valid_empty_tensor = st('{"e":' .. entry("F32", {3, 0}, 0, 0) .. ',"u":' .. entry("U8", {2}, 0, 2) .. "}", "\1\2"),
    valid_metadata_last = st('{"i":' .. entry("I64", {1}, 0, 8) .. ',"__metadata__":{"k":"v"}}',
        string.pack("<i8", -1)),
    valid_bf16 = st('{"h":' .. entry("BF16", {2}, 0, 4) .. "}", "\0\63\0\64"),
    valid_f16 = st('{"h":' .. entry("F16", {2}, 0, 4) .. "}", "\0\60\0\64"),
    bool = st('{"b":' .. entry("BOOL", {2}, 0, 2) .. "}", "\0\1"),
    i32 = st('{"i":' .. entry("I32", {1}, 0, 4) .. "}", "\1\0\0\0"),
    unknown_dtype = st('{"x":' .. entry("F128", {1}, 0, 16) .. "}", bytes(16)),
    overlap = st('{"a":' .. entry("F32", {2}, 0, 8) .. ',"b":' .. entry("F32", {2}, 4, 12) .. "}", bytes(12)),
    hole = st('{"a":' .. entry("U8", {2}, 0, 2) .. ',"b":' .. entry("U8", {2}, 3, 5) .. "}", bytes(5)),
    tail = st('{"a":' .. entry("U8", {2}, 0, 2) .. "}", bytes(3)),
    past_end = st('{"a":' .. entry("F32", {4}, 0, 16) .. "}", bytes(8)),
    size_mismatch = st('{"a":' .. entry("F32", {3}, 0, 8) .. "}", bytes(8)),
    reversed_offsets = st('{"a":' .. entry("U8", {0}, 4, 2) .. "}", bytes(4)),
    negative_dim = st('{"a":' .. entry("U8", {-2}, 0, 0) .. "}"),
    nine_dims = st('{"a":' .. entry("U8", {1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 1) .. "}", "x"),
    huge_shape = st('{"a":' .. entry("F64", {4294967296, 4294967296}, 0, 0) .. "}"),
    header_too_long = st("{}", nil, 64),
    header_over_limit = st("{}", nil, 0x7fffffffffffffff),
    header_empty = st(""),
    short = "\2\0\0",
    bad_json = st('{"a":{"dtype":"F32",'),
    not_object = st("[1,2]"),
    duplicate_key = st('{"a":' .. entry("U8", {1}, 0, 1) .. ',"a":' .. entry("U8", {1}, 0, 1) .. "}", "x"),
    metadata_not_string = st('{"__metadata__":{"epoch":3}}'),
    metadata_not_object = st('{"__metadata__":["x"]}'),
    entry_not_object = st('{"a":[1]}'),
    float_offsets = st('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1.0]}}', "x"),
}, function(path)
    local ok, err = pcall(tide.load, path)
    return ok, not ok and tostring(err):match("[^:]*$") or nil
end)

--------------------------------------------------------------- checkpoint

-- an input of fuzz_checkpoint: the key's index (from 0) as the first byte,
-- then the JSON that replaces it
local _, meta = harness.reference(TMP)
local key_byte = {}
for i, key in ipairs(harness.KEYS) do key_byte[key] = string.char(i - 1) end
local function ck(key, json) return key_byte[key] .. json end

local seeds = {}
for _, key in ipairs(harness.KEYS) do seeds["valid_" .. key:gsub("%.", "_")] = ck(key, meta[key]) end
local opt_state = meta.optimizer:match('"state":(.*)}$')
local groups = meta.optimizer:match('"param_groups":(%b[])')
for name, s in pairs({
    valid_loader_mid_epoch = ck("loader", '{"batch":1,"epoch":2,"sampler":{"epoch":3,"seed":5},"seed":3}'),
    valid_loader_no_sampler = ck("loader", '{"batch":0,"epoch":0,"seed":-9}'),
    valid_optimizer_no_state = ck("optimizer", '{"param_groups":' .. groups .. ',"state":{}}'),
    valid_optimizer_state_object = ck("optimizer", '{"param_groups":' .. groups ..
        ',"state":{"2":{"step":7,"exp_avg":{"__tensor__":"optimizer.state.2.exp_avg"}}}}'),
    scheduler_extra_field = ck("scheduler", meta.scheduler:gsub("}$", ',"note":[1,{"a":null}]}')),
    valid_epoch_float = ck("epoch", "4.5e0"),
    valid_extra_nested = ck("extra", '{"a":[[[[[[[[[[1]]]]]]]]]],"b":{"__tensor__":"extra.t","x":1},"c":"\\u00e9"}'),
    valid_extra_tensor_list = ck("extra", '[{"__tensor__":"model.0.bias"},{"__tensor__":"extra.t"}]'),
    version_2 = ck("tide.checkpoint", "2"),
    model_false = ck("model", "false"),
    optimizer_bad_json = ck("optimizer", meta.optimizer:sub(1, 40)),
    optimizer_two_groups = ck("optimizer", '{"param_groups":[{"params":[1,2]},{"params":[3,4]}],"state":{}}'),
    optimizer_missing_tensor = ck("optimizer", '{"param_groups":' .. groups ..
        ',"state":{"1":{"exp_avg":{"__tensor__":"optimizer.nope"}}}}'),
    optimizer_wrong_shape = ck("optimizer", '{"param_groups":' .. groups ..
        ',"state":{"1":{"exp_avg":{"__tensor__":"model.0.bias"}}}}'),
    optimizer_step_tensor = ck("optimizer", '{"param_groups":' .. groups ..
        ',"state":{"1":{"step":{"__tensor__":"model.0.weight"}}}}'),
    optimizer_unknown_param = ck("optimizer", '{"param_groups":' .. groups .. ',"state":{"9":{}}}'),
    optimizer_state_list = ck("optimizer", '{"param_groups":' .. groups .. ',"state":' .. opt_state:sub(1, 120)),
    scheduler_no_last_epoch = ck("scheduler", '{"gamma":0.5}'),
    loader_negative_epoch = ck("loader", '{"batch":0,"epoch":-1,"seed":3}'),
    loader_float_seed = ck("loader", '{"batch":0,"epoch":0,"seed":3.5}'),
    loader_bad_sampler = ck("loader", '{"batch":0,"epoch":0,"seed":3,"sampler":{"seed":"x"}}'),
    epoch_bad_json = ck("epoch", "4,"),
    rng_three = ck("rng", '["0000000000000001","0000000000000002","0000000000000003"]'),
    rng_not_hex = ck("rng", '["000000000000000g","0000000000000002","0000000000000003","0000000000000004"]'),
    rng_short = ck("rng", '["1","2","3","4"]'),
    rng_numbers = ck("rng", "[1,2,3,4]"),
    extra_missing_tensor = ck("extra", '{"t":{"__tensor__":"nope"}}'),
    extra_tensor_name_table = ck("extra", '{"t":{"__tensor__":{"a":1}}}'),
    valid_extra_nul = ck("extra", '{"s":"a\\u0000b"}'),
    extra_nul_key = ck("extra", '{"a\\u0000b":1}'),
    extra_duplicate = ck("extra", '{"a":1,"a":2}'),
    extra_big_number = ck("extra", "[1e400,18446744073709551616]"),
    valid_extra_deep = ck("extra", string.rep("[", 300) .. string.rep("]", 300)),
    extra_too_deep = ck("extra", string.rep("[", 2100)),
}) do
    seeds[name] = s
end
local run = harness.setup(TMP)
corpus("checkpoint", seeds, function(path)
    local s = read(path)
    local ok, msg = run(s:byte(1) % #harness.KEYS + 1, s:sub(2))
    assert(ok, msg)
    return msg == "loaded", msg ~= "loaded" and msg:match("[^:]*$") or nil
end)

os.execute("rm -rf " .. TMP)
io.stdout:flush()
for _, line in ipairs(corpora) do print(line) end
io.stdout:flush()
if #problems > 0 then
    io.stderr:write("make_corpus: seeds that do not do what their name says:\n  " ..
        table.concat(problems, "\n  ") .. "\n")
    os.exit(1)
end
