-- tide.nn's recurrent layers: nn.RNN, nn.LSTM, nn.GRU, their cells
-- nn.RNNCell, nn.LSTMCell, nn.GRUCell, and tide.nn.utils.rnn's packed
-- sequences, with PyTorch 1.13's arguments, parameter names and gate order.
--
-- Every layer and direction is one call of tide.core.rnn_layer: the whole
-- sequence in one autograd node, whatever its length. Its result is one
-- flat tensor (the outputs, h_n, and c_n for LSTM) that the views below cut
-- apart. A PackedSequence runs as it is (each step over the sequences still
-- running), so outputs stop and h_n is taken at each sequence's own end.

local M = {}

local MODES = {RNN_TANH = 1, RNN_RELU = 1, LSTM = 4, GRU = 3}

function M.install(nn, tide, core, util)
    local F = tide.F
    local argerror, options, check_int = util.argerror, util.options, util.check_int

    local function shape_str(t) return "(" .. table.concat(t:shape(), ", ") .. ")" end

    ---------------------------------------------------------------------------
    -- PackedSequence and tide.nn.utils.rnn
    ---------------------------------------------------------------------------
    local PackedSequence = {__name = "PackedSequence"}
    PackedSequence.__index = PackedSequence
    function PackedSequence.__tostring(p)
        return string.format("PackedSequence(data=%s, batch_sizes=%s)", shape_str(p.data),
                             shape_str(p.batch_sizes))
    end
    local function is_packed(v) return getmetatable(v) == PackedSequence end

    local function new_packed(data, batch_sizes, sorted, unsorted)
        return setmetatable({data = data, batch_sizes = batch_sizes, sorted_indices = sorted,
                             unsorted_indices = unsorted}, PackedSequence)
    end

    -- a table or 1-dim tensor of integers -> a Lua list
    local function int_list(fname, n, v, what)
        local out = {}
        if tide.is_tensor(v) then
            if v:dim() ~= 1 then argerror(fname, n, what .. " must be 1-dim, got shape " .. shape_str(v)) end
            v = v:totable()
        elseif type(v) ~= "table" then
            argerror(fname, n, what .. " must be a table or a 1-dim tensor, got " .. type(v))
        end
        for i, x in ipairs(v) do out[i] = check_int(fname, n, x, what, 0) end
        return out
    end

    local function long(list) return tide.tensor(list, "int64") end

    local R = {PackedSequence = PackedSequence}

    -- pack_padded_sequence(input, lengths, {batch_first = false, enforce_sorted = true})
    function R.pack_padded_sequence(input, lengths, opts)
        local fname = "pack_padded_sequence"
        if not tide.is_tensor(input) then argerror(fname, 1, "input must be a tensor, got " .. type(input)) end
        local o = options(fname, 3, opts, {"batch_first", "enforce_sorted"},
                          {batch_first = false, enforce_sorted = true})
        local len = int_list(fname, 2, lengths, "lengths")
        if input:dim() < 2 then argerror(fname, 1, "input must have at least 2 dims, got " .. input:dim()) end
        if o.batch_first then input = input:transpose(0, 1) end
        local T, B = input:size(0), input:size(1)
        if #len ~= B then
            argerror(fname, 2, string.format("expected %d lengths (the batch), got %d", B, #len))
        end
        local order = {}
        for i = 1, B do
            if len[i] < 1 or len[i] > T then
                argerror(fname, 2, string.format("lengths[%d] = %d is outside [1, %d]", i - 1, len[i], T))
            end
            order[i] = i
        end
        local sorted, unsorted
        if o.enforce_sorted then
            for i = 2, B do
                if len[i] > len[i - 1] then
                    argerror(fname, 2, "lengths must be sorted in decreasing order when enforce_sorted " ..
                                           "is true (pass enforce_sorted = false)")
                end
            end
        else
            -- stable: equal lengths keep their order
            table.sort(order, function(a, b) return len[a] > len[b] or (len[a] == len[b] and a < b) end)
            local s, u = {}, {}
            for i, b in ipairs(order) do s[i], u[b] = b - 1, i - 1 end
            sorted, unsorted = long(s), long(u)
        end
        local T1 = len[order[1]]
        local bs, rows = {}, {}
        for t = 1, T1 do
            local n = 0
            for i = 1, B do
                if len[order[i]] >= t then
                    n = n + 1
                    rows[#rows + 1] = (t - 1) * B + order[i] - 1
                end
            end
            bs[t] = n
        end
        local flat = input:reshape({T * B, table.unpack(input:shape(), 3)})
        return new_packed(flat:index_select(0, long(rows)), long(bs), sorted, unsorted)
    end

    -- pad_packed_sequence(sequence, {batch_first = false, padding_value = 0,
    -- total_length}) -> padded, lengths (int64, in the original order)
    function R.pad_packed_sequence(seq, opts)
        local fname = "pad_packed_sequence"
        if not is_packed(seq) then argerror(fname, 1, "a PackedSequence expected, got " .. type(seq)) end
        local o = options(fname, 2, opts, {"batch_first", "padding_value", "total_length"},
                          {batch_first = false, padding_value = 0})
        local bs = seq.batch_sizes:totable()
        local T, B = #bs, bs[1]
        local total = T
        if o.total_length ~= nil and o.total_length ~= false then
            total = check_int(fname, 2, o.total_length, "total_length", 0)
            if total < T then
                argerror(fname, 2, string.format("total_length (%d) is less than the longest sequence (%d)",
                                                 total, T))
            end
        end
        local data = seq.data
        local feat = {table.unpack(data:shape(), 2)}
        local pad = tide.full({1, table.unpack(feat)}, o.padding_value, {dtype = data:dtype(),
                                                                          device = data:device()})
        local ext = tide.cat({data, pad}, 0)
        local padrow = data:size(0)
        local idx, lens, off = {}, {}, 0
        for b = 1, B do lens[b] = 0 end
        for t = 1, total do
            local n = bs[t] or 0
            for b = 1, B do
                idx[(t - 1) * B + b] = b <= n and off + b - 1 or padrow
                if b <= n then lens[b] = t end
            end
            off = off + n
        end
        local out = ext:index_select(0, long(idx)):reshape({total, B, table.unpack(feat)})
        local lengths = long(lens)
        if seq.unsorted_indices then
            out = out:index_select(1, seq.unsorted_indices)
            lengths = lengths:index_select(0, seq.unsorted_indices)
        end
        if o.batch_first then out = out:transpose(0, 1) end
        return out, lengths
    end

    tide.nn.utils = tide.nn.utils or {}
    tide.nn.utils.rnn = R

    ---------------------------------------------------------------------------
    -- the layer call shared by modules and cells
    ---------------------------------------------------------------------------

    -- one layer, one direction: out (rows or (T, B), P), h_n (B, P), c_n (B, H)
    local function layer(mode, x, h0, c0, w, batch_sizes, reverse)
        local res = core.rnn_layer(mode, x, h0, w[1], w[2], {c0 = c0, b_ih = w[3], b_hh = w[4], w_hr = w[5],
                                                             batch_sizes = batch_sizes, reverse = reverse})
        local B, P = h0:size(0), h0:size(1)
        local rows = x:numel() // x:size(-1)
        local out_shape = x:dim() == 3 and {x:size(0), B, P} or {rows, P}
        local out = res:narrow(0, 0, rows * P):view(out_shape)
        local hn = res:narrow(0, rows * P, B * P):view({B, P})
        local cn
        if c0 then cn = res:narrow(0, (rows + B) * P, c0:numel()):view(c0:shape()) end
        return out, hn, cn
    end

    local function check_float(fname, n, t, what)
        if not tide.is_tensor(t) then
            argerror(fname, n, string.format("%s must be a tensor, got %s", what, type(t)))
        end
        local dt = t:dtype()
        if dt ~= "float32" and dt ~= "float64" then
            argerror(fname, n, string.format("%s must be float32 or float64, got %s", what, dt))
        end
    end

    local function check_state(fname, n, t, what, want, dtype)
        check_float(fname, n, t, what)
        local s = t:shape()
        local ok = #s == #want
        for i = 1, #want do ok = ok and s[i] == want[i] end
        if not ok then
            argerror(fname, n, string.format("expected %s of size (%s), got %s", what, table.concat(want, ", "),
                                             shape_str(t)))
        end
        if t:dtype() ~= dtype then
            argerror(fname, n, string.format("%s must be %s like the input, got %s", what, dtype, t:dtype()))
        end
    end

    ---------------------------------------------------------------------------
    -- RNN, LSTM, GRU
    ---------------------------------------------------------------------------
    local RNNBase = nn.class("RNNBase")
    nn.RNNBase = RNNBase

    local KNOWN = {"num_layers", "bias", "batch_first", "dropout", "bidirectional", "dtype"}

    function RNNBase:_build(fname, mode, input_size, hidden_size, o)
        self._fname = fname
        self.mode = mode
        self.input_size = check_int(fname, 1, input_size, "input_size", 0)
        self.hidden_size = check_int(fname, 2, hidden_size, "hidden_size", 1)
        self.num_layers = check_int(fname, 3, o.num_layers, "num_layers", 1)
        self.bias = o.bias and true or false
        self.batch_first = o.batch_first and true or false
        self.bidirectional = o.bidirectional and true or false
        self.proj_size = check_int(fname, 3, o.proj_size or 0, "proj_size", 0)
        if type(o.dropout) ~= "number" or o.dropout < 0 or o.dropout > 1 then
            argerror(fname, 3, "dropout must be a probability in [0, 1], got " .. tostring(o.dropout))
        end
        self.dropout = o.dropout
        if self.proj_size >= self.hidden_size then
            argerror(fname, 3, string.format("proj_size (%d) must be smaller than hidden_size (%d)",
                                             self.proj_size, self.hidden_size))
        end
        local H, G = self.hidden_size, MODES[mode]
        local P = self.proj_size > 0 and self.proj_size or H
        local D = self.bidirectional and 2 or 1
        local dt = {dtype = o.dtype}
        self._weights = {}
        for l = 0, self.num_layers - 1 do
            local in_size = l == 0 and self.input_size or P * D
            for d = 0, D - 1 do
                local sfx = string.format("_l%d%s", l, d == 1 and "_reverse" or "")
                local names = {"weight_ih" .. sfx, "weight_hh" .. sfx, false, false, false}
                self:register_parameter(names[1], tide.empty({G * H, in_size}, dt))
                self:register_parameter(names[2], tide.empty({G * H, P}, dt))
                if self.bias then
                    names[3], names[4] = "bias_ih" .. sfx, "bias_hh" .. sfx
                    self:register_parameter(names[3], tide.empty({G * H}, dt))
                    self:register_parameter(names[4], tide.empty({G * H}, dt))
                end
                if self.proj_size > 0 then
                    names[5] = "weight_hr" .. sfx
                    self:register_parameter(names[5], tide.empty({P, H}, dt))
                end
                self._weights[#self._weights + 1] = names
            end
        end
        self:reset_parameters()
    end

    -- PyTorch's: every weight and bias uniform in +-1/sqrt(hidden_size)
    function RNNBase:reset_parameters()
        local k = 1 / math.sqrt(self.hidden_size)
        for _, p in self:named_parameters() do nn.init.uniform_(p, {a = -k, b = k}) end
    end

    function RNNBase:extra_repr()
        local s = string.format("%d, %d", self.input_size, self.hidden_size)
        if self.proj_size > 0 then s = s .. ", proj_size=" .. self.proj_size end
        if self.num_layers ~= 1 then s = s .. ", num_layers=" .. self.num_layers end
        if self.mode == "RNN_RELU" then s = s .. ", nonlinearity='relu'" end
        if not self.bias then s = s .. ", bias=False" end
        if self.batch_first then s = s .. ", batch_first=True" end
        if self.dropout ~= 0 then s = s .. ", dropout=" .. self.dropout end
        if self.bidirectional then s = s .. ", bidirectional=True" end
        return s
    end

    local function weights_of(self, k)
        local names, w = self._weights[k], {}
        for i = 1, 5 do w[i] = names[i] and self[names[i]] or nil end
        return w
    end

    -- forward(input, hx): input (T, B, I), (B, T, I) when batch_first, (T, I)
    -- unbatched, or a PackedSequence; hx h0 (L D, B, P) for RNN and GRU,
    -- {h0, c0} for LSTM (c0 (L D, B, H)), zeros when nil. Returns output and
    -- h_n ({h_n, c_n} for LSTM).
    function RNNBase:forward(input, hx)
        local fname = self._fname
        local lstm = self.mode == "LSTM"
        local H = self.hidden_size
        local P = self.proj_size > 0 and self.proj_size or H
        local D = self.bidirectional and 2 or 1
        local L = self.num_layers
        local packed = is_packed(input)
        local x, bs, batched = input, nil, true
        if packed then
            x, bs = input.data, input.batch_sizes
            check_float(fname, 1, x, "input")
            if x:dim() ~= 2 then argerror(fname, 1, "packed data must be 2-dim, got shape " .. shape_str(x)) end
        else
            check_float(fname, 1, x, "input")
            if x:dim() == 2 then
                batched = false
                x = x:unsqueeze(1)
            elseif x:dim() ~= 3 then
                argerror(fname, 1, string.format("expected input to be 2-dim (unbatched) or 3-dim, got shape %s",
                                                 shape_str(x)))
            elseif self.batch_first then
                x = x:transpose(0, 1)
            end
        end
        if x:size(-1) ~= self.input_size then
            argerror(fname, 1, string.format("input.size(-1) must be equal to input_size. Expected %d, got %d",
                                             self.input_size, x:size(-1)))
        end
        local dt = x:dtype()
        for _, p in ipairs(self:parameters()) do
            if p:dtype() ~= dt then
                argerror(fname, 1, string.format("input must be %s like the parameters, got %s", p:dtype(), dt))
            end
        end
        local B = packed and bs:get(0) or x:size(1)
        local h0, c0
        if hx ~= nil then
            if lstm then
                if type(hx) ~= "table" or tide.is_tensor(hx) or #hx ~= 2 then
                    argerror(fname, 2, "hx must be a pair {h0, c0} for LSTM")
                end
                h0, c0 = hx[1], hx[2]
            else
                h0 = hx
            end
            local want_h = batched and {L * D, B, P} or {L * D, P}
            check_state(fname, 2, h0, "hidden state h0", want_h, dt)
            if lstm then check_state(fname, 2, c0, "cell state c0", batched and {L * D, B, H} or {L * D, H}, dt) end
            if not batched then
                h0 = h0:unsqueeze(1)
                c0 = c0 and c0:unsqueeze(1)
            end
            if packed and input.sorted_indices then
                h0 = h0:index_select(1, input.sorted_indices)
                c0 = c0 and c0:index_select(1, input.sorted_indices)
            end
        else
            local o = {dtype = dt, device = x:device()}
            h0 = tide.zeros({L * D, B, P}, o)
            if lstm then c0 = tide.zeros({L * D, B, H}, o) end
        end
        local hs, cs, inp = {}, {}, x
        for l = 0, L - 1 do
            local outs = {}
            for d = 0, D - 1 do
                local k = l * D + d
                local out, hn, cn = layer(self.mode, inp, h0:select(0, k), c0 and c0:select(0, k),
                                          weights_of(self, k + 1), bs, d == 1)
                outs[d + 1], hs[k + 1], cs[k + 1] = out, hn, cn
            end
            inp = D == 1 and outs[1] or tide.cat(outs, -1)
            if self.dropout > 0 and self.training and l < L - 1 then
                inp = F.dropout(inp, {p = self.dropout, training = true})
            end
        end
        local h_n = tide.stack(hs, 0)
        local c_n = lstm and tide.stack(cs, 0) or nil
        local output
        if packed then
            output = new_packed(inp, input.batch_sizes, input.sorted_indices, input.unsorted_indices)
            if input.unsorted_indices then
                h_n = h_n:index_select(1, input.unsorted_indices)
                c_n = c_n and c_n:index_select(1, input.unsorted_indices)
            end
        elseif not batched then
            output, h_n, c_n = inp:squeeze(1), h_n:squeeze(1), c_n and c_n:squeeze(1)
        else
            output = self.batch_first and inp:transpose(0, 1) or inp
        end
        if lstm then return output, {h_n, c_n} end
        return output, h_n
    end

    local function rnn_class(name, mode_of, extra)
        local cls = nn.class(name, RNNBase)
        nn[name] = cls
        function cls:__init(input_size, hidden_size, opts)
            local known = {table.unpack(KNOWN)}
            for _, k in ipairs(extra) do known[#known + 1] = k end
            local o = options(name, 3, opts, known, {num_layers = 1, bias = true, batch_first = false,
                                                     dropout = 0, bidirectional = false, dtype = "float32",
                                                     nonlinearity = "tanh", proj_size = 0})
            self:_build(name, mode_of(o), input_size, hidden_size, o)
        end
        return cls
    end

    rnn_class("RNN", function(o)
        if o.nonlinearity ~= "tanh" and o.nonlinearity ~= "relu" then
            argerror("RNN", 3, "nonlinearity must be 'tanh' or 'relu', got " .. tostring(o.nonlinearity))
        end
        return o.nonlinearity == "relu" and "RNN_RELU" or "RNN_TANH"
    end, {"nonlinearity"})
    rnn_class("LSTM", function() return "LSTM" end, {"proj_size"})
    rnn_class("GRU", function() return "GRU" end, {})

    ---------------------------------------------------------------------------
    -- RNNCell, LSTMCell, GRUCell
    ---------------------------------------------------------------------------
    local CellBase = nn.class("RNNCellBase")
    nn.RNNCellBase = CellBase

    function CellBase:_build(fname, mode, input_size, hidden_size, o)
        self._fname, self.mode = fname, mode
        self.input_size = check_int(fname, 1, input_size, "input_size", 0)
        self.hidden_size = check_int(fname, 2, hidden_size, "hidden_size", 1)
        self.bias = o.bias and true or false
        local G, H, dt = MODES[mode], self.hidden_size, {dtype = o.dtype}
        self:register_parameter("weight_ih", tide.empty({G * H, self.input_size}, dt))
        self:register_parameter("weight_hh", tide.empty({G * H, H}, dt))
        if self.bias then
            self:register_parameter("bias_ih", tide.empty({G * H}, dt))
            self:register_parameter("bias_hh", tide.empty({G * H}, dt))
        end
        self:reset_parameters()
    end

    CellBase.reset_parameters = RNNBase.reset_parameters

    function CellBase:extra_repr()
        local s = string.format("%d, %d", self.input_size, self.hidden_size)
        if not self.bias then s = s .. ", bias=False" end
        if self.mode == "RNN_RELU" then s = s .. ", nonlinearity='relu'" end
        return s
    end

    -- forward(input, hx): input (B, I) or (I); hx h (B, H), {h, c} for
    -- LSTMCell, zeros when nil. Returns h' (h', c' for LSTMCell).
    function CellBase:forward(input, hx)
        local fname = self._fname
        local lstm = self.mode == "LSTM"
        check_float(fname, 1, input, "input")
        if input:dim() ~= 1 and input:dim() ~= 2 then
            argerror(fname, 1, "expected input to be 1-dim or 2-dim, got shape " .. shape_str(input))
        end
        if input:size(-1) ~= self.input_size then
            argerror(fname, 1, string.format("input has inconsistent input_size: got %d expected %d",
                                             input:size(-1), self.input_size))
        end
        local batched = input:dim() == 2
        local x = batched and input or input:unsqueeze(0)
        local B, H, dt = x:size(0), self.hidden_size, x:dtype()
        if self.weight_ih:dtype() ~= dt then
            argerror(fname, 1, string.format("input must be %s like the parameters, got %s",
                                             self.weight_ih:dtype(), dt))
        end
        local h, c
        if hx ~= nil then
            if lstm then
                if type(hx) ~= "table" or tide.is_tensor(hx) or #hx ~= 2 then
                    argerror(fname, 2, "hx must be a pair {h, c} for LSTMCell")
                end
                h, c = hx[1], hx[2]
            else
                h = hx
            end
            local want = batched and {B, H} or {H}
            check_state(fname, 2, h, "hidden state", want, dt)
            if lstm then check_state(fname, 2, c, "cell state", want, dt) end
            if not batched then h, c = h:unsqueeze(0), c and c:unsqueeze(0) end
        else
            local o = {dtype = dt, device = x:device()}
            h = tide.zeros({B, H}, o)
            if lstm then c = tide.zeros({B, H}, o) end
        end
        local w = {self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh}
        local _, hn, cn = layer(self.mode, x:unsqueeze(0), h, c, w, nil, false)
        if not batched then hn, cn = hn:squeeze(0), cn and cn:squeeze(0) end
        if lstm then return hn, cn end
        return hn
    end

    local function cell_class(name, mode_of, extra)
        local cls = nn.class(name, CellBase)
        nn[name] = cls
        function cls:__init(input_size, hidden_size, opts)
            local known = {"bias", "dtype"}
            for _, k in ipairs(extra) do known[#known + 1] = k end
            local o = options(name, 3, opts, known, {bias = true, dtype = "float32", nonlinearity = "tanh"})
            self:_build(name, mode_of(o), input_size, hidden_size, o)
        end
    end

    cell_class("RNNCell", function(o)
        if o.nonlinearity ~= "tanh" and o.nonlinearity ~= "relu" then
            argerror("RNNCell", 3, "nonlinearity must be 'tanh' or 'relu', got " .. tostring(o.nonlinearity))
        end
        return o.nonlinearity == "relu" and "RNN_RELU" or "RNN_TANH"
    end, {"nonlinearity"})
    cell_class("LSTMCell", function() return "LSTM" end, {})
    cell_class("GRUCell", function() return "GRU" end, {})
end

return M
