-- tide.experiment under mpirun: the toolkit's view of tide.distributed.
--
-- A recipe started by `mpirun -np N tide scripts/NAME.lua` runs the same
-- Lua on every rank. setup() (called by experiment.parse and .new) starts
-- tide.distributed there; then rank 0 alone writes the files, prints and
-- plots, the other ranks keep the same state in memory, and whatever rank
-- 0 reads that the others need (state.json, metrics.jsonl, its decisions)
-- reaches them by broadcast, so no rank reads a file while another writes
-- it. A process not started by mpirun is a world of one: every function
-- here is then the plain single-process action.
local tide = require "tide"

local M = {}

local D = tide.distributed
local done = false

-- true when this process is one of several ranks of an initialized job
function M.active()
    return D ~= nil and D.is_initialized() and D.world_size() > 1
end

function M.rank() return M.active() and D.rank() or 0 end
function M.world() return M.active() and D.world_size() or 1 end
function M.main() return M.rank() == 0 end

-- ranks other than 0 say nothing on stdout and draw nothing: print and
-- io.write go nowhere, tide.plot's charts only return their paths (as the
-- DeiT/DETR recipes' setup_for_distributed silences print). io.stderr is
-- left alone, so errors and warnings of every rank still show.
local function silence()
    _G.print = function() end
    local null = io.open("/dev/null", "w")
    if null then io.output(null) end
    local plot = tide.plot
    if type(plot) == "table" then
        for _, name in ipairs({"lines", "bars", "reliability"}) do
            if type(plot[name]) == "function" then
                plot[name] = function(opts) return type(opts) == "table" and opts.path or nil end
            end
        end
    end
end

-- Starts tide.distributed when mpirun (or another launcher) started this
-- process with more than one rank; once per process. Returns active().
function M.setup()
    if done then return M.active() end
    done = true
    if D and D.launched() then D.init_if_launched() end
    if M.active() and D.rank() ~= 0 then silence() end
    return M.active()
end

function M.barrier()
    if M.active() then D.barrier() end
end

-- rank 0's integer on every rank
function M.bcast_int(v)
    if not M.active() then return v end
    local t = tide.tensor({M.main() and v or 0}, "int64")
    D.broadcast(t, {src = 0})
    return t:item()
end

function M.bcast_bool(v)
    return M.bcast_int(v and 1 or 0) ~= 0
end

local CHUNK = 4096

local function string_to_tensor(s)
    local parts = {}
    for i = 1, #s, CHUNK do
        parts[#parts + 1] = tide.tensor({string.byte(s, i, math.min(#s, i + CHUNK - 1))}, "uint8")
    end
    return #parts == 1 and parts[1] or tide.cat(parts, 0)
end

local function tensor_to_string(t)
    local bytes = t:totable()
    local parts = {}
    for i = 1, #bytes, CHUNK do
        parts[#parts + 1] = string.char(table.unpack(bytes, i, math.min(#bytes, i + CHUNK - 1)))
    end
    return table.concat(parts)
end

-- rank 0's string (or nil) on every rank
function M.bcast_string(s)
    if not M.active() then return s end
    local n = M.bcast_int(M.main() and (s and #s or -1) or 0)
    if n < 0 then return nil end
    if n == 0 then return "" end
    local t = M.main() and string_to_tensor(s) or tide.zeros({n}, {dtype = "uint8"})
    D.broadcast(t, {src = 0})
    if M.main() then return s end
    return tensor_to_string(t)
end

-- the text of a file as rank 0 reads it (nil when it cannot be opened),
-- on every rank
function M.read_shared(path)
    local text
    if M.main() then
        local f = io.open(path, "rb")
        if f then
            text = f:read("a")
            f:close()
        end
    end
    return M.bcast_string(text)
end

-- the numbers of `list` combined over the ranks by op ("sum", "max", ...),
-- in float64
function M.all_reduce(list, op)
    if not M.active() then return list end
    local t = tide.tensor(list, "float64")
    D.all_reduce(t, {op = op or "sum"})
    return t:totable()
end

-- Each rank holds rows [rank * per, rank * per + t:size(0)) of a tensor of
-- n rows (per = ceil(n / world), the last ranks' parts shorter): the whole
-- tensor on every rank, in order.
function M.gather_rows(t, n, per)
    if not M.active() then return t end
    local m = t:size(0)
    t = t:contiguous()
    if m < per then
        local shape = t:shape()
        shape[1] = per - m
        t = tide.cat({t, tide.zeros(shape, {dtype = t:dtype(), device = t:device()})}, 0)
    end
    local all = D.all_gather(t)
    local shape = all:shape()
    table.remove(shape, 1)
    shape[1] = shape[1] * M.world()
    return all:reshape(shape):narrow(0, 0, n)
end

return M
