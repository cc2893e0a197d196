-- tide.nn's conv family, padding and resampling, with PyTorch 1.13's
-- semantics and state_dict keys: Conv1d, Conv2d, Conv3d,
-- ConvTranspose1d/2d/3d (one option parser, conv_init, for all six),
-- padding = "same" | "valid" and padding_mode for the convolutions, the
-- pad modules, Upsample, PixelShuffle, PixelUnshuffle and Unflatten.
--
-- The convolutions (padding = "same" included: bindings/core/l_convnd.c),
-- F.pad and F.interpolate are kernels of tide.core. A padding_mode other
-- than "zeros" pads through F.pad and convolves with padding 0, as
-- PyTorch. The pixel shuffles are reshapes and a permute (a copy).

local M = {}

function M.install(nn, tide, core, util)
    local F = tide.F
    local argerror, options, check_int = util.argerror, util.options, util.check_int
    local functional = util.functional

    local check_tensor = util.check_tensor

    -- a number or a table of nd -> a table of nd integers >= min
    local function tuple(fname, n, v, what, nd, min)
        if type(v) == "table" then
            if #v ~= nd then
                argerror(fname, n, string.format("%s must be an integer or a table of %d integers", what, nd))
            end
            local r = {}
            for i = 1, nd do r[i] = check_int(fname, n, v[i], what, min) end
            return r
        end
        local x = check_int(fname, n, v, what, min)
        local r = {}
        for i = 1, nd do r[i] = x end
        return r
    end

    -- PyTorch's repr of a tuple: (3,) (3, 3)
    local function show(t)
        if #t == 1 then return "(" .. t[1] .. ",)" end
        return "(" .. table.concat(t, ", ") .. ")"
    end
    local function all_equal(t, v)
        for i = 1, #t do if t[i] ~= v then return false end end
        return true
    end

    local pad_modes = {zeros = true, reflect = true, replicate = true, circular = true}

    F.pad = core.pad
    F.interpolate = core.interpolate
    F.conv1d = core.conv1d
    F.conv3d = core.conv3d
    F.conv_transpose1d = core.conv_transpose1d
    F.conv_transpose2d = core.conv_transpose2d
    F.conv_transpose3d = core.conv_transpose3d

    -------------------------------------------------------------------------
    -- the conv modules
    -------------------------------------------------------------------------

    -- false_word: how a missing bias reads (PyTorch's False unless given)
    local function extra_repr(self, false_word)
        local s = string.format("%d, %d, kernel_size=%s, stride=%s", self.in_channels, self.out_channels,
                                show(self.kernel_size), show(self.stride))
        if type(self.padding) == "string" then
            s = s .. ", padding=" .. self.padding
        elseif not all_equal(self.padding, 0) then
            s = s .. ", padding=" .. show(self.padding)
        end
        if not all_equal(self.dilation, 1) then s = s .. ", dilation=" .. show(self.dilation) end
        if self.output_padding and not all_equal(self.output_padding, 0) then
            s = s .. ", output_padding=" .. show(self.output_padding)
        end
        if self.groups ~= 1 then s = s .. ", groups=" .. self.groups end
        if self.bias == nil then s = s .. ", bias=" .. (false_word or "False") end
        if self.padding_mode ~= "zeros" then s = s .. ", padding_mode=" .. self.padding_mode end
        return s
    end

    -- the checks and fields every conv module shares
    local function conv_init(self, name, nd, transposed, in_channels, out_channels, kernel_size, opts)
        in_channels = check_int(name, 1, in_channels, "in_channels")
        out_channels = check_int(name, 2, out_channels, "out_channels")
        local k = tuple(name, 3, kernel_size, "kernel_size", nd)
        local known = {"stride", "padding", "dilation", "groups", "bias", "padding_mode", "dtype"}
        if transposed then known[#known + 1] = "output_padding" end
        local o = options(name, 4, opts, known, {stride = 1, padding = 0, dilation = 1, groups = 1,
                          bias = true, padding_mode = "zeros", dtype = "float32", output_padding = 0})
        self.stride = tuple(name, 4, o.stride, "stride", nd)
        self.dilation = tuple(name, 4, o.dilation, "dilation", nd)
        self.groups = check_int(name, 4, o.groups, "groups")
        if in_channels % self.groups ~= 0 or out_channels % self.groups ~= 0 then
            argerror(name, 4, string.format("groups = %d must divide in_channels (%d) and out_channels (%d)",
                                            self.groups, in_channels, out_channels))
        end
        if not pad_modes[o.padding_mode] then
            argerror(name, 4, string.format("padding_mode must be \"zeros\", \"reflect\", \"replicate\" or "
                                            .. "\"circular\", got %s", tostring(o.padding_mode)))
        end
        if transposed and o.padding_mode ~= "zeros" then
            argerror(name, 4, string.format("only padding_mode \"zeros\" is supported for %s", name))
        end
        self.padding_mode = o.padding_mode
        if type(o.padding) == "string" then
            if transposed or (o.padding ~= "same" and o.padding ~= "valid") then
                argerror(name, 4, string.format("padding must be %sintegers, got \"%s\"",
                                                transposed and "" or "\"same\", \"valid\" or ", o.padding))
            end
            if o.padding == "same" and not all_equal(self.stride, 1) then
                argerror(name, 4, "padding = \"same\" is not supported for strided convolutions")
            end
            self.padding = o.padding
        else
            self.padding = tuple(name, 4, o.padding, "padding", nd, 0)
        end
        if transposed then self.output_padding = tuple(name, 4, o.output_padding, "output_padding", nd, 0) end
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, k
        -- F.pad's sizes for padding_mode, last dim first, as PyTorch's
        -- _reversed_padding_repeated_twice
        if self.padding_mode ~= "zeros" then
            local rev = {}
            for i = 1, nd do
                local l, r
                if self.padding == "valid" then
                    l, r = 0, 0
                elseif self.padding == "same" then
                    local total = self.dilation[i] * (k[i] - 1)
                    l = total // 2
                    r = total - l
                else
                    l, r = self.padding[i], self.padding[i]
                end
                rev[2 * (nd - i) + 1], rev[2 * (nd - i) + 2] = l, r
            end
            self._reversed_padding_repeated_twice = rev
        end
        local wshape = transposed and {in_channels, out_channels // self.groups}
                                   or {out_channels, in_channels // self.groups}
        for i = 1, nd do wshape[2 + i] = k[i] end
        self:register_parameter("weight", tide.empty(wshape, {dtype = o.dtype}))
        if o.bias then self:register_parameter("bias", tide.empty({out_channels}, {dtype = o.dtype})) end
        self:reset_parameters()
    end

    local function conv_class(name, nd, fname)
        local class = nn.class(name)
        nn[name] = class
        function class:__init(in_channels, out_channels, kernel_size, opts)
            conv_init(self, name, nd, false, in_channels, out_channels, kernel_size, opts)
        end
        class.reset_parameters = util.reset_kaiming
        function class:forward(x)
            local padding = self.padding
            if self.padding_mode ~= "zeros" then
                x = F.pad(x, self._reversed_padding_repeated_twice, {mode = self.padding_mode})
                padding = 0
            end
            -- called as it is got, so that its errors name the function
            -- ('conv2d'), not a local
            return functional(fname, name)(x, self.weight, {bias = self.bias, stride = self.stride,
                padding = padding, dilation = self.dilation, groups = self.groups})
        end
        class.extra_repr = extra_repr
        return class
    end
    conv_class("Conv1d", 1, "conv1d")
    local Conv2d = conv_class("Conv2d", 2, "conv2d")
    conv_class("Conv3d", 3, "conv3d")

    -- Conv2d(in, out, k, {stride = 1, padding = 0, dilation = 1, groups = 1,
    -- bias = true, padding_mode = "zeros"}). Its repr says a missing bias as
    -- it always has: Lua's false, but PyTorch's False once a padding string
    -- or padding_mode is given
    local conv2d_init = Conv2d.__init
    function Conv2d:__init(in_channels, out_channels, kernel_size, opts)
        conv2d_init(self, in_channels, out_channels, kernel_size, opts)
        if type(opts) == "table" and (opts.padding_mode ~= nil or type(opts.padding) == "string") then
            self._extended = true
        end
    end
    function Conv2d:extra_repr()
        return extra_repr(self, not self._extended and "false" or nil)
    end

    -- ConvTranspose: forward(x, output_size) picks output_padding so the
    -- output has output_size's trailing dims (PyTorch's _output_padding)
    local function transposed_class(name, nd, fname)
        local class = nn.class(name)
        nn[name] = class
        function class:__init(in_channels, out_channels, kernel_size, opts)
            conv_init(self, name, nd, true, in_channels, out_channels, kernel_size, opts)
        end
        class.reset_parameters = util.reset_kaiming
        function class:forward(x, output_size)
            check_tensor(name, 1, x, "input")
            local op = self.output_padding
            if output_size ~= nil then
                if type(output_size) ~= "table" then
                    argerror(name, 2, "output_size must be a table of sizes, got " .. type(output_size))
                end
                local s, n = x:shape(), #output_size
                if n ~= nd and n ~= nd + 1 and n ~= nd + 2 then
                    argerror(name, 2, string.format("output_size must have %d or %d elements, got %d",
                                                    nd, #s, n))
                end
                op = {}
                for i = 1, nd do
                    local want = output_size[n - nd + i]
                    local lo = (s[#s - nd + i] - 1) * self.stride[i] - 2 * self.padding[i]
                               + self.dilation[i] * (self.kernel_size[i] - 1) + 1
                    local hi = lo + self.stride[i] - 1
                    if want < lo or want > hi then
                        argerror(name, 2, string.format(
                            "requested an output size of %d in spatial dim %d, but valid sizes range "
                            .. "from %d to %d", want, i, lo, hi))
                    end
                    op[i] = want - lo
                end
            end
            return functional(fname, name)(x, self.weight, {bias = self.bias, stride = self.stride,
                padding = self.padding, output_padding = op, dilation = self.dilation, groups = self.groups})
        end
        class.extra_repr = extra_repr
        return class
    end
    transposed_class("ConvTranspose1d", 1, "conv_transpose1d")
    transposed_class("ConvTranspose2d", 2, "conv_transpose2d")
    transposed_class("ConvTranspose3d", 3, "conv_transpose3d")

    -------------------------------------------------------------------------
    -- padding modules: (padding) an integer or 2 nd sizes, last dim first
    -------------------------------------------------------------------------

    local function pad_class(name, nd, mode, has_value)
        local class = nn.class(name)
        nn[name] = class
        function class:__init(padding, value)
            if type(padding) == "table" then
                if #padding ~= 2 * nd then
                    argerror(name, 1, string.format("padding must be an integer or a table of %d integers",
                                                    2 * nd))
                end
                local p = {}
                for i = 1, 2 * nd do p[i] = check_int(name, 1, padding[i], "padding", -math.maxinteger) end
                self.padding = p
            else
                local x = check_int(name, 1, padding, "padding", mode == "constant" and -math.maxinteger or 0)
                self.padding = {}
                for i = 1, 2 * nd do self.padding[i] = x end
            end
            if has_value then
                if type(value) ~= "number" then
                    argerror(name, 2, "value must be a number, got " .. type(value))
                end
                self.value = value
            elseif value ~= nil then
                argerror(name, 2, "takes one argument (padding)")
            end
        end
        function class:forward(x)
            if mode == "constant" then return F.pad(x, self.padding, {value = self.value or 0}) end
            return F.pad(x, self.padding, {mode = mode})
        end
        function class:extra_repr()
            local s = "(" .. table.concat(self.padding, ", ") .. ")"
            if has_value then return "padding=" .. s .. ", value=" .. tostring(self.value + 0.0) end
            return s
        end
    end
    pad_class("ZeroPad2d", 2, "constant", false)
    pad_class("ConstantPad1d", 1, "constant", true)
    pad_class("ConstantPad2d", 2, "constant", true)
    pad_class("ConstantPad3d", 3, "constant", true)
    pad_class("ReflectionPad1d", 1, "reflect", false)
    pad_class("ReflectionPad2d", 2, "reflect", false)
    pad_class("ReflectionPad3d", 3, "reflect", false)
    pad_class("ReplicationPad1d", 1, "replicate", false)
    pad_class("ReplicationPad2d", 2, "replicate", false)
    pad_class("ReplicationPad3d", 3, "replicate", false)

    -------------------------------------------------------------------------
    -- Upsample({size =, scale_factor =, mode = "nearest", align_corners =,
    --           recompute_scale_factor =})
    -------------------------------------------------------------------------

    local function show_num(v)
        if math.type(v) == "integer" then return string.format("%.1f", v) end
        return tostring(v)
    end

    local Upsample = nn.class("Upsample")
    nn.Upsample = Upsample
    function Upsample:__init(opts)
        local o = options("Upsample", 1, opts, {"size", "scale_factor", "mode", "align_corners",
                                                "recompute_scale_factor"}, {mode = "nearest"})
        self.size, self.scale_factor, self.mode = o.size, o.scale_factor, o.mode
        self.align_corners, self.recompute_scale_factor = o.align_corners, o.recompute_scale_factor
        if self.size == false then self.size = nil end
        if self.scale_factor == false then self.scale_factor = nil end
        if (self.size == nil) == (self.scale_factor == nil) then
            argerror("Upsample", 1, "give size or scale_factor (one of them)")
        end
    end
    function Upsample:forward(x)
        return functional("interpolate", "Upsample")(x, {size = self.size, scale_factor = self.scale_factor,
            mode = self.mode, align_corners = self.align_corners,
            recompute_scale_factor = self.recompute_scale_factor})
    end
    function Upsample:extra_repr()
        local s
        if self.scale_factor ~= nil then
            local f = self.scale_factor
            if type(f) == "table" then
                local parts = {}
                for i = 1, #f do parts[i] = show_num(f[i]) end
                f = "(" .. table.concat(parts, ", ") .. ")"
            else
                f = show_num(f)
            end
            s = "scale_factor=" .. f
        else
            local z = self.size
            s = "size=" .. (type(z) == "table" and "(" .. table.concat(z, ", ") .. ")" or tostring(z))
        end
        return s .. ", mode=" .. self.mode
    end

    -- UpsamplingNearest2d / UpsamplingBilinear2d({size =, scale_factor =})
    local function upsampling(name, mode, align)
        local class = nn.class(name, Upsample)
        nn[name] = class
        function class:__init(opts)
            local o = options(name, 1, opts, {"size", "scale_factor"})
            Upsample.__init(self, {size = o.size, scale_factor = o.scale_factor, mode = mode,
                                   align_corners = align})
        end
    end
    upsampling("UpsamplingNearest2d", "nearest", nil)
    upsampling("UpsamplingBilinear2d", "bilinear", true)

    -------------------------------------------------------------------------
    -- pixel shuffle, unflatten
    -------------------------------------------------------------------------

    -- (*, C r^2, H, W) -> (*, C, H r, W r)
    function F.pixel_shuffle(x, r)
        check_tensor("pixel_shuffle", 1, x, "input")
        r = check_int("pixel_shuffle", 2, r, "upscale_factor")
        local s = x:shape()
        local n = #s
        if n < 3 then argerror("pixel_shuffle", 1, "input must have at least 3 dims, got " .. n) end
        local c, h, w = s[n - 2], s[n - 1], s[n]
        if c % (r * r) ~= 0 then
            argerror("pixel_shuffle", 1, string.format(
                "channels (%d) must be divisible by the square of upscale_factor (%d)", c, r * r))
        end
        local split, perm, final = {}, {}, {}
        for i = 1, n - 3 do split[i], final[i], perm[i] = s[i], s[i], i - 1 end
        local k = n - 3
        for i, v in ipairs({c // (r * r), r, r, h, w}) do split[k + i] = v end
        -- (c, r1, r2, h, w) -> (c, h, r1, w, r2)
        for i, v in ipairs({0, 3, 1, 4, 2}) do perm[k + i] = k + v end
        for i, v in ipairs({c // (r * r), h * r, w * r}) do final[k + i] = v end
        return x:reshape(split):permute(perm):reshape(final)
    end

    -- (*, C, H r, W r) -> (*, C r^2, H, W)
    function F.pixel_unshuffle(x, r)
        check_tensor("pixel_unshuffle", 1, x, "input")
        r = check_int("pixel_unshuffle", 2, r, "downscale_factor")
        local s = x:shape()
        local n = #s
        if n < 3 then argerror("pixel_unshuffle", 1, "input must have at least 3 dims, got " .. n) end
        local c, h, w = s[n - 2], s[n - 1], s[n]
        if h % r ~= 0 or w % r ~= 0 then
            argerror("pixel_unshuffle", 1, string.format(
                "height (%d) and width (%d) must be divisible by downscale_factor (%d)", h, w, r))
        end
        local split, perm, final = {}, {}, {}
        for i = 1, n - 3 do split[i], final[i], perm[i] = s[i], s[i], i - 1 end
        local k = n - 3
        for i, v in ipairs({c, h // r, r, w // r, r}) do split[k + i] = v end
        -- (c, h, r1, w, r2) -> (c, r1, r2, h, w)
        for i, v in ipairs({0, 2, 4, 1, 3}) do perm[k + i] = k + v end
        for i, v in ipairs({c * r * r, h // r, w // r}) do final[k + i] = v end
        return x:reshape(split):permute(perm):reshape(final)
    end

    local function shuffle_class(name, fname, what)
        local class = nn.class(name)
        nn[name] = class
        function class:__init(r) self[what] = check_int(name, 1, r, what) end
        function class:forward(x) return F[fname](x, self[what]) end
        function class:extra_repr() return what .. "=" .. self[what] end
    end
    shuffle_class("PixelShuffle", "pixel_shuffle", "upscale_factor")
    shuffle_class("PixelUnshuffle", "pixel_unshuffle", "downscale_factor")

    -- Unflatten(dim, sizes): dim of the input becomes sizes (one may be -1)
    local Unflatten = nn.class("Unflatten")
    nn.Unflatten = Unflatten
    function Unflatten:__init(dim, sizes)
        self.dim = check_int("Unflatten", 1, dim, "dim", -math.maxinteger)
        if type(sizes) ~= "table" or #sizes == 0 then
            argerror("Unflatten", 2, "unflattened_size must be a non-empty table of sizes, got " .. type(sizes))
        end
        for i = 1, #sizes do check_int("Unflatten", 2, sizes[i], "unflattened_size", -1) end
        self.unflattened_size = sizes
    end
    function Unflatten:forward(x)
        check_tensor("Unflatten", 1, x, "input")
        local s = x:shape()
        local d = self.dim
        if d < 0 then d = d + #s end
        if d < 0 or d >= #s then
            argerror("Unflatten", 1, string.format("dim %d is out of range for an input of %d dims",
                                                   self.dim, #s))
        end
        local shape = {}
        for i = 1, d do shape[#shape + 1] = s[i] end
        for _, v in ipairs(self.unflattened_size) do shape[#shape + 1] = v end
        for i = d + 2, #s do shape[#shape + 1] = s[i] end
        return x:reshape(shape)
    end
    function Unflatten:extra_repr()
        return string.format("dim=%d, unflattened_size=(%s)", self.dim,
                             table.concat(self.unflattened_size, ", ") .. (#self.unflattened_size == 1 and "," or ""))
    end
end

return M
