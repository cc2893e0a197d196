-- tide.data.DistributedSampler: PyTorch's DistributedSampler split of a
-- data set over ranks (sizes, padding, drop_last, strided ranks, the shared
-- shuffle and set_epoch), through a DataLoader, the defaults from
-- tide.distributed, and option errors.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local tide = require "tide"
local D = tide.data

-- the indices of one rank as a Lua list
local function rank_list(n, opts)
    return D.DistributedSampler(n, opts):indices():totable()
end

-- every rank's list, each from its own sampler (as on separate processes)
local function all_ranks(n, replicas, opts)
    local lists = {}
    for r = 0, replicas - 1 do
        local o = { num_replicas = replicas, rank = r }
        for k, v in pairs(opts or {}) do o[k] = v end
        lists[r] = rank_list(n, o)
    end
    return lists
end

-- the global order the ranks were cut from: rank r holds positions r, r + R, ...
local function interleave(lists, replicas)
    local full = {}
    for r = 0, replicas - 1 do
        for j, v in ipairs(lists[r]) do full[r + 1 + (j - 1) * replicas] = v end
    end
    return full
end

local function is_permutation(list, n)
    if #list ~= n then return false end
    local seen = {}
    for _, v in ipairs(list) do
        if math.type(v) ~= "integer" or v < 0 or v >= n or seen[v] then return false end
        seen[v] = true
    end
    return true
end

-- num_samples per rank, worked out by hand from PyTorch's rule:
-- ceil(n / R), or floor(n / R) with drop_last
local SIZES = {
    { n = 10, R = 2, keep = 5, drop = 5 },
    { n = 10, R = 3, keep = 4, drop = 3 },
    { n = 10, R = 4, keep = 3, drop = 2 },
    { n = 11, R = 2, keep = 6, drop = 5 },
    { n = 11, R = 3, keep = 4, drop = 3 },
    { n = 11, R = 4, keep = 3, drop = 2 },
}

