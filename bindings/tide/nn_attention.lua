-- tide.nn's attention layers: F.scaled_dot_product_attention (the fused
-- kernel of tide.core), nn.MultiheadAttention, nn.TransformerEncoderLayer,
-- nn.TransformerDecoderLayer and the stacks nn.TransformerEncoder and
-- nn.TransformerDecoder, with PyTorch 1.13's parameter names, so a
-- state_dict moves between the two as it is.
--
-- Inside, every sequence is batch-first (N, L, E): a sequence-first input is
-- a transposed view, and the heads are (N, H, L, head_dim), the layout the
-- fused kernel reads. Masks in MultiheadAttention follow PyTorch's module
-- (a true entry, non-zero uint8, is left out; a float mask is added), and
-- become one additive float mask broadcast to (N, H, L, S) without being
-- expanded.

local M = {}

function M.install(nn, tide, core, util)
    local F = tide.F
    local argerror, options, check_int = util.argerror, util.options, util.check_int

    F.scaled_dot_product_attention = core.scaled_dot_product_attention

    local bool_str, check_tensor, opt = util.bool_str, util.check_tensor, util.opt

    -------------------------------------------------------------------------
    -- MultiheadAttention(embed_dim, num_heads, {dropout = 0, bias = true,
    -- add_bias_kv = false, kdim, vdim, batch_first = false})
    -------------------------------------------------------------------------
    local MHA = nn.class("MultiheadAttention")
    nn.MultiheadAttention = MHA

    function MHA:__init(embed_dim, num_heads, opts)
        local fname = "MultiheadAttention"
        embed_dim = check_int(fname, 1, embed_dim, "embed_dim")
        num_heads = check_int(fname, 2, num_heads, "num_heads")
        local o = options(fname, 3, opts, {"dropout", "bias", "add_bias_kv", "add_zero_attn", "kdim", "vdim",
                                           "batch_first", "dtype"},
                          {dropout = 0, bias = true, add_bias_kv = false, add_zero_attn = false,
                           batch_first = false, dtype = "float32"})
        if o.add_zero_attn then argerror(fname, 3, "option 'add_zero_attn' is not supported") end
        if embed_dim % num_heads ~= 0 then
            argerror(fname, 2, string.format("embed_dim (%d) must be divisible by num_heads (%d)", embed_dim,
                                             num_heads))
        end
        if type(o.dropout) ~= "number" or o.dropout < 0 or o.dropout > 1 then
            argerror(fname, 3, "dropout must be a probability in [0, 1], got " .. tostring(o.dropout))
        end
        local kdim = opt(o.kdim) and check_int(fname, 3, o.kdim, "kdim") or embed_dim
        local vdim = opt(o.vdim) and check_int(fname, 3, o.vdim, "vdim") or embed_dim
        self.embed_dim, self.num_heads, self.head_dim = embed_dim, num_heads, embed_dim // num_heads
        self.kdim, self.vdim, self.dropout, self.batch_first = kdim, vdim, o.dropout, o.batch_first and true
        self._qkv_same_embed_dim = kdim == embed_dim and vdim == embed_dim
        local dt = {dtype = o.dtype}
        if self._qkv_same_embed_dim then
            self:register_parameter("in_proj_weight", tide.empty({3 * embed_dim, embed_dim}, dt))
        else
            self:register_parameter("q_proj_weight", tide.empty({embed_dim, embed_dim}, dt))
            self:register_parameter("k_proj_weight", tide.empty({embed_dim, kdim}, dt))
            self:register_parameter("v_proj_weight", tide.empty({embed_dim, vdim}, dt))
        end
        if o.bias then self:register_parameter("in_proj_bias", tide.empty({3 * embed_dim}, dt)) end
        if o.add_bias_kv then
            self:register_parameter("bias_k", tide.empty({1, 1, embed_dim}, dt))
            self:register_parameter("bias_v", tide.empty({1, 1, embed_dim}, dt))
        end
        self:add_module("out_proj", nn.Linear(embed_dim, embed_dim, {bias = o.bias, dtype = o.dtype}))
        self:reset_parameters()
    end

    -- PyTorch's: xavier_uniform_ projections, zero biases, xavier_normal_ bias_k and bias_v
    function MHA:reset_parameters()
        local init = nn.init
        for _, name in ipairs({"in_proj_weight", "q_proj_weight", "k_proj_weight", "v_proj_weight"}) do
            if rawget(self, name) then init.xavier_uniform_(self[name]) end
        end
        if rawget(self, "in_proj_bias") then
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        end
        if rawget(self, "bias_k") then
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)
        end
    end

    -- the float mask (broadcastable to (N, H, L, S)) that attn_mask and
    -- key_padding_mask make together, or nil
    local function merged_mask(fname, am, kpm, n, h, l, s, dtype)
        local mask
        local function additive(m, what)
            if m:dtype() == "uint8" then
                return tide.zeros(m:shape(), {dtype = dtype}):masked_fill(m, -math.huge)
            end
            if m:dtype() ~= dtype then
                argerror(fname, 4, string.format("%s must be uint8 (bool) or %s like query, got %s", what, dtype,
                                                 m:dtype()))
            end
            return m
        end
        if am then
            check_tensor(fname, 4, am, "attn_mask")
            local sh = am:shape()
            if am:dim() == 2 then
                if sh[1] ~= l or sh[2] ~= s then
                    argerror(fname, 4, string.format("attn_mask must be (L, S) = (%d, %d), got (%s)", l, s,
                                                     table.concat(sh, ", ")))
                end
            elseif am:dim() == 3 then
                if sh[1] ~= n * h or sh[2] ~= l or sh[3] ~= s then
                    argerror(fname, 4, string.format("a 3-dim attn_mask must be (N * num_heads, L, S) = (%d, %d, %d), "
                                                     .. "got (%s)", n * h, l, s, table.concat(sh, ", ")))
                end
                am = am:view({n, h, l, s})
            else
                argerror(fname, 4, "attn_mask must have 2 or 3 dims, got " .. am:dim())
            end
            mask = additive(am, "attn_mask")
        end
        if kpm then
            check_tensor(fname, 4, kpm, "key_padding_mask")
            local sh = kpm:shape()
            if kpm:dim() ~= 2 or sh[1] ~= n or sh[2] ~= s then
                argerror(fname, 4, string.format("key_padding_mask must be (N, S) = (%d, %d), got (%s)", n, s,
                                                 table.concat(sh, ", ")))
            end
            local k = additive(kpm, "key_padding_mask"):view({n, 1, 1, s})
            mask = mask and mask + k or k
        end
        return mask
    end

    -- x (..., S, E) with one more row of b (1, 1, E) at the end of S
    local function append_row(x, b)
        local sh = x:shape()
        sh[2] = 1
        return tide.cat({x, b:expand(sh)}, 1)
    end

    -- forward(query, key, value, {key_padding_mask, need_weights = true,
    -- attn_mask, average_attn_weights = true}) -> output, weights (nil when
    -- need_weights = false). need_weights = false runs the fused kernel;
    -- true builds the (N, H, L, S) weights as PyTorch does.
    function MHA:forward(query, key, value, opts)
        local fname = "MultiheadAttention"
        check_tensor(fname, 1, query, "query")
        check_tensor(fname, 2, key, "key")
        check_tensor(fname, 3, value, "value")
        local o = options(fname, 4, opts, {"key_padding_mask", "need_weights", "attn_mask", "average_attn_weights"},
                          {need_weights = true, average_attn_weights = true})
        local batched = query:dim() == 3
        if not batched and query:dim() ~= 2 then
            argerror(fname, 1, "query must be 2-dim (L, E) or 3-dim, got " .. query:dim() .. " dims")
        end
        if key:dim() ~= query:dim() or value:dim() ~= query:dim() then
            argerror(fname, 2, "query, key and value must have the same number of dims")
        end
        local kpm = opt(o.key_padding_mask)
        if not batched then
            query, key, value = query:unsqueeze(0), key:unsqueeze(0), value:unsqueeze(0)
            if kpm then kpm = kpm:unsqueeze(0) end
        elseif not self.batch_first then
            query, key, value = query:transpose(0, 1), key:transpose(0, 1), value:transpose(0, 1)
        end
        local E, H, hd = self.embed_dim, self.num_heads, self.head_dim
        local n, l = query:size(0), query:size(1)
        if query:size(2) ~= E then
            argerror(fname, 1, string.format("query's embedding dim must be %d, got %d", E, query:size(2)))
        end
        if key:size(0) ~= n or value:size(0) ~= n or key:size(1) ~= value:size(1) then
            argerror(fname, 2, "key and value must have query's batch size and the same length")
        end
        if key:size(2) ~= self.kdim or value:size(2) ~= self.vdim then
            argerror(fname, 2, string.format("key and value must have %d and %d features, got %d and %d", self.kdim,
                                             self.vdim, key:size(2), value:size(2)))
        end
        local b = self.in_proj_bias
        local bq, bk, bv
        if b then bq, bk, bv = b:narrow(0, 0, E), b:narrow(0, E, E), b:narrow(0, 2 * E, E) end
        local q, k, v
        if self._qkv_same_embed_dim then
            local w = self.in_proj_weight
            if rawequal(query, key) and rawequal(key, value) then
                local y = F.linear(query, w, {bias = b})
                q, k, v = y:narrow(2, 0, E), y:narrow(2, E, E), y:narrow(2, 2 * E, E)
            else
                q = F.linear(query, w:narrow(0, 0, E), {bias = bq})
                k = F.linear(key, w:narrow(0, E, E), {bias = bk})
                v = F.linear(value, w:narrow(0, 2 * E, E), {bias = bv})
            end
        else
            q = F.linear(query, self.q_proj_weight, {bias = bq})
            k = F.linear(key, self.k_proj_weight, {bias = bk})
            v = F.linear(value, self.v_proj_weight, {bias = bv})
        end
        local am = opt(o.attn_mask)
        if self.bias_k then
            k, v = append_row(k, self.bias_k), append_row(v, self.bias_v)
            local pad = function(m)
                local sh = m:shape()
                sh[#sh] = 1
                return tide.cat({m, tide.zeros(sh, {dtype = m:dtype()})}, -1)
            end
            if am then am = pad(am) end
            if kpm then kpm = pad(kpm) end
        end
        local s = k:size(1)
        local mask = merged_mask(fname, am, kpm, n, H, l, s, q:dtype())
        -- (N, L, E) -> (N, H, L, hd)
        local function heads(t, len) return t:reshape({n, len, H, hd}):transpose(1, 2) end
        q, k, v = heads(q, l), heads(k, s), heads(v, s)
        local p = self.training and self.dropout or 0
        local out, weights
        if o.need_weights then
            local scores = (q / math.sqrt(hd)):matmul(k:transpose(2, 3))
            if mask then scores = scores + mask end
            -- the weights returned are the ones applied, after dropout, as PyTorch's
            weights = scores:softmax(-1)
            if p > 0 then weights = F.dropout(weights, {p = p}) end
            out = weights:matmul(v)
        else
            out = F.scaled_dot_product_attention(q, k, v, {attn_mask = mask, dropout_p = p})
        end
        out = self.out_proj(out:transpose(1, 2):reshape({n, l, E}))
        if weights and o.average_attn_weights then weights = weights:mean(1) end
        if not batched then
            out = out:squeeze(0)
            if weights then weights = weights:squeeze(0) end
        elseif not self.batch_first then
            out = out:transpose(0, 1)
        end
        return out, weights
    end

    function MHA:extra_repr()
        return string.format("embed_dim=%d, num_heads=%d, dropout=%g, batch_first=%s", self.embed_dim,
                             self.num_heads, self.dropout, bool_str(self.batch_first))
    end

    -------------------------------------------------------------------------
    -- the Transformer layers
    -------------------------------------------------------------------------
    local activations = {relu = "relu", gelu = "gelu"}

    local function activation_of(fname, a)
        if type(a) == "function" then return a end
        if activations[a] then
            local name = activations[a]
            return function(x) return F[name](x) end
        end
        argerror(fname, 3, "activation must be 'relu', 'gelu' or a function, got " .. tostring(a))
    end

    local layer_known = {"dim_feedforward", "dropout", "activation", "layer_norm_eps", "batch_first", "norm_first",
                         "dtype"}
    local layer_defaults = {dim_feedforward = 2048, dropout = 0.1, activation = "relu", layer_norm_eps = 1e-5,
                            batch_first = false, norm_first = false, dtype = "float32"}

    -- the parts both layers share, in PyTorch's registration order up to
    -- norm1 (decoder layers add multihead_attn after self_attn)
    local function build_layer(self, fname, d_model, nhead, opts, decoder)
        d_model = check_int(fname, 1, d_model, "d_model")
        nhead = check_int(fname, 2, nhead, "nhead")
        local o = options(fname, 3, opts, layer_known, layer_defaults)
        rawset(self, "_args", {d_model, nhead, opts})
        local dff = check_int(fname, 3, o.dim_feedforward, "dim_feedforward")
        local mo = {dropout = o.dropout, batch_first = o.batch_first, dtype = o.dtype}
        self:add_module("self_attn", nn.MultiheadAttention(d_model, nhead, mo))
        if decoder then self:add_module("multihead_attn", nn.MultiheadAttention(d_model, nhead, mo)) end
        self:add_module("linear1", nn.Linear(d_model, dff, {dtype = o.dtype}))
        self:add_module("dropout", nn.Dropout({p = o.dropout}))
        self:add_module("linear2", nn.Linear(dff, d_model, {dtype = o.dtype}))
        self.norm_first, self.batch_first = o.norm_first and true, o.batch_first and true
        local no = {eps = o.layer_norm_eps, dtype = o.dtype}
        for i = 1, decoder and 3 or 2 do self:add_module("norm" .. i, nn.LayerNorm(d_model, no)) end
        for i = 1, decoder and 3 or 2 do self:add_module("dropout" .. i, nn.Dropout({p = o.dropout})) end
        self.activation = activation_of(fname, o.activation)
        self.activation_name = type(o.activation) == "string" and o.activation or "function"
    end

    local function self_attention(self, x, mask, kpm)
        local y = self.self_attn(x, x, x, {attn_mask = mask, key_padding_mask = kpm, need_weights = false})
        return self.dropout1(y)
    end

    local function feed_forward(self, x, dropout)
        return dropout(self.linear2(self.dropout(self.activation(self.linear1(x)))))
    end

    local function layer_repr(self)
        return string.format("activation=%s, norm_first=%s, batch_first=%s", self.activation_name,
                             bool_str(self.norm_first), bool_str(self.batch_first))
    end

    -- TransformerEncoderLayer(d_model, nhead, {dim_feedforward = 2048,
    -- dropout = 0.1, activation = "relu", layer_norm_eps = 1e-5,
    -- batch_first = false, norm_first = false})
    local Enc = nn.class("TransformerEncoderLayer")
    nn.TransformerEncoderLayer = Enc

    function Enc:__init(d_model, nhead, opts) build_layer(self, "TransformerEncoderLayer", d_model, nhead, opts) end

    -- forward(src, {src_mask, src_key_padding_mask})
    function Enc:forward(src, opts)
        local fname = "TransformerEncoderLayer"
        check_tensor(fname, 1, src, "src")
        local o = options(fname, 2, opts, {"src_mask", "src_key_padding_mask"}, {})
        local mask, kpm = opt(o.src_mask), opt(o.src_key_padding_mask)
        local x = src
        if self.norm_first then
            x = x + self_attention(self, self.norm1(x), mask, kpm)
            x = x + feed_forward(self, self.norm2(x), self.dropout2)
        else
            x = self.norm1(x + self_attention(self, x, mask, kpm))
            x = self.norm2(x + feed_forward(self, x, self.dropout2))
        end
        return x
    end
    Enc.extra_repr = layer_repr

    -- TransformerDecoderLayer(d_model, nhead, {the encoder layer's options})
    local Dec = nn.class("TransformerDecoderLayer")
    nn.TransformerDecoderLayer = Dec

    function Dec:__init(d_model, nhead, opts)
        build_layer(self, "TransformerDecoderLayer", d_model, nhead, opts, true)
    end

    local function cross_attention(self, x, mem, mask, kpm)
        local y = self.multihead_attn(x, mem, mem, {attn_mask = mask, key_padding_mask = kpm, need_weights = false})
        return self.dropout2(y)
    end

    -- forward(tgt, memory, {tgt_mask, memory_mask, tgt_key_padding_mask,
    -- memory_key_padding_mask})
    function Dec:forward(tgt, memory, opts)
        local fname = "TransformerDecoderLayer"
        check_tensor(fname, 1, tgt, "tgt")
        check_tensor(fname, 2, memory, "memory")
        local o = options(fname, 3, opts, {"tgt_mask", "memory_mask", "tgt_key_padding_mask",
                                           "memory_key_padding_mask"}, {})
        local tm, mm = opt(o.tgt_mask), opt(o.memory_mask)
        local tk, mk = opt(o.tgt_key_padding_mask), opt(o.memory_key_padding_mask)
        local x = tgt
        if self.norm_first then
            x = x + self_attention(self, self.norm1(x), tm, tk)
            x = x + cross_attention(self, self.norm2(x), memory, mm, mk)
            x = x + feed_forward(self, self.norm3(x), self.dropout3)
        else
            x = self.norm1(x + self_attention(self, x, tm, tk))
            x = self.norm2(x + cross_attention(self, x, memory, mm, mk))
            x = self.norm3(x + feed_forward(self, x, self.dropout3))
        end
        return x
    end
    Dec.extra_repr = layer_repr

    -------------------------------------------------------------------------
    -- the stacks: num_layers copies of one layer (same initial weights, as
    -- PyTorch's deepcopy), children layers.0, layers.1, ...
    -------------------------------------------------------------------------
    local Layers = nn.class("ModuleList")

    local function copy_layer(fname, layer)
        local args = rawget(layer, "_args")
        if not args then argerror(fname, 1, "a TransformerEncoderLayer or TransformerDecoderLayer expected") end
        local c = getmetatable(layer)(args[1], args[2], args[3])
        c:load_state_dict(layer:state_dict())
        c:train(layer.training)
        return c
    end

    local function build_stack(self, fname, layer, num_layers, opts, class)
        if not nn.is_module(layer) or getmetatable(layer) ~= class then
            argerror(fname, 1, string.format("%s expected, got %s", class.__name,
                                             nn.is_module(layer) and layer:typename() or type(layer)))
        end
        num_layers = check_int(fname, 2, num_layers, "num_layers")
        local o = options(fname, 3, opts, {"norm", "enable_nested_tensor"}, {})
        local list = Layers()
        for i = 1, num_layers do list:add_module(tostring(i - 1), copy_layer(fname, layer)) end
        self:add_module("layers", list)
        self.num_layers = num_layers
        local norm = opt(o.norm)
        if norm then
            if not nn.is_module(norm) then argerror(fname, 3, "norm must be a module") end
            self:add_module("norm", norm)
        end
    end

    -- TransformerEncoder(encoder_layer, num_layers, {norm})
    local EncStack = nn.class("TransformerEncoder")
    nn.TransformerEncoder = EncStack

    function EncStack:__init(layer, num_layers, opts)
        build_stack(self, "TransformerEncoder", layer, num_layers, opts, Enc)
    end

    -- forward(src, {mask, src_key_padding_mask})
    function EncStack:forward(src, opts)
        local o = options("TransformerEncoder", 2, opts, {"mask", "src_key_padding_mask"}, {})
        local x = src
        for i = 0, self.num_layers - 1 do
            x = self.layers._modules[tostring(i)](x, {src_mask = o.mask, src_key_padding_mask = o.src_key_padding_mask})
        end
        if rawget(self, "norm") then x = self.norm(x) end
        return x
    end

    -- TransformerDecoder(decoder_layer, num_layers, {norm})
    local DecStack = nn.class("TransformerDecoder")
    nn.TransformerDecoder = DecStack

    function DecStack:__init(layer, num_layers, opts)
        build_stack(self, "TransformerDecoder", layer, num_layers, opts, Dec)
    end

    -- forward(tgt, memory, {tgt_mask, memory_mask, tgt_key_padding_mask,
    -- memory_key_padding_mask})
    function DecStack:forward(tgt, memory, opts)
        local o = options("TransformerDecoder", 3, opts, {"tgt_mask", "memory_mask", "tgt_key_padding_mask",
                                                          "memory_key_padding_mask"}, {})
        local x = tgt
        for i = 0, self.num_layers - 1 do x = self.layers._modules[tostring(i)](x, memory, o) end
        if rawget(self, "norm") then x = self.norm(x) end
        return x
    end
end

return M
