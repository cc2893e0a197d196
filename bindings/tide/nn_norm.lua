-- tide.nn's norms beyond batch norm, the 1-d pools, the adaptive max pool,
-- max unpooling and EmbeddingBag, with PyTorch 1.13's semantics and
-- state_dict keys.
--
-- group_norm and adaptive_max_pool2d are kernels of tide.core. The rest
-- are compositions of differentiable ops, so their gradients (and their
-- CUDA runs) come from those ops:
-- - instance_norm is PyTorch's own construction: the input viewed as
--   (1, N C, *) through batch_norm, the running stats repeated N times and
--   averaged back;
-- - the 1-d pools are the 2-d ones over a (.., 1, L) view;
-- - max_unpool2d scatters into a zero plane (gradient: the gather);
-- - embedding_bag takes the rows with index_select and sums them per bag
--   with index_add (max: a padded (bags, longest, D) gather and max).

local M = {}

function M.install(nn, tide, core, util) -- luacheck: ignore 212/core (the parts' protocol)
    local F = tide.F
    local argerror, options, check_int, pair = util.argerror, util.options, util.check_int, util.pair
    local show_pair, functional = util.show_pair, util.functional

    local bool_str, check_tensor, opt = util.bool_str, util.check_tensor, util.opt

    -------------------------------------------------------------------------
    -- F.instance_norm(x, {running_mean, running_var, weight, bias,
    --                     use_input_stats = true, momentum = 0.1, eps = 1e-5})
    -------------------------------------------------------------------------
    function F.instance_norm(x, opts)
        local fname = "instance_norm"
        check_tensor(fname, 1, x, "input")
        local o = options(fname, 2, opts, {"running_mean", "running_var", "weight", "bias",
                                           "use_input_stats", "momentum", "eps"},
                          {use_input_stats = true, momentum = 0.1, eps = 1e-5})
        local rm, rv, w, b = opt(o.running_mean), opt(o.running_var), opt(o.weight), opt(o.bias)
        local shape = x:shape()
        if #shape < 3 then
            argerror(fname, 1, string.format("input must be (N, C, *) with at least one spatial dim, got %dD",
                                             #shape))
        end
        local n, c = shape[1], shape[2]
        local inner = 1
        for i = 3, #shape do inner = inner * shape[i] end
        if o.use_input_stats and inner <= 1 then
            argerror(fname, 1, string.format("expected more than 1 spatial element when training, got %d",
                                             inner))
        end
        if (rm == nil) ~= (rv == nil) then
            argerror(fname, 2, "running_mean and running_var must be given together")
        end
        if not o.use_input_stats and rm == nil then
            argerror(fname, 2, "running_mean and running_var are needed when use_input_stats = false")
        end
        for _, t in ipairs({{rm, "running_mean"}, {rv, "running_var"}, {w, "weight"}, {b, "bias"}}) do
            if t[1] ~= nil then
                check_tensor(fname, 2, t[1], t[2])
                if t[1]:dim() ~= 1 or t[1]:size(0) ~= c then
                    argerror(fname, 2, string.format("%s must have shape (%d), one value per channel", t[2], c))
                end
            end
        end
        local flat = {1, n * c}
        for i = 3, #shape do flat[i] = shape[i] end
        local rm_n, rv_n
        if rm ~= nil then
            rm_n = rm:view({1, c}):expand({n, c}):contiguous():view({n * c})
            rv_n = rv:view({1, c}):expand({n, c}):contiguous():view({n * c})
        end
        local y = F.batch_norm(x:reshape(flat), rm_n, rv_n, {training = o.use_input_stats,
                               momentum = o.momentum, eps = o.eps}):view(shape)
        if rm ~= nil and o.use_input_stats then
            tide.no_grad(function()
                rm:copy_(rm_n:view({n, c}):mean(0))
                rv:copy_(rv_n:view({n, c}):mean(0))
            end)
        end
        local bshape = {1, c}
        for i = 3, #shape do bshape[i] = 1 end
        if w ~= nil then y = y * w:view(bshape) end
        if b ~= nil then y = y + b:view(bshape) end
        return y
    end

    -------------------------------------------------------------------------
    -- 1-d pools: the 2-d kernels over (.., 1, L)
    -------------------------------------------------------------------------
    local function single(fname, n, v, what, min)
        if type(v) == "table" then
            if #v ~= 1 then argerror(fname, n, what .. " must be a number or {n}") end
            v = v[1]
        end
        return check_int(fname, n, v, what, min)
    end

    local function check_1d(fname, x)
        check_tensor(fname, 1, x, "input")
        if x:dim() ~= 2 and x:dim() ~= 3 then
            argerror(fname, 1, string.format("input must be (N, C, L) or (C, L), got %dD", x:dim()))
        end
    end

    function F.max_pool1d(x, kernel_size, opts)
        local fname = "max_pool1d"
        check_1d(fname, x)
        local k = single(fname, 2, kernel_size, "kernel_size")
        local o = options(fname, 3, opts, {"stride", "padding", "dilation", "ceil_mode", "return_indices"},
                          {padding = 0, dilation = 1, ceil_mode = false, return_indices = false})
        local s = o.stride == nil and k or single(fname, 3, o.stride, "stride")
        local p, d = single(fname, 3, o.padding, "padding", 0), single(fname, 3, o.dilation, "dilation")
        local y, idx = F.max_pool2d(x:unsqueeze(-2), {1, k}, {stride = {1, s}, padding = {0, p},
                                    dilation = {1, d}, ceil_mode = o.ceil_mode, return_indices = o.return_indices})
        if o.return_indices then return y:squeeze(-2), idx:squeeze(-2) end
        return y:squeeze(-2)
    end

    function F.avg_pool1d(x, kernel_size, opts)
        local fname = "avg_pool1d"
        check_1d(fname, x)
        local k = single(fname, 2, kernel_size, "kernel_size")
        local o = options(fname, 3, opts, {"stride", "padding", "ceil_mode", "count_include_pad"},
                          {padding = 0, ceil_mode = false, count_include_pad = true})
        local s = o.stride == nil and k or single(fname, 3, o.stride, "stride")
        local p = single(fname, 3, o.padding, "padding", 0)
        return F.avg_pool2d(x:unsqueeze(-2), {1, k}, {stride = {1, s}, padding = {0, p},
                            ceil_mode = o.ceil_mode, count_include_pad = o.count_include_pad}):squeeze(-2)
    end

    function F.adaptive_avg_pool1d(x, output_size)
        local fname = "adaptive_avg_pool1d"
        check_1d(fname, x)
        local l = single(fname, 2, output_size, "output_size")
        return F.adaptive_avg_pool2d(x:unsqueeze(-2), {1, l}):squeeze(-2)
    end

    function F.adaptive_max_pool1d(x, output_size, opts)
        local fname = "adaptive_max_pool1d"
        check_1d(fname, x)
        local l = single(fname, 2, output_size, "output_size")
        local o = options(fname, 3, opts, {"return_indices"}, {return_indices = false})
        -- over an (.., 1, L) view the plane's flat index h W + w is the index along L
        local y, idx = F.adaptive_max_pool2d(x:unsqueeze(-2), {1, l}, {return_indices = o.return_indices})
        if o.return_indices then return y:squeeze(-2), idx:squeeze(-2) end
        return y:squeeze(-2)
    end

    -------------------------------------------------------------------------
    -- F.max_unpool2d(x, indices, kernel_size, {stride = kernel_size, padding = 0, output_size})
    -------------------------------------------------------------------------
    function F.max_unpool2d(x, indices, kernel_size, opts)
        local fname = "max_unpool2d"
        check_tensor(fname, 1, x, "input")
        check_tensor(fname, 2, indices, "indices")
        local k = pair(fname, 3, kernel_size, "kernel_size")
        local o = options(fname, 4, opts, {"stride", "padding", "output_size"}, {padding = 0})
        local s = o.stride == nil and k or pair(fname, 4, o.stride, "stride")
        local p = pair(fname, 4, o.padding, "padding", 0)
        local nd = x:dim()
        if nd ~= 3 and nd ~= 4 then
            argerror(fname, 1, string.format("input must be (N, C, H, W) or (C, H, W), got %dD", nd))
        end
        if indices:dtype() ~= "int64" then
            argerror(fname, 2, "indices must be int64, got " .. indices:dtype())
        end
        local shape, ishape = x:shape(), indices:shape()
        local same = #ishape == nd
        for i = 1, nd do same = same and ishape[i] == shape[i] end
        if not same then argerror(fname, 2, "indices must have the shape of input") end
        local h, w = shape[nd - 1], shape[nd]
        local oh, ow = (h - 1) * s[1] - 2 * p[1] + k[1], (w - 1) * s[2] - 2 * p[2] + k[2]
        if o.output_size ~= nil then
            local os = o.output_size
            if type(os) ~= "table" or (#os ~= 2 and #os ~= 4) then
                argerror(fname, 4, "output_size must be {h, w} or {n, c, h, w}")
            end
            local want = {check_int(fname, 4, os[#os - 1], "output_size"), check_int(fname, 4, os[#os], "output_size")}
            -- PyTorch's bounds: the default size give or take one stride
            for i, v in ipairs({oh, ow}) do
                if want[i] <= v - s[i] or want[i] >= v + s[i] then
                    argerror(fname, 4, string.format("output_size entry %d must be in (%d, %d), got %d", i,
                                                     v - s[i], v + s[i], want[i]))
                end
            end
            oh, ow = want[1], want[2]
        end
        local lead = {}
        for i = 1, nd - 2 do lead[i] = shape[i] end
        local plane = oh * ow
        if indices:numel() > 0 then
            local lo, hi = indices:min():item(), indices:max():item()
            if lo < 0 or hi >= plane then
                argerror(fname, 2, string.format("index %d is outside the %dx%d output plane", lo < 0 and lo or hi,
                                                 oh, ow))
            end
        end
        local flat, out = {table.unpack(lead)}, {table.unpack(lead)}
        flat[#flat + 1] = h * w
        out[#out + 1] = plane
        local z = tide.zeros(out, {dtype = x:dtype(), device = x:device()})
        local y = z:scatter(nd - 2, indices:reshape(flat), x:reshape(flat))
        out[#out] = oh
        out[#out + 1] = ow
        return y:view(out)
    end

    -------------------------------------------------------------------------
    -- F.embedding_bag(input, weight, {offsets, mode = "mean", per_sample_weights,
    --                 include_last_offset = false, padding_idx})
    -------------------------------------------------------------------------
    local unsupported = {max_norm = true, scale_grad_by_freq = true, sparse = true}

    -- the option checks F.embedding_bag and EmbeddingBag share (options at argument 3)
    local function check_bag_options(fname, o)
        for k in pairs(unsupported) do
            if o[k] ~= nil and o[k] ~= false then argerror(fname, 3, "option '" .. k .. "' is not supported") end
        end
        if o.norm_type ~= nil and o.norm_type ~= 2 then argerror(fname, 3, "option 'norm_type' is not supported") end
        if o.mode ~= "sum" and o.mode ~= "mean" and o.mode ~= "max" then
            argerror(fname, 3, "mode must be \"sum\", \"mean\" or \"max\", got " .. tostring(o.mode))
        end
    end

    -- the bags as Lua arrays: for each kept entry its position in the
    -- flat input and its bag; each bag's count; the number of bags
    local function bag_plan(fname, input, offsets, include_last, pad, nemb)
        local idx, pos, bag, count = {}, {}, {}, {}
        local flat, nbags, starts, ends
        if input:dim() == 2 then
            if offsets ~= nil then argerror(fname, 3, "offsets must be absent when input is 2D") end
            local b, l = input:size(0), input:size(1)
            flat = input:reshape({b * l}):totable()
            nbags, starts, ends = b, {}, {}
            for i = 1, b do starts[i], ends[i] = (i - 1) * l, i * l end
        elseif input:dim() == 1 then
            if offsets == nil then argerror(fname, 3, "offsets are needed when input is 1D") end
            check_tensor(fname, 3, offsets, "offsets")
            if offsets:dim() ~= 1 or offsets:dtype() ~= "int64" then
                argerror(fname, 3, "offsets must be a 1D int64 tensor")
            end
            flat = input:totable()
            local off = offsets:totable()
            nbags = include_last and #off - 1 or #off
            if nbags < 0 then argerror(fname, 3, "offsets must not be empty with include_last_offset") end
            if #off > 0 and off[1] ~= 0 then
                argerror(fname, 3, "offsets[0] must be 0, got " .. off[1])
            end
            starts, ends = {}, {}
            for i = 1, nbags do
                starts[i] = off[i]
                ends[i] = (i < #off) and off[i + 1] or #flat
                if ends[i] < starts[i] or ends[i] > #flat then
                    argerror(fname, 3, string.format("offsets must be non-decreasing and at most %d", #flat))
                end
            end
        else
            argerror(fname, 1, string.format("input must be 1D (with offsets) or 2D, got %dD", input:dim()))
        end
        for b = 1, nbags do
            count[b] = 0
            for p = starts[b], ends[b] - 1 do
                local v = flat[p + 1]
                if v < 0 or v >= nemb then
                    argerror(fname, 1, string.format("index %d at position %d is out of range for %d embeddings",
                                                     v, p, nemb))
                end
                if v ~= pad then
                    idx[#idx + 1], pos[#pos + 1], bag[#bag + 1] = v, p, b - 1
                    count[b] = count[b] + 1
                end
            end
        end
        return idx, pos, bag, count, nbags
    end

    function F.embedding_bag(input, weight, opts)
        local fname = "embedding_bag"
        check_tensor(fname, 1, input, "input")
        check_tensor(fname, 2, weight, "weight")
        local o = options(fname, 3, opts, {"offsets", "max_norm", "norm_type", "scale_grad_by_freq", "mode",
                                           "sparse", "per_sample_weights", "include_last_offset", "padding_idx"},
                          {mode = "mean", include_last_offset = false})
        check_bag_options(fname, o)
        if input:dtype() ~= "int64" then argerror(fname, 1, "input must be int64, got " .. input:dtype()) end
        if weight:dim() ~= 2 then argerror(fname, 2, "weight must be (num_embeddings, embedding_dim)") end
        local nemb, d = weight:size(0), weight:size(1)
        local pad = opt(o.padding_idx)
        if pad ~= nil then
            if math.type(pad) ~= "integer" or pad < -nemb or pad >= nemb then
                argerror(fname, 3, string.format("padding_idx must be an integer in [%d, %d), got %s", -nemb, nemb,
                                                 tostring(pad)))
            end
            if pad < 0 then pad = pad + nemb end
        end
        local psw = opt(o.per_sample_weights)
        if psw ~= nil then
            check_tensor(fname, 3, psw, "per_sample_weights")
            if o.mode ~= "sum" then
                argerror(fname, 3, "per_sample_weights are only supported with mode = \"sum\", got \"" ..
                         o.mode .. "\"")
            end
            local same = psw:dim() == input:dim()
            for i = 0, input:dim() - 1 do same = same and psw:size(i) == input:size(i) end
            if not same then argerror(fname, 3, "per_sample_weights must have the shape of input") end
            if psw:dtype() ~= weight:dtype() then
                argerror(fname, 3, "per_sample_weights must be " .. weight:dtype() .. " like weight")
            end
        end
        local idx, pos, bag, count, nbags = bag_plan(fname, input, opt(o.offsets), o.include_last_offset, pad, nemb)
        local dev = weight:device()
        local zeros = tide.zeros({nbags, d}, {dtype = weight:dtype(), device = dev})
        if #idx == 0 then return weight:sum() * 0 + zeros end
        local function long(t) return tide.tensor(t, {dtype = "int64", device = dev}) end
        local present = {}
        for b = 1, nbags do present[b] = count[b] > 0 and 1 or 0 end
        local keep = tide.tensor(present, {dtype = weight:dtype(), device = dev}):view({nbags, 1})
        if o.mode == "max" then
            -- each bag's rows padded to the longest with a -inf row (index nemb)
            local longest = 0
            for b = 1, nbags do longest = math.max(longest, count[b]) end
            local grid, fill = {}, {}
            for b = 1, nbags do fill[b] = 0 end
            for i = 1, nbags * longest do grid[i] = nemb end
            for k = 1, #idx do
                local b = bag[k] + 1
                grid[(b - 1) * longest + fill[b] + 1] = idx[k]
                fill[b] = fill[b] + 1
            end
            local ext = tide.cat({weight, tide.full({1, d}, -math.huge, {dtype = weight:dtype(), device = dev})}, 0)
            local m = ext:index_select(0, long(grid)):view({nbags, longest, d}):max(1)
            return tide.where(keep:gt(0), m, zeros)
        end
        local rows = weight:index_select(0, long(idx))
        if psw ~= nil then rows = rows * psw:reshape({-1}):index_select(0, long(pos)):view({#idx, 1}) end
        local out = zeros:index_add(0, long(bag), rows)
        if o.mode == "mean" then
            local div = {}
            for b = 1, nbags do div[b] = math.max(count[b], 1) end
            out = out / tide.tensor(div, {dtype = weight:dtype(), device = dev}):view({nbags, 1})
        end
        return out
    end

    -------------------------------------------------------------------------
    -- modules
    -------------------------------------------------------------------------

    -- GroupNorm(num_groups, num_channels, {eps = 1e-5, affine = true})
    local GroupNorm = nn.class("GroupNorm")
    nn.GroupNorm = GroupNorm
    function GroupNorm:__init(num_groups, num_channels, opts)
        num_groups = check_int("GroupNorm", 1, num_groups, "num_groups")
        num_channels = check_int("GroupNorm", 2, num_channels, "num_channels")
        if num_channels % num_groups ~= 0 then
            argerror("GroupNorm", 1, string.format("num_channels (%d) must be divisible by num_groups (%d)",
                                                   num_channels, num_groups))
        end
        local o = options("GroupNorm", 3, opts, {"eps", "affine", "dtype"},
                          {eps = 1e-5, affine = true, dtype = "float32"})
        self.num_groups, self.num_channels, self.eps, self.affine = num_groups, num_channels, o.eps, o.affine
        if o.affine then
            self:register_parameter("weight", tide.ones({num_channels}, {dtype = o.dtype}))
            self:register_parameter("bias", tide.zeros({num_channels}, {dtype = o.dtype}))
        end
    end
    function GroupNorm:forward(x)
        return functional("group_norm", "GroupNorm")(x, self.num_groups,
                                                     {weight = self.weight, bias = self.bias, eps = self.eps})
    end
    function GroupNorm:extra_repr()
        return string.format("%d, %d, eps=%g, affine=%s", self.num_groups, self.num_channels, self.eps,
                             bool_str(self.affine))
    end

    -- InstanceNorm1d / 2d(n, {eps = 1e-5, momentum = 0.1, affine = false, track_running_stats = false})
    local function instancenorm_class(name, dim)
        local class = nn.class(name)
        function class:__init(num_features, opts)
            util.norm_init(self, name, num_features, opts, false, false)
        end
        function class:forward(x)
            check_tensor(name, 1, x, "input")
            local d = x:dim()
            if d ~= dim + 1 and d ~= dim + 2 then
                argerror(name, 1, string.format("expected %dD or %dD input, got %dD", dim + 1, dim + 2, d))
            end
            local unbatched = d == dim + 1
            if unbatched then x = x:unsqueeze(0) end
            if x:size(1) ~= self.num_features and self.affine then
                argerror(name, 1, string.format("expected input with %d channels, got %d", self.num_features,
                                                x:size(1)))
            end
            local y = F.instance_norm(x, {running_mean = self.running_mean, running_var = self.running_var,
                                          weight = self.weight, bias = self.bias,
                                          use_input_stats = self.training or not self.track_running_stats,
                                          momentum = self.momentum, eps = self.eps})
            if unbatched then y = y:squeeze(0) end
            return y
        end
        class.extra_repr = util.norm_repr
        nn[name] = class
    end
    instancenorm_class("InstanceNorm1d", 1)
    instancenorm_class("InstanceNorm2d", 2)

    -- MaxPool1d(k, {stride = k, padding = 0, dilation = 1, return_indices = false, ceil_mode = false})
    local MaxPool1d = nn.class("MaxPool1d")
    nn.MaxPool1d = MaxPool1d
    function MaxPool1d:__init(kernel_size, opts)
        self.kernel_size = single("MaxPool1d", 1, kernel_size, "kernel_size")
        local o = options("MaxPool1d", 2, opts, {"stride", "padding", "dilation", "return_indices", "ceil_mode"},
                          {padding = 0, dilation = 1, return_indices = false, ceil_mode = false})
        self.stride = o.stride == nil and self.kernel_size or single("MaxPool1d", 2, o.stride, "stride")
        self.padding = single("MaxPool1d", 2, o.padding, "padding", 0)
        self.dilation = single("MaxPool1d", 2, o.dilation, "dilation")
        if self.padding * 2 > self.kernel_size then
            argerror("MaxPool1d", 2, "padding should be at most half of the kernel size")
        end
        self.return_indices, self.ceil_mode = o.return_indices, o.ceil_mode
    end
    function MaxPool1d:forward(x)
        return F.max_pool1d(x, self.kernel_size, {stride = self.stride, padding = self.padding,
                            dilation = self.dilation, ceil_mode = self.ceil_mode,
                            return_indices = self.return_indices})
    end
    function MaxPool1d:extra_repr()
        return string.format("kernel_size=%d, stride=%d, padding=%d, dilation=%d, ceil_mode=%s", self.kernel_size,
                             self.stride, self.padding, self.dilation, bool_str(self.ceil_mode))
    end

    -- AvgPool1d(k, {stride = k, padding = 0, ceil_mode = false, count_include_pad = true})
    local AvgPool1d = nn.class("AvgPool1d")
    nn.AvgPool1d = AvgPool1d
    function AvgPool1d:__init(kernel_size, opts)
        self.kernel_size = single("AvgPool1d", 1, kernel_size, "kernel_size")
        local o = options("AvgPool1d", 2, opts, {"stride", "padding", "ceil_mode", "count_include_pad"},
                          {padding = 0, ceil_mode = false, count_include_pad = true})
        self.stride = o.stride == nil and self.kernel_size or single("AvgPool1d", 2, o.stride, "stride")
        self.padding = single("AvgPool1d", 2, o.padding, "padding", 0)
        self.ceil_mode, self.count_include_pad = o.ceil_mode, o.count_include_pad
    end
    function AvgPool1d:forward(x)
        return F.avg_pool1d(x, self.kernel_size, {stride = self.stride, padding = self.padding,
                            ceil_mode = self.ceil_mode, count_include_pad = self.count_include_pad})
    end
    function AvgPool1d:extra_repr()
        return string.format("kernel_size=(%d,), stride=(%d,), padding=(%d,)", self.kernel_size, self.stride,
                             self.padding)
    end

    -- AdaptiveAvgPool1d(output_size)
    local AdaptiveAvgPool1d = nn.class("AdaptiveAvgPool1d")
    nn.AdaptiveAvgPool1d = AdaptiveAvgPool1d
    function AdaptiveAvgPool1d:__init(output_size)
        self.output_size = single("AdaptiveAvgPool1d", 1, output_size, "output_size")
    end
    function AdaptiveAvgPool1d:forward(x) return F.adaptive_avg_pool1d(x, self.output_size) end
    function AdaptiveAvgPool1d:extra_repr() return "output_size=" .. self.output_size end

    -- AdaptiveMaxPool1d(output_size, {return_indices = false})
    local AdaptiveMaxPool1d = nn.class("AdaptiveMaxPool1d")
    nn.AdaptiveMaxPool1d = AdaptiveMaxPool1d
    function AdaptiveMaxPool1d:__init(output_size, opts)
        self.output_size = single("AdaptiveMaxPool1d", 1, output_size, "output_size")
        local o = options("AdaptiveMaxPool1d", 2, opts, {"return_indices"}, {return_indices = false})
        self.return_indices = o.return_indices
    end
    function AdaptiveMaxPool1d:forward(x)
        return F.adaptive_max_pool1d(x, self.output_size, {return_indices = self.return_indices})
    end
    function AdaptiveMaxPool1d:extra_repr() return "output_size=" .. self.output_size end

    -- AdaptiveMaxPool2d(output_size, {return_indices = false}); an entry false keeps that dim
    local AdaptiveMaxPool2d = nn.class("AdaptiveMaxPool2d")
    nn.AdaptiveMaxPool2d = AdaptiveMaxPool2d
    function AdaptiveMaxPool2d:__init(output_size, opts)
        if type(output_size) == "table" then
            if #output_size ~= 2 then argerror("AdaptiveMaxPool2d", 1, "output_size must be a number or {h, w}") end
            for i = 1, 2 do
                if output_size[i] ~= false then check_int("AdaptiveMaxPool2d", 1, output_size[i], "output_size") end
            end
        else
            check_int("AdaptiveMaxPool2d", 1, output_size, "output_size")
        end
        local o = options("AdaptiveMaxPool2d", 2, opts, {"return_indices"}, {return_indices = false})
        self.output_size, self.return_indices = output_size, o.return_indices
    end
    function AdaptiveMaxPool2d:forward(x)
        return functional("adaptive_max_pool2d", "AdaptiveMaxPool2d")(x, self.output_size,
                                                                     {return_indices = self.return_indices})
    end
    function AdaptiveMaxPool2d:extra_repr()
        local s = self.output_size
        if type(s) == "table" then
            s = "(" .. tostring(s[1] or "None") .. ", " .. tostring(s[2] or "None") .. ")"
        end
        return "output_size=" .. tostring(s)
    end

    -- MaxUnpool2d(k, {stride = k, padding = 0}); forward(x, indices, output_size)
    local MaxUnpool2d = nn.class("MaxUnpool2d")
    nn.MaxUnpool2d = MaxUnpool2d
    function MaxUnpool2d:__init(kernel_size, opts)
        self.kernel_size = pair("MaxUnpool2d", 1, kernel_size, "kernel_size")
        local o = options("MaxUnpool2d", 2, opts, {"stride", "padding"}, {padding = 0})
        self.stride = o.stride == nil and self.kernel_size or pair("MaxUnpool2d", 2, o.stride, "stride")
        self.padding = pair("MaxUnpool2d", 2, o.padding, "padding", 0)
    end
    function MaxUnpool2d:forward(x, indices, output_size)
        return F.max_unpool2d(x, indices, self.kernel_size, {stride = self.stride, padding = self.padding,
                              output_size = output_size})
    end
    function MaxUnpool2d:extra_repr()
        return string.format("kernel_size=%s, stride=%s, padding=%s", show_pair(self.kernel_size),
                             show_pair(self.stride), show_pair(self.padding))
    end

    -- EmbeddingBag(n, d, {mode = "mean", padding_idx, include_last_offset = false});
    -- forward(input, offsets, per_sample_weights)
    local EmbeddingBag = nn.class("EmbeddingBag")
    nn.EmbeddingBag = EmbeddingBag
    function EmbeddingBag:__init(num_embeddings, embedding_dim, opts)
        local fname = "EmbeddingBag"
        num_embeddings = check_int(fname, 1, num_embeddings, "num_embeddings")
        embedding_dim = check_int(fname, 2, embedding_dim, "embedding_dim")
        local o = options(fname, 3, opts, {"max_norm", "norm_type", "scale_grad_by_freq", "mode", "sparse",
                                           "include_last_offset", "padding_idx", "dtype"},
                          {mode = "mean", include_last_offset = false, dtype = "float32"})
        check_bag_options(fname, o)
        local pad = opt(o.padding_idx)
        if pad ~= nil then
            if math.type(pad) ~= "integer" or pad < -num_embeddings or pad >= num_embeddings then
                argerror(fname, 3, string.format("padding_idx must be an integer in [%d, %d), got %s",
                                                 -num_embeddings, num_embeddings, tostring(pad)))
            end
            if pad < 0 then pad = pad + num_embeddings end
        end
        self.num_embeddings, self.embedding_dim, self.mode = num_embeddings, embedding_dim, o.mode
        self.include_last_offset, self.padding_idx = o.include_last_offset, pad
        self:register_parameter("weight", tide.empty({num_embeddings, embedding_dim}, {dtype = o.dtype}))
        nn.init.normal_(self.weight)
        if pad ~= nil then tide.no_grad(function() self.weight:select(0, pad):fill_(0) end) end
    end
    function EmbeddingBag:forward(input, offsets, per_sample_weights)
        return F.embedding_bag(input, self.weight, {offsets = offsets, mode = self.mode,
                               per_sample_weights = per_sample_weights,
                               include_last_offset = self.include_last_offset, padding_idx = self.padding_idx})
    end
    function EmbeddingBag:extra_repr()
        local s = string.format("%d, %d, mode=%s", self.num_embeddings, self.embedding_dim, self.mode)
        if self.padding_idx ~= nil then s = s .. ", padding_idx=" .. self.padding_idx end
        return s
    end
end

return M