describe("tide.data.DistributedSampler", function()
    it("gives the hand-written strided lists when unshuffled", function()
        -- n = 5 over 2: order 0 1 2 3 4 | 0 (padded to 6)
        assert.are.same({ 0, 2, 4 }, rank_list(5, { num_replicas = 2, rank = 0, shuffle = false }))
        assert.are.same({ 1, 3, 0 }, rank_list(5, { num_replicas = 2, rank = 1, shuffle = false }))
        -- n = 10 over 4: padded with 0 1 to 12
        local want = { [0] = { 0, 4, 8 }, { 1, 5, 9 }, { 2, 6, 0 }, { 3, 7, 1 } }
        assert.are.same(want, all_ranks(10, 4, { shuffle = false }))
        -- with drop_last the tail 8 9 goes
        want = { [0] = { 0, 4 }, { 1, 5 }, { 2, 6 }, { 3, 7 } }
        assert.are.same(want, all_ranks(10, 4, { shuffle = false, drop_last = true }))
        -- padding longer than the data set repeats it: 0 1 2 0 1 2 0 1
        want = { [0] = { 0 }, { 1 }, { 2 }, { 0 }, { 1 }, { 2 }, { 0 }, { 1 } }
        assert.are.same(want, all_ranks(3, 8, { shuffle = false }))
        -- n = 2 over 5 with drop_last: nothing for anyone
        for r = 0, 4 do
            local s = D.DistributedSampler(2, { num_replicas = 5, rank = r, drop_last = true })
            assert.are.equal(0, #s)
            assert.are.equal(0, s:indices():numel())
        end
    end)

    for _, case in ipairs(SIZES) do
        for _, drop in ipairs({ false, true }) do
            for _, shuffle in ipairs({ false, true }) do
                local name = string.format("n = %d over %d ranks, drop_last = %s, shuffle = %s: sizes, cover, overlap",
                    case.n, case.R, tostring(drop), tostring(shuffle))
                it(name, function()
                    local n, R = case.n, case.R
                    local per = drop and case.drop or case.keep
                    local lists = all_ranks(n, R, { drop_last = drop, shuffle = shuffle, seed = 5 })
                    local count, seen, distinct = {}, {}, 0
                    for r = 0, R - 1 do
                        local s = D.DistributedSampler(n, { num_replicas = R, rank = r, drop_last = drop })
                        assert.are.equal(per, #s)
                        assert.are.equal(per, #lists[r])
                        for _, v in ipairs(lists[r]) do
                            assert.is_true(math.type(v) == "integer" and v >= 0 and v < n, tostring(v))
                            if not seen[v] then distinct = distinct + 1 end
                            seen[v] = true
                            count[v] = (count[v] or 0) + 1
                        end
                    end
                    local padding = per * R - n -- negative: that many dropped
                    if drop then
                        -- no padding: each of the per * R kept indices on exactly one rank
                        assert.are.equal(per * R, distinct)
                        for v, c in pairs(count) do assert.are.equal(1, c, "index " .. v) end
                        if not shuffle then
                            for v = 0, per * R - 1 do assert.is_true(seen[v], "index " .. v) end
                        end
                    else
                        -- the union is the whole data set
                        assert.are.equal(n, distinct)
                        for v = 0, n - 1 do assert.is_true(seen[v], "index " .. v) end
                        if padding == 0 then
                            for v, c in pairs(count) do assert.are.equal(1, c, "index " .. v) end
                        else
                            -- only the padding repeats
                            local extra = 0
                            for _, c in pairs(count) do extra = extra + c - 1 end
                            assert.are.equal(padding, extra)
                        end
                    end
                end)
            end
        end
    end

    it("shuffles alike on every rank, and anew after set_epoch", function()
        local n, R = 11, 3
        -- one replica sees the whole permutation
        local whole = rank_list(n, { num_replicas = 1, rank = 0, seed = 42 })
        assert.is_true(is_permutation(whole, n))
        local identity = {}
        for i = 1, n do identity[i] = i - 1 end
        assert.are_not.same(identity, whole) -- 1 in 11! to be the identity
        -- the three ranks' lists are cut from that same permutation, padded
        -- with its first element
        local full = interleave(all_ranks(n, R, { seed = 42 }), R)
        assert.are.equal(12, #full)
        for i = 1, n do assert.are.equal(whole[i], full[i], "position " .. i) end
        assert.are.equal(whole[1], full[12])
        -- drawn again, the same
        assert.are.same(full, interleave(all_ranks(n, R, { seed = 42 }), R))

        -- set_epoch: a different permutation, the same on every rank
        local samplers, lists = {}, {}
        for r = 0, R - 1 do
            samplers[r] = D.DistributedSampler(n, { num_replicas = R, rank = r, seed = 42 })
            samplers[r]:set_epoch(1)
            lists[r] = samplers[r]:indices():totable()
        end
        local one = D.DistributedSampler(n, { num_replicas = 1, rank = 0, seed = 42 })
        one:set_epoch(1)
        local whole1 = one:indices():totable()
        assert.is_true(is_permutation(whole1, n))
        assert.are_not.same(whole, whole1)
        local full1 = interleave(lists, R)
        for i = 1, n do assert.are.equal(whole1[i], full1[i], "position " .. i) end
        -- back to epoch 0: the first order again
        samplers[0]:set_epoch(0)
        assert.are.same(all_ranks(n, R, { seed = 42 })[0], samplers[0]:indices():totable())
        -- the order is drawn from seed + epoch, as PyTorch's
        assert.are.same(whole1, rank_list(n, { num_replicas = 1, rank = 0, seed = 43 }))
        -- another seed, another order
        assert.are_not.same(whole, rank_list(n, { num_replicas = 1, rank = 0, seed = 7 }))
        -- unshuffled, set_epoch changes nothing
        local plain = D.DistributedSampler(n, { num_replicas = R, rank = 2, shuffle = false })
        plain:set_epoch(3)
        assert.are.same({ 2, 5, 8, 0 }, plain:indices():totable()) -- 0..10 padded with 0
    end)

    it("has the same indices() and # protocol as WeightedSampler", function()
        local s = D.DistributedSampler(7, { num_replicas = 2, rank = 1 })
        local idx = s:indices()
        assert.are.equal("int64", idx:dtype())
        assert.are.equal(1, idx:dim())
        assert.are.equal(D.WeightedSampler({ 1, 1 }):indices():dtype(), idx:dtype())
        assert.are.equal(4, #s)
        -- a dataset, or its size
        local ds = D.TensorDataset(tide.zeros({ 7, 2 }), tide.zeros({ 7 }))
        local s2 = D.DistributedSampler(ds, { num_replicas = 2, rank = 1 })
        assert.are.same(idx:totable(), s2:indices():totable())
        local text = tostring(s)
        assert.is_truthy(text:find("DistributedSampler"), text)
        assert.is_truthy(text:find("rank 1 of 2"), text)
    end)

    it("feeds a DataLoader exactly this rank's samples in order", function()
        -- sample i: x = 100 + i (a 1x2 row), y = i
        local n = 11
        local xs, ys = {}, {}
        for i = 0, n - 1 do
            xs[i + 1] = { 100 + i, -i }
            ys[i + 1] = i
        end
        local ds = D.TensorDataset(tide.tensor(xs), tide.tensor(ys, "int64"))
        -- rank 1 of 3, in order: 0..10 padded with 0 to 12, positions 1, 4, 7, 10
        local s = D.DistributedSampler(ds, { num_replicas = 3, rank = 1, shuffle = false })
        local loader = D.DataLoader(ds, { batch_size = 3, sampler = s })
        assert.are.equal(2, #loader)
        local got_y, got_x, sizes = {}, {}, {}
        for x, y in loader:iter() do
            sizes[#sizes + 1] = y:size(0)
            for _, v in ipairs(y:totable()) do got_y[#got_y + 1] = v end
            for _, row in ipairs(x:totable()) do got_x[#got_x + 1] = row[1] end
        end
        assert.are.same({ 3, 1 }, sizes)
        assert.are.same({ 1, 4, 7, 10 }, got_y)
        assert.are.same({ 101, 104, 107, 110 }, got_x)

        -- shuffled: the loader gives this rank's slice of the shared
        -- permutation (read off a one-replica sampler), and loader:set_epoch
        -- moves the sampler on
        local function expect(epoch)
            local one = D.DistributedSampler(n, { num_replicas = 1, rank = 0, seed = 9 })
            one:set_epoch(epoch)
            local whole = one:indices():totable()
            whole[12] = whole[1] -- the padding
            return { whole[3], whole[6], whole[9], whole[12] } -- rank 2 of 3: positions 2, 5, 8, 11
        end
        local sh = D.DistributedSampler(ds, { num_replicas = 3, rank = 2, seed = 9 })
        local l2 = D.DataLoader(ds, { batch_size = 2, sampler = sh, drop_last = true })
        local function epoch_labels()
            local out = {}
            for _, y in l2:iter() do
                for _, v in ipairs(y:totable()) do out[#out + 1] = v end
            end
            return out
        end
        assert.are.same(expect(0), epoch_labels())
        l2:set_epoch(4)
        assert.are.equal(4, sh.epoch)
        assert.are.same(expect(4), epoch_labels())
        -- a loader without such a sampler takes set_epoch and does nothing
        D.DataLoader(ds, { batch_size = 2 }):set_epoch(1)
        assert.is_truthy(H.error_of(l2.set_epoch, l2, -1):find("DataLoader: set_epoch"))
    end)

    it("takes num_replicas and rank from tide.distributed when initialized", function()
        local saved = rawget(tide, "distributed")
        local ok, err = pcall(function()
            rawset(tide, "distributed", {
                is_initialized = function() return true end,
                world_size = function() return 4 end,
                rank = function() return 2 end,
            })
            local s = D.DistributedSampler(10, { shuffle = false })
            assert.are.equal(4, s.num_replicas)
            assert.are.equal(2, s.rank)
            assert.are.same({ 2, 6, 0 }, s:indices():totable())
            -- options win over it, each on its own
            local s2 = D.DistributedSampler(10, { num_replicas = 5, shuffle = false })
            assert.are.equal(5, s2.num_replicas)
            assert.are.equal(2, s2.rank)
            assert.is_truthy(H.error_of(D.DistributedSampler, 10, { num_replicas = 2 })
                :find("DistributedSampler: option 'rank' must be in %[0, 2%)"))
            -- not initialized: one process, rank 0
            rawset(tide, "distributed", { is_initialized = function() return false end })
            local s3 = D.DistributedSampler(10)
            assert.are.equal(1, s3.num_replicas)
            assert.are.equal(0, s3.rank)
            assert.are.equal(10, #s3)
            -- something else under that name: ignored
            rawset(tide, "distributed", {})
            assert.are.equal(1, D.DistributedSampler(10).num_replicas)
        end)
        rawset(tide, "distributed", saved)
        assert(ok, err)
        -- whatever tide.distributed is here (or none), building one works
        local s = D.DistributedSampler(10)
        assert.is_true(s.rank >= 0 and s.rank < s.num_replicas)
    end)

    it("rejects bad options and arguments", function()
        local function err(...) return H.error_of(D.DistributedSampler, ...) or "" end
        local e = err(10, { num_replica = 2 })
        assert.is_truthy(e:find("DistributedSampler: unknown option 'num_replica'"), e)
        e = err(10, { num_replicas = 2, rank = 2 })
        assert.is_truthy(e:find("DistributedSampler: option 'rank' must be in %[0, 2%)"), e)
        e = err(10, { num_replicas = 2, rank = -1 })
        assert.is_truthy(e:find("DistributedSampler: option 'rank' must be at least 0"), e)
        e = err(10, { num_replicas = 0, rank = 0 })
        assert.is_truthy(e:find("DistributedSampler: option 'num_replicas' must be at least 1"), e)
        e = err(10, { num_replicas = 1.5, rank = 0 })
        assert.is_truthy(e:find("DistributedSampler: option 'num_replicas' must be an integer"), e)
        e = err(10, { shuffle = 1 })
        assert.is_truthy(e:find("DistributedSampler: option 'shuffle' must be a boolean"), e)
        e = err(10, { drop_last = "yes" })
        assert.is_truthy(e:find("DistributedSampler: option 'drop_last' must be a boolean"), e)
        e = err(10, { seed = 0.5 })
        assert.is_truthy(e:find("DistributedSampler: option 'seed' must be an integer"), e)
        e = err(10, 3)
        assert.is_truthy(e:find("DistributedSampler: options must be a table"), e)
        e = err("ten")
        assert.is_truthy(e:find("DistributedSampler: expected a dataset"), e)
        e = err(-1)
        assert.is_truthy(e:find("DistributedSampler: expected a dataset"), e)
        local s = D.DistributedSampler(10, { num_replicas = 2, rank = 0 })
        e = H.error_of(s.set_epoch, s, -1) or ""
        assert.is_truthy(e:find("DistributedSampler: set_epoch needs a non%-negative integer epoch, got %-1"), e)
        e = H.error_of(s.set_epoch, s, 1.5) or ""
        assert.is_truthy(e:find("DistributedSampler: set_epoch needs a non%-negative integer epoch"), e)
        e = H.error_of(s.set_epoch, s, "1") or ""
        assert.is_truthy(e:find("DistributedSampler: set_epoch needs a non%-negative integer epoch"), e)
        assert.are.equal(0, s.epoch)
        -- float integers are taken, as elsewhere in tide.data
        assert.are.equal(3, D.DistributedSampler(10, { num_replicas = 4.0, rank = 1.0 }).num_samples)
    end)
end)
