-- tide.experiment's report: series and plots of the variants' records, and
-- report.md with the tables, plots, settings and machine.
local tide = require "tide"
local E = require "tide.experiment.api"
local flags = require "tide.experiment.flags"
local log = require "tide.experiment.log"
local dist = require "tide.experiment.dist"

local format_default = flags.format_default
local read_file, shell_quote, write_atomic = log.read_file, log.shell_quote, log.write_atomic
local Experiment = E.Experiment

-- The tide.plot style index of a variant: its place among the variants in
-- the order they were declared, so a variant keeps its colour, dash and
-- point shape in every plot of a report, whichever others a plot leaves
-- out. nil for a name that is not a variant.
function Experiment:style(name)
    for i, v in ipairs(self.order) do
        if v == name then return i end
    end
    return nil
end

-- Series for tide.plot.lines: one per variant (all run so far, or
-- opts.variants), field against epoch, each in its variant's style.
function Experiment:series(field, variants)
    local out = {}
    for _, name in ipairs(variants or self.order) do
        local x, y = {}, {}
        for _, r in ipairs(self.histories[name] or (self.results[name] or {}).history or {}) do
            if r[field] ~= nil then
                x[#x + 1] = r.epoch
                y[#y + 1] = r[field]
            end
        end
        if #x > 0 then out[#out + 1] = {name = name, x = x, y = y, style = self:style(name)} end
    end
    return out
end

-- A line chart of one field per epoch: {field, file (under out), title,
-- ylabel, variants, logy}; returns the written path (under mpirun, rank 0
-- draws it and the others return the path).
function Experiment:plot_curves(opts)
    if not self.main then return self:path(opts.file or (opts.field .. ".png")) end
    return tide.plot.lines{path = self:path(opts.file or (opts.field .. ".png")), title = opts.title or opts.field,
                           xlabel = opts.xlabel or "epoch", ylabel = opts.ylabel or opts.field,
                           series = self:series(opts.field, opts.variants), logy = opts.logy}
end

-- A reliability diagram of the variants' final test outputs (result.logits
-- and result.labels): {file, title, variants, bins = 15}.
function Experiment:plot_reliability(opts)
    opts = opts or {}
    if not self.main then return self:path(opts.file or "reliability.png") end
    local series = {}
    for _, name in ipairs(opts.variants or self.order) do
        local r = self.results[name]
        if r and r.logits and r.labels then
            local bins = tide.metrics.reliability(r.logits, r.labels, {bins = opts.bins or 15})
            series[#series + 1] = {name = name, bins = bins, style = self:style(name)}
        end
    end
    return tide.plot.reliability{path = self:path(opts.file or "reliability.png"),
                                 title = opts.title or "reliability", series = series}
end

local function cpu_model()
    local text = read_file("/proc/cpuinfo") or ""
    local name = text:match("model name%s*:%s*([^\n]+)")
    local cores = 0
    for _ in text:gmatch("\nprocessor%s*:") do cores = cores + 1 end
    if text:match("^processor%s*:") then cores = cores + 1 end
    return name or "unknown CPU", cores
end

local function relative(self, path)
    local prefix = self.out .. "/"
    if path:sub(1, #prefix) == prefix then return path:sub(#prefix + 1) end
    return path
end

local function command_line(cfg)
    local parts = {"tide", cfg._script or "recipe"}
    if dist.active() then table.insert(parts, 1, string.format("mpirun -np %d", dist.world())) end
    for _, a in ipairs(cfg._argv or {}) do
        parts[#parts + 1] = a:match("^[%w%-_=./,:]+$") and a or shell_quote(a)
    end
    return table.concat(parts, " ")
end

-- Writes <out>/report.md: title, text, the tables, the plots, notes, the
-- settings, the machine; prints the tables and the paths. Returns the
-- report's path. Under mpirun rank 0 writes it; every rank returns the path.
function Experiment:report(opts)
    opts = opts or {}
    if not self.main then return self:path("report.md") end
    local cfg = self.cfg
    local tables = {}
    if opts.table then tables[#tables + 1] = opts.table end
    for _, t in ipairs(opts.tables or {}) do tables[#tables + 1] = t end
    local md = {}
    local function add(s) md[#md + 1] = s end
    add("# " .. (opts.title or self.name) .. "\n")
    if opts.text then add(opts.text .. "\n") end
    for i, t in ipairs(tables) do
        add("## " .. (t.title or (i == 1 and "Results" or "Table " .. i)) .. "\n")
        if t.text then add(t.text .. "\n") end
        add(E.markdown_table(t))
    end
    local plots = {}
    for _, p in ipairs(opts.plots or {}) do
        if type(p) == "string" then p = {path = p} end
        plots[#plots + 1] = p
    end
    if #plots > 0 then
        add("## Plots\n")
        for _, p in ipairs(plots) do
            local rel = relative(self, p.path)
            local title = p.title or rel:gsub("%.%w+$", ""):gsub("_", " ")
            if p.path:match("%.png$") then
                add(string.format("![%s](%s)\n", title, rel))
            else
                add(string.format("%s: [%s](%s) (data; gnuplot was not installed, so no image)\n", title, rel, rel))
            end
        end
    end
    if opts.notes and #opts.notes > 0 then
        add("## Notes\n")
        for _, n in ipairs(opts.notes) do add("- " .. n) end
        add("")
    end
    add("## Settings\n")
    add("Command: `" .. command_line(cfg) .. "`\n")
    local s = E.settings(cfg)
    s.out, s.threads, s.deterministic = cfg.out, cfg.threads, cfg.deterministic
    local keys = {}
    for k in pairs(s) do keys[#keys + 1] = k end
    table.sort(keys)
    local rows = {}
    for _, k in ipairs(keys) do rows[#rows + 1] = {k, format_default(s[k])} end
    add(E.markdown_table{columns = {"setting", "value"}, rows = rows})
    local loaded = {}
    for _, name in ipairs(self.order) do if self.loaded[name] then loaded[#loaded + 1] = name end end
    if #loaded > 0 then
        add("Loaded from an earlier run with the same settings (not retrained): " .. table.concat(loaded, ", ") ..
            ".\n")
    end
    add("## Machine\n")
    local cpu, cores = cpu_model()
    add(string.format("- CPU: %s, %d logical cores; tide used %d thread%s", cpu, cores, tide.get_num_threads(),
                      tide.get_num_threads() == 1 and "" or "s"))
    add(string.format("- device: %s", cfg.device or "cpu"))
    if dist.active() then
        add(string.format("- processes: %d under mpirun (tide.distributed on %s), each with the threads above; "
                          .. "the classifier loop splits every global batch and the data over them "
                          .. "(DistributedDataParallel, SyncBatchNorm)", dist.world(), tide.distributed.backend()))
    end
    add(string.format("- tide %s on %s", tostring(tide.version), _VERSION))
    add(string.format("- seed: %s", tostring(cfg.seed)))
    add(string.format("- date: %s", os.date("!%Y-%m-%d %H:%M UTC")))
    add(string.format("- wall time of this run: %d s", os.time() - self.started))
    add("")
    local path = self:path("report.md")
    write_atomic(path, table.concat(md, "\n"))
    if not self.quiet then
        for i, t in ipairs(tables) do
            if #tables > 1 or t.title then print("\n" .. (t.title or ("Table " .. i))) else print() end
            io.stdout:write(E.format_table(t))
        end
        print()
        print("report: " .. path)
        for _, p in ipairs(plots) do print("plot:   " .. p.path) end
        print("log:    " .. self.jsonl)
    end
    return path
end
