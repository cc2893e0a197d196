-- Losses for next-character prediction: a character-level language model
-- trained on text every machine with tide has, tide's own docs (docs/*.md)
-- and Lua sources (bindings/tide/**/*.lua), found from this script's path
-- (a source tree) or from the installed tide (TIDE_DOC_DIR and the folder of
-- tide/init.lua), else /usr/share/common-licenses/*. Four training losses
-- from the same weights and the same batches: cross-entropy (ce), label
-- smoothing (ls, e = --smoothing), focal loss (focal, gamma = --gamma) and
-- Poly-1 (poly1, epsilon = --epsilon), for an LSTM (embedding -> 2-layer
-- LSTM -> linear) and/or a small causal Transformer (embedding + learned
-- positions -> pre-norm TransformerEncoder with a causal mask -> linear).
-- The vocabulary is the characters present (UTF-8, sorted); each file's
-- first 90% of characters go to training, its last 10% to validation. Each
-- step trains on --batch-size random windows of --seq-len characters drawn
-- from Lua's generator seeded with --seed (the same windows for every
-- variant). After each epoch, over every non-overlapping window of the
-- validation text: NLL per character (plain cross-entropy whatever the
-- training loss) and perplexity exp(NLL), top-1 and top-5 accuracy and ECE.
-- At the end a sample of generated text per variant from a fixed prompt.
--   tide scripts/text_losses.lua [--model lstm|transformer] [--models lstm,transformer] [--epochs N] ... (--help)
local tide = require "tide"
local X = tide.experiment
local F = tide.F
local M = tide.metrics
local nn = tide.nn

local LOSSES = {"ce", "ls", "focal", "poly1"}
local MODELS = {"lstm", "transformer"}

local function one_of(list)
    return function(v)
        local ok, seen = {}, {}
        for _, x in ipairs(list) do ok[x] = true end
        if #v == 0 then return "expects at least one of " .. table.concat(list, ", ") end
        for _, x in ipairs(v) do
            if not ok[x] then
                return string.format("expects values among %s (not '%s')", table.concat(list, ", "), x)
            end
            if seen[x] then return "expects distinct values" end
            seen[x] = true
        end
    end
end

local cfg = X.parse(arg, {
    name = "text_losses",
    omit = {"precision"}, -- float32 only: no --precision
    about = "A character-level language model trained on tide's own docs and Lua sources (or, where they are\n"
         .. "not found, /usr/share/common-licenses), with cross-entropy, label smoothing, focal loss and Poly-1,\n"
         .. "from the same weights and batches: an LSTM and/or a small causal Transformer. Per epoch the\n"
         .. "validation NLL per character (plain CE), perplexity, top-1 and top-5 accuracy and ECE; at the end\n"
         .. "a sample of generated text per variant. Adam with a cosine schedule per step, gradient clipping.",
    defaults = {epochs = 3, subset = 0, batch_size = 32, lr = 3e-3, model = "lstm"},
    models = MODELS,
    flags = {
        {name = "model", type = "string", choices = MODELS, default = "lstm", help = "the model (see --models)"},
        {name = "models", type = "strings", default = {}, meta = "M,M", check = one_of(MODELS),
         help = "several models, each trained with every loss (default: --model)"},
        {name = "losses", type = "strings", default = LOSSES, meta = "L,L,...", check = one_of(LOSSES),
         help = "the training losses: ce, ls (label smoothing), focal, poly1"},
        {name = "seq_len", type = "integer", min = 8, max = 1024, default = 64, meta = "N",
         help = "characters per training window"},
        {name = "steps_per_epoch", type = "integer", min = 1, default = 150, meta = "N",
         help = "training steps (batches of random windows) per epoch"},
        {name = "hidden", type = "integer", min = 8, max = 4096, default = 128, meta = "N",
         help = "LSTM hidden size; the Transformer's d_model"},
        {name = "embed", type = "integer", min = 4, max = 4096, default = 64, meta = "N",
         help = "the LSTM's character embedding size"},
        {name = "layers", type = "integer", min = 1, max = 16, default = 2, meta = "N",
         help = "LSTM layers; Transformer encoder layers"},
        {name = "heads", type = "integer", min = 1, max = 64, default = 4, meta = "N",
         help = "Transformer attention heads (must divide --hidden)"},
        {name = "dropout", type = "number", min = 0, max = 0.9, default = 0,
         help = "dropout between LSTM layers and in the Transformer"},
        {name = "smoothing", type = "number", min = 0, max = 0.99, default = 0.1, help = "label smoothing of ls"},
        {name = "gamma", type = "number", min = 0, max = 10, default = 2, help = "gamma of focal"},
        {name = "epsilon", type = "number", min = -1, max = 10, default = 1, help = "epsilon of poly1"},
        {name = "clip", type = "number", min = 0, default = 1,
         help = "clip the gradient norm to this (0: no clipping)"},
        {name = "val_subset", type = "integer", min = 0, default = 0, meta = "N",
         help = "evaluate on the first N validation characters (0: all)"},
        {name = "sample_len", type = "integer", min = 1, max = 10000, default = 200, meta = "N",
         help = "characters generated per variant"},
        {name = "temperature", type = "number", min = 0, max = 10, default = 0.8,
         help = "sampling temperature (0: greedy)"},
        {name = "prompt", type = "string", default = "local tide = require", help = "the prompt of the samples"},
    },
    adjust = function(c, given)
        if c.hidden % c.heads ~= 0 then
            return nil, string.format("--hidden %d is not a multiple of --heads %d", c.hidden, c.heads)
        end
        if given.models and given.model then return nil, "--models and --model: give one of them" end
        if #c.models == 0 then c.models = {c.model} end
    end,
})

-- ---------------------------------------------------------------------------
-- the text

local function read(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end
local function dir_of(path) return path:match("^(.*)/[^/]*$") or "." end
local function shq(s) return "'" .. s:gsub("'", "'\\''") .. "'" end
-- the regular files under dir whose names match the find pattern, sorted
local function files(dir, pattern, depth)
    local p = io.popen(string.format("find %s %s -type f -name %s 2>/dev/null | LC_ALL=C sort", shq(dir),
                                     depth and ("-maxdepth " .. depth) or "", shq(pattern)))
    local list = {}
    for line in p:lines() do list[#list + 1] = line end
    p:close()
    return list
end

-- the corpus: a list of {path, text}, and where it came from
local function find_corpus()
    local script = debug.getinfo(1, "S").source:gsub("^@", "")
    local root = dir_of(dir_of(script))
    local docs, lua = {}, {}
    if read(root .. "/docs/experiment.md") and read(root .. "/bindings/tide/init.lua") then
        docs = files(root .. "/docs", "*.md", 1)
        lua = files(root .. "/bindings/tide", "*.lua")
    else
        -- an installed tide: its docs (TIDE_DOC_DIR, set by the tide command)
        -- and the Lua files beside tide/init.lua
        local init = package.searchpath("tide.init", package.path)
        local docdir = os.getenv("TIDE_DOC_DIR")
        if docdir and docdir ~= "" then docs = files(docdir, "*.md", 1) end
        if init then lua = files(dir_of(init), "*.lua") end
        if #docs == 0 and init then docs = files(dir_of(init) .. "/doc", "*.md", 1) end
    end
    local list = {}
    for _, group in ipairs({docs, lua}) do for _, p in ipairs(group) do list[#list + 1] = p end end
    local source = #docs > 0 and #lua > 0 and "tide's docs and Lua sources"
                   or #docs > 0 and "tide's docs" or "tide's Lua sources"
    if #list == 0 then
        list, source = files("/usr/share/common-licenses", "*", 1), "/usr/share/common-licenses"
    end
    local out = {}
    for _, p in ipairs(list) do
        local t = read(p)
        if t and #t > 0 then out[#out + 1] = {path = p, text = t} end
    end
    return out, source
end

-- a file's characters: UTF-8 ones where it is valid UTF-8, else its bytes
local function chars_of(text)
    local list = {}
    if utf8.len(text) then
        for _, c in utf8.codes(text) do list[#list + 1] = utf8.char(c) end
    else
        for i = 1, #text do list[#list + 1] = text:sub(i, i) end
    end
    return list
end

-- the text, its vocabulary and the token tensors; the big Lua tables of
-- characters stay inside the block and are collected after it (a large
-- Lua heap makes every collection that tensor allocations trigger slow)
local source, n_files, nfiles_chars, hash, vocab, index, n_train, n_val, train_ids, val_ids, train_words
do
    local corpus
    corpus, source = find_corpus()
    if #corpus == 0 then
        io.stderr:write("text_losses: no text found (tide's docs, its Lua files, /usr/share/common-licenses)\n")
        os.exit(1)
    end
    local train_chars, val_chars = {}, {}
    nfiles_chars, hash = 0, 2166136261
    for _, f in ipairs(corpus) do
        local cs = chars_of(f.text)
        local cut = math.floor(#cs * 0.9)
        for i = 1, cut do train_chars[#train_chars + 1] = cs[i] end
        for i = cut + 1, #cs do val_chars[#val_chars + 1] = cs[i] end
        nfiles_chars = nfiles_chars + #cs
        for i = 1, #f.text, 97 do hash = (hash * 16777619 ~ f.text:byte(i)) & 0xffffffff end
        hash = (hash * 16777619 ~ #f.text) & 0xffffffff
    end
    -- the vocabulary: every character of the whole corpus, sorted by byte order
    vocab, index = {}, {}
    for _, list in ipairs({train_chars, val_chars}) do
        for _, c in ipairs(list) do
            if not index[c] then index[c] = true vocab[#vocab + 1] = c end
        end
    end
    table.sort(vocab)
    for i, c in ipairs(vocab) do index[c] = i - 1 end

    n_train = #train_chars
    if cfg.subset > 0 and cfg.subset < n_train then n_train = cfg.subset end
    n_val = #val_chars
    if cfg.val_subset > 0 and cfg.val_subset < n_val then n_val = cfg.val_subset end
    if n_train < cfg.seq_len + 2 then
        io.stderr:write(string.format("text_losses: --subset %d: fewer training characters than --seq-len %d + 2\n",
                                      cfg.subset, cfg.seq_len))
        os.exit(2)
    end
    if n_val < cfg.seq_len + 1 then
        io.stderr:write(string.format("text_losses: --val-subset %d: fewer validation characters than "
                                      .. "--seq-len %d + 1\n", cfg.val_subset, cfg.seq_len))
        os.exit(2)
    end
    local function ids(list, n)
        local t = {}
        for i = 1, n do t[i] = index[list[i]] end
        return tide.tensor(t, "int64")
    end
    train_ids, val_ids = ids(train_chars, n_train), ids(val_chars, n_val)
    local train_text = table.concat(train_chars, "", 1, n_train)
    train_words = {}
    for w in train_text:gmatch("[%a_][%w_]*") do train_words[w] = true end
    n_files = #corpus
end
collectgarbage()
local V = #vocab

-- validation: every non-overlapping window of seq_len + 1 characters
-- (inputs, then targets shifted by one); the tail that fills no window is left out
local L = cfg.seq_len
local n_windows = (n_val - 1) // L
local val_x, val_y
do
    local starts = tide.arange(0, n_windows) * L
    local idx = starts:view({n_windows, 1}) + tide.arange(0, L + 1):view({1, L + 1})
    local w = val_ids:index_select(0, idx:view({-1})):view({n_windows, L + 1})
    val_x, val_y = w:narrow(1, 0, L):contiguous(), w:narrow(1, 1, L):contiguous()
end

-- ---------------------------------------------------------------------------
-- the models: forward(x (B, T) int64, [state]) -> logits (B, T, V), state

local CharLSTM = nn.class("CharLSTM")
function CharLSTM:__init(vocab_size, c)
    self:add_module("embed", nn.Embedding(vocab_size, c.embed))
    self:add_module("lstm", nn.LSTM(c.embed, c.hidden, {num_layers = c.layers, batch_first = true,
                                                         dropout = c.layers > 1 and c.dropout or 0}))
    self:add_module("head", nn.Linear(c.hidden, vocab_size))
end
function CharLSTM:forward(x, state)
    local out, hc = self:call_child("lstm", self:call_child("embed", x), state)
    return self:call_child("head", out), hc
end

local CharTransformer = nn.class("CharTransformer")
function CharTransformer:__init(vocab_size, c)
    self.max_len = c.seq_len
    self:add_module("embed", nn.Embedding(vocab_size, c.hidden))
    self:register_parameter("pos", tide.randn({c.seq_len, c.hidden}) * 0.02)
    local layer = nn.TransformerEncoderLayer(c.hidden, c.heads, {dim_feedforward = 4 * c.hidden, dropout = c.dropout,
                                                                  activation = "gelu", batch_first = true,
                                                                  norm_first = true})
    self:add_module("encoder", nn.TransformerEncoder(layer, c.layers, {norm = nn.LayerNorm(c.hidden)}))
    self:add_module("head", nn.Linear(c.hidden, vocab_size))
    self.masks = {}
end
function CharTransformer:forward(x)
    local T = x:size(1)
    -- 1 above the diagonal: position i does not see the positions after it
    local mask = self.masks[T]
    if not mask then
        mask = tide.ones({T, T}, {dtype = "uint8"}):triu(1)
        self.masks[T] = mask
    end
    local h = self:call_child("embed", x) + self.pos:narrow(0, 0, T)
    return self:call_child("head", self:call_child("encoder", h, {mask = mask}))
end

local function make_model(kind)
    if kind == "lstm" then return CharLSTM(V, cfg) end
    return CharTransformer(V, cfg)
end

-- ---------------------------------------------------------------------------
-- losses, evaluation, sampling

local LOSS = {
    ce = {label = "cross-entropy", fn = function(z, y) return F.cross_entropy(z, y) end},
    ls = {label = string.format("cross-entropy, label smoothing %g", cfg.smoothing),
          fn = function(z, y) return F.cross_entropy(z, y, {label_smoothing = cfg.smoothing}) end},
    focal = {label = string.format("focal loss, gamma %g", cfg.gamma),
             fn = function(z, y) return F.focal_loss(z, y, {gamma = cfg.gamma}) end},
    poly1 = {label = string.format("Poly-1, epsilon %g", cfg.epsilon),
             fn = function(z, y) return F.poly1_cross_entropy(z, y, {epsilon = cfg.epsilon}) end},
}

-- the model's logits (N * L, V) and targets over the validation windows
local function val_outputs(model)
    model:evaluate()
    local parts = {}
    tide.no_grad(function()
        for s = 0, n_windows - 1, 128 do
            local n = math.min(128, n_windows - s)
            local z = model(val_x:narrow(0, s, n))
            parts[#parts + 1] = z:reshape({n * L, V})
        end
    end)
    model:train()
    return tide.cat(parts, 0), val_y:view({-1})
end

-- generated text: the prompt, then sample_len characters drawn at
-- temperature T (greedy at 0) with tide's generator seeded with --seed
local function generate(model, kind)
    local prompt = {}
    for _, c in ipairs(chars_of(cfg.prompt)) do if index[c] then prompt[#prompt + 1] = index[c] end end
    if #prompt == 0 then prompt = {index["\n"] or 0} end
    model:evaluate()
    tide.manual_seed(cfg.seed)
    local out = {}
    tide.no_grad(function()
        local ctx = {table.unpack(prompt)}
        local state, next_in = nil, tide.tensor({prompt}, "int64")
        for _ = 1, cfg.sample_len do
            local z
            if kind == "lstm" then
                z, state = model(next_in, state)
            else
                local from = math.max(1, #ctx - L + 1)
                z = model(tide.tensor({{table.unpack(ctx, from)}}, "int64"))
            end
            local last = z:select(0, 0):select(0, z:size(1) - 1)
            local id
            if cfg.temperature == 0 then
                id = last:argmax():item()
            else
                local p = (last / cfg.temperature):softmax(0):totable()
                local u, acc = tide.rand({1}):item(), 0
                id = #p - 1
                for k = 1, #p do
                    acc = acc + p[k]
                    if u < acc then id = k - 1 break end
                end
            end
            id = math.tointeger(id)
            out[#out + 1] = vocab[id + 1]
            ctx[#ctx + 1] = id
            next_in = tide.tensor({{id}}, "int64")
        end
    end)
    model:train()
    local p = {}
    for _, id in ipairs(prompt) do p[#p + 1] = vocab[id + 1] end
    return table.concat(p), table.concat(out)
end

-- ---------------------------------------------------------------------------
-- the variants

local ex = X.new(cfg)
local total_steps = cfg.epochs * cfg.steps_per_epoch
local B = cfg.batch_size
local names, info = {}, {}
for _, kind in ipairs(cfg.models) do
    for _, lname in ipairs(cfg.losses) do
        local name = kind .. "_" .. lname
        names[#names + 1] = name
        info[name] = {kind = kind, loss = lname}
        ex:variant(name, {settings = {model_kind = kind, loss = lname, vocab = V, corpus_hash = hash,
                                      train_chars = n_train, val_chars = n_val}}, function()
            local model = make_model(kind)
            local opt = X.optimizer(cfg, model, {name = "adam"})
            local sched = tide.optim.CosineAnnealingLR(opt, total_steps)
            local loss_fn = LOSS[lname].fn
            math.randomseed(cfg.seed)
            local offsets = tide.arange(0, L + 1):view({1, L + 1})
            local rec
            model:train()
            for epoch = 1, cfg.epochs do
                local bar = tide.progress.new{total = cfg.steps_per_epoch, unit = "step", order = {"loss"},
                                              desc = string.format("%s %d/%d", name, epoch, cfg.epochs)}
                local lr = opt.param_groups[1].lr
                local t0, loss_sum, correct, norm_sum = tide.clock(), 0, 0, 0
                for _ = 1, cfg.steps_per_epoch do
                    local s = {}
                    for b = 1, B do s[b] = math.random(0, n_train - L - 2) end
                    local idx = tide.tensor(s, "int64"):view({B, 1}) + offsets
                    local w = train_ids:index_select(0, idx:view({-1})):view({B, L + 1})
                    local x, y = w:narrow(1, 0, L), w:narrow(1, 1, L):reshape({B * L})
                    opt:zero_grad()
                    local z = model(x):reshape({B * L, V})
                    local loss = loss_fn(z, y)
                    loss:backward()
                    if cfg.clip > 0 then
                        norm_sum = norm_sum + tide.nn.utils.clip_grad_norm_(model:parameters(), cfg.clip)
                    end
                    opt:step()
                    sched:step()
                    local l = loss:item()
                    loss_sum = loss_sum + l
                    correct = correct + M.accuracy(z:detach(), y)
                    bar:update(1, {loss = l})
                end
                bar:close()
                local seconds = tide.clock() - t0
                local t1 = tide.clock()
                local logits, labels = val_outputs(model)
                local nll = M.nll(logits, labels)
                rec = {epoch = epoch, train_loss = loss_sum / cfg.steps_per_epoch,
                       train_acc = correct / cfg.steps_per_epoch, val_nll = nll, val_ppl = math.exp(nll),
                       val_acc = M.accuracy(logits, labels), val_top5 = M.topk_accuracy(logits, labels, math.min(5, V)),
                       ece = M.ece(logits, labels), seconds = seconds, eval_seconds = tide.clock() - t1, lr = lr,
                       grad_norm = cfg.clip > 0 and norm_sum / cfg.steps_per_epoch or nil}
                if epoch == cfg.epochs then rec.bins = M.reliability(logits, labels) end
                local bins = rec.bins
                rec.bins = nil
                ex:log(rec)
                rec.bins = bins
                print(string.format("%s epoch %d/%d: train loss %.4f, val NLL %.4f, perplexity %.3f, top-1 %.2f%%, "
                                    .. "top-5 %.2f%%, ECE %.4f, %.1f s", name, epoch, cfg.epochs, rec.train_loss,
                                    nll, rec.val_ppl, 100 * rec.val_acc, 100 * rec.val_top5, rec.ece, seconds))
            end
            local prompt, sample = generate(model, kind)
            return {bins = rec.bins, prompt = prompt, sample = sample, params = model:num_parameters()}
        end)
    end
end

-- ---------------------------------------------------------------------------
-- tables, plots, report

local function known_words(text)
    local n, k = 0, 0
    for w in text:gmatch("[%a_][%w_]*") do
        n = n + 1
        if train_words[w] then k = k + 1 end
    end
    return n > 0 and 100 * k / n or 0
end
local function distinct(text)
    local seen, n = {}, 0
    for _, c in ipairs(chars_of(text)) do if not seen[c] then seen[c] = true n = n + 1 end end
    return n
end

local rows, sample_rows, blocks = {}, {}, {}
for _, name in ipairs(names) do
    local r = ex.results[name]
    local last = r.history[#r.history]
    local secs = 0
    for _, h in ipairs(r.history) do secs = secs + h.seconds end
    rows[#rows + 1] = {name, r.params, last.train_loss, last.val_nll, last.val_ppl, 100 * last.val_acc,
                       100 * last.val_top5, last.ece, secs / #r.history}
    sample_rows[#sample_rows + 1] = {name, utf8.len(r.sample) or #r.sample, distinct(r.sample),
                                     known_words(r.sample)}
    local longest = 2
    for run in (r.prompt .. r.sample):gmatch("`+") do longest = math.max(longest, #run) end
    local fence = string.rep("`", longest + 1)
    blocks[#blocks + 1] = string.format("### %s\n\n%s (%s):\n\n%s\n%s%s\n%s\n", name, LOSS[info[name].loss].label,
                                        info[name].kind, fence, r.prompt, r.sample, fence)
end

local plots = {{title = "validation perplexity per epoch",
                path = ex:plot_curves{field = "val_ppl", title = "validation perplexity (plain CE, per character)",
                                      ylabel = "perplexity", logy = true}},
               {title = "validation top-1 accuracy per epoch",
                path = ex:plot_curves{field = "val_acc", title = "validation top-1 accuracy", ylabel = "accuracy"}}}
for _, kind in ipairs(cfg.models) do
    local series = {}
    for _, name in ipairs(names) do
        if info[name].kind == kind then
            series[#series + 1] = {name = name, bins = ex.results[name].bins, style = ex:style(name)}
        end
    end
    plots[#plots + 1] = {title = "reliability, " .. kind,
                         path = tide.plot.reliability{path = ex:path("reliability_" .. kind .. ".png"),
                                                      title = "reliability on the validation text: " .. kind,
                                                      series = series}}
end

local temp = cfg.temperature == 0 and "greedy (argmax)"
             or string.format("sampled at temperature %g from tide's generator seeded with %d", cfg.temperature,
                              cfg.seed)
ex:report{
    title = "Losses for next-character prediction (" .. table.concat(cfg.models, ", ") .. ", " .. source .. ")",
    text = string.format("A character-level language model trained on %s: %d files, %d characters, a vocabulary of "
                         .. "%d characters (a uniform guess has perplexity %d). Each file's first 90%% of "
                         .. "characters is training text, its last 10%% validation text; %d training characters "
                         .. "used, %d validation characters (%d windows of %d). Every variant starts from the same "
                         .. "weights (per model) and trains on the same %d x %d random windows of %d characters "
                         .. "(Lua's generator seeded with %d): Adam, lr %g with cosine decay per step over %d steps, "
                         .. "gradient norm clipped to %g. LSTM: embedding %d -> %d-layer LSTM %d -> linear. "
                         .. "Transformer: embedding %d + learned positions -> %d pre-norm encoder layers (%d heads, "
                         .. "feed-forward %d, GELU, causal mask) -> LayerNorm -> linear.",
                         source, n_files, nfiles_chars, V, V, n_train, n_val, n_windows, L, total_steps,
                         B, L, cfg.seed, cfg.lr, total_steps, cfg.clip, cfg.embed, cfg.layers,
                         cfg.hidden, cfg.hidden, cfg.layers, cfg.heads, 4 * cfg.hidden),
    table = {title = "Results",
             columns = {"variant", {name = "params", fmt = "%d"}, {name = "train loss", fmt = "%.4f"},
                        {name = "val NLL", fmt = "%.4f"}, {name = "perplexity", fmt = "%.3f"},
                        {name = "top-1 %", fmt = "%.2f"}, {name = "top-5 %", fmt = "%.2f"},
                        {name = "ECE", fmt = "%.4f"}, {name = "s/epoch", fmt = "%.1f"}},
             rows = rows,
             text = "After the last epoch, on the validation text. `train loss`: the loss trained (so not comparable "
                 .. "across losses), mean over the last epoch's steps. `val NLL`: mean negative log-likelihood per "
                 .. "character in nats, plain cross-entropy for every variant; `perplexity` = exp(val NLL). "
                 .. "Top-1 and top-5: the next character among the 1 and 5 highest-scoring. ECE: 15 bins over the "
                 .. "top-1 confidence. `s/epoch`: training time per epoch, evaluation excluded."},
    tables = {{title = "Generated samples",
               text = string.format("%d characters per variant after the prompt `%s`, %s. `known words %%`: "
                                    .. "the share of the sample's identifiers and words that occur in the "
                                    .. "training text.\n\n%s", cfg.sample_len, (cfg.prompt:gsub("`", "'")), temp,
                                    table.concat(blocks, "\n")),
               columns = {"variant", {name = "characters", fmt = "%d"}, {name = "distinct", fmt = "%d"},
                          {name = "known words %", fmt = "%.1f"}},
               rows = sample_rows}},
    plots = plots,
    notes = {
        "Windows: the validation text is cut into non-overlapping windows; the first characters of each window "
            .. "are predicted from a short context, so the NLL is a little above what a model reading the text "
            .. "straight through would get.",
        string.format("The text depends on the tide checkout (its docs and Lua files change); the variants' "
                      .. "settings hold its size and a checksum (%08x), so a changed text retrains them.", hash),
        "metrics.jsonl per epoch: train_loss, train_acc (on the training windows), val_nll, val_ppl, val_acc, "
            .. "val_top5, ece, seconds, eval_seconds, lr, grad_norm (mean norm before clipping).",
    },
}
