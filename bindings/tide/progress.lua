-- tide.progress: a progress bar with count, rate, ETA and live stats.
-- On a terminal one line is redrawn with \r; when the stream is not a
-- terminal (a log file, a pipe, CI) a plain line is written every
-- `interval` seconds and at close. TIDE_PROGRESS=bar|plain|off overrides
-- the detection. Under mpirun only rank 0 draws (the others' bars are off
-- unless given a mode).
local core = require "tide.core"

local P = {}

local Bar = {}
Bar.__index = Bar
P.Bar = Bar

local function argfail(fname, n, msg)
    error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), 3)
end

-- 0:46, 12:03, 1:02:03
local function hms(s)
    if s ~= s or s == math.huge or s < 0 then return "?:??" end
    s = math.floor(s + 0.5)
    local h, m, sec = s // 3600, (s % 3600) // 60, s % 60
    if h > 0 then return string.format("%d:%02d:%02d", h, m, sec) end
    return string.format("%d:%02d", m, sec)
end

local function rate_str(r)
    if r ~= r or r == math.huge then return "?" end
    if r >= 100 then return string.format("%.0f", r) end
    if r >= 10 then return string.format("%.1f", r) end
    return string.format("%.2f", r)
end

-- a stat value: integers as is, other numbers with 3 decimals (or 3
-- significant digits when very large or small), anything else by tostring
local function stat_str(v)
    if math.type(v) == "integer" then return tostring(v) end
    if type(v) ~= "number" then return tostring(v) end
    if v ~= v or v == math.huge or v == -math.huge then return tostring(v) end
    local a = math.abs(v)
    if a ~= 0 and (a >= 1e5 or a < 1e-3) then return string.format("%.3g", v) end
    return string.format("%.3f", v)
end

local OPTIONS = {total = true, desc = true, unit = true, stream = true, interval = true,
                 clock = true, mode = true, width = true, order = true}

local function stream_is_tty(stream)
    if io.type(stream) == "file" then return core.isatty(stream) end
    return false
end

-- a rank other than 0 of a job started by mpirun: its bars are off
local function other_rank()
    local d = core.distributed
    return type(d) == "table" and d.is_initialized() and d.rank() ~= 0
end

local known = require("tide.caller").known

-- ## new{total, desc, unit = "it", stream = io.stdout, interval, mode, clock, width = 30, order}
function P.new(opts)
    opts = opts or {}
    if type(opts) ~= "table" then argfail("new", 1, "options must be a table, got " .. type(opts)) end
    for k in pairs(opts) do
        if not OPTIONS[k] then
            argfail("new", 1, "unknown option '" .. tostring(k) .. "'; known: " .. known(OPTIONS))
        end
    end
    local total = opts.total
    if total ~= nil and (type(total) ~= "number" or total < 0 or total ~= total) then
        argfail("new", 1, "total must be a number >= 0 or nil, got " .. tostring(total))
    end
    local stream = opts.stream or io.stdout
    if io.type(stream) ~= "file" and (type(stream) ~= "table" or type(stream.write) ~= "function") then
        argfail("new", 1, "stream must be a file or a table with a write method")
    end
    local mode = opts.mode
    if mode == nil and other_rank() then
        mode = "off"
    elseif mode == nil then
        local env = os.getenv("TIDE_PROGRESS")
        if env and env ~= "" then
            if env ~= "bar" and env ~= "plain" and env ~= "off" then
                error(string.format("TIDE_PROGRESS must be bar, plain or off, got '%s'", env), 2)
            end
            mode = env
        else
            mode = stream_is_tty(stream) and "bar" or "plain"
        end
    elseif mode ~= "bar" and mode ~= "plain" and mode ~= "off" then
        argfail("new", 1, "mode must be \"bar\", \"plain\" or \"off\", got " .. tostring(mode))
    end
    local interval = opts.interval
    if interval == nil then
        interval = mode == "bar" and 0.1 or 10
    elseif type(interval) ~= "number" or interval < 0 then
        argfail("new", 1, "interval must be a number of seconds >= 0, got " .. tostring(interval))
    end
    local clock = opts.clock or core.clock
    if type(clock) ~= "function" then argfail("new", 1, "clock must be a function") end
    local width = opts.width or 30
    if math.type(width) ~= "integer" or width < 1 then
        argfail("new", 1, "width must be a positive integer, got " .. tostring(width))
    end
    local order = {}
    if opts.order ~= nil then
        if type(opts.order) ~= "table" then argfail("new", 1, "order must be a list of stat names") end
        for i, name in ipairs(opts.order) do order[i] = name end
    end
    local now = clock()
    local self = setmetatable({
        total = total, desc = opts.desc and tostring(opts.desc) or nil, unit = opts.unit or "it",
        stream = stream, interval = interval, mode = mode, clock = clock, width = width,
        count = 0, stats = {}, order = order, start = now, last = now, drawn = 0,
        closed = false,
    }, Bar)
    return self
end

-- the parts after the bar or count: rate, time, stats
function Bar:_stats_str()
    local parts = {}
    for _, name in ipairs(self.order) do
        local v = self.stats[name]
        if v ~= nil then parts[#parts + 1] = name .. " " .. stat_str(v) end
    end
    return table.concat(parts, " ")
end

function Bar:_count_str()
    local function n(v) return math.tointeger(v) and tostring(math.tointeger(v)) or string.format("%.1f", v) end
    if self.total then return n(self.count) .. "/" .. n(self.total) end
    return n(self.count)
end

-- the line for the current state; final: the closing line
function Bar:line(final)
    local now = self.now or self.clock()
    local elapsed = now - self.start
    local rate = elapsed > 0 and self.count / elapsed or 0 / 0
    local parts = {}
    if self.desc and self.desc ~= "" then parts[#parts + 1] = self.desc end
    if self.mode == "bar" and self.total then
        local frac = self.total > 0 and math.min(1, self.count / self.total) or 1
        local fill = math.floor(frac * self.width + 1e-9)
        parts[#parts + 1] = "[" .. string.rep("#", fill) .. string.rep(".", self.width - fill) .. "]"
    end
    local count = self:_count_str()
    if self.mode ~= "bar" and self.total and self.total > 0 then
        count = count .. string.format(" (%d%%)", math.floor(100 * math.min(1, self.count / self.total)))
    end
    parts[#parts + 1] = count
    parts[#parts + 1] = rate_str(rate) .. " " .. self.unit .. "/s"
    if final then
        parts[#parts + 1] = "in " .. hms(elapsed)
    elseif self.total then
        local left = self.total - self.count
        parts[#parts + 1] = "ETA " .. (left <= 0 and "0:00" or hms(rate > 0 and left / rate or math.huge))
    else
        parts[#parts + 1] = hms(elapsed)
    end
    local stats = self:_stats_str()
    if stats ~= "" then parts[#parts + 1] = stats end
    return table.concat(parts, " ")
end

function Bar:_emit(final)
    local s = self:line(final)
    if self.mode == "bar" then
        local pad = self.drawn > #s and string.rep(" ", self.drawn - #s) or ""
        self.stream:write("\r" .. s .. pad .. (final and "\n" or ""))
        self.drawn = #s
    else
        self.stream:write(s .. "\n")
    end
    if self.stream.flush then self.stream:flush() end
end

-- ## bar:update(n = 1, [stats]) -> bar
function Bar:update(n, stats)
    if self.closed then error("tide.progress: update after close", 2) end
    if n == nil then n = 1 end
    if type(n) ~= "number" or n < 0 or n ~= n then
        argfail("update", 1, "n must be a number >= 0, got " .. tostring(n))
    end
    if stats ~= nil then
        if type(stats) ~= "table" then argfail("update", 2, "stats must be a table of name = value") end
        local new = {}
        for name, v in pairs(stats) do
            if type(name) ~= "string" then argfail("update", 2, "stat names must be strings") end
            if self.stats[name] == nil then
                local listed = false
                for _, o in ipairs(self.order) do if o == name then listed = true break end end
                if not listed then new[#new + 1] = name end
            end
            self.stats[name] = v
        end
        table.sort(new)
        for _, name in ipairs(new) do self.order[#self.order + 1] = name end
    end
    self.count = self.count + n
    if self.mode == "off" then return self end
    local now = self.clock()
    self.now = now
    local finished = self.total and self.count >= self.total and not self.shown_full
    if now - self.last >= self.interval or (finished and self.mode == "bar") then
        self.last = now
        if finished then self.shown_full = true end
        self:_emit(false)
    end
    self.now = nil
    return self
end

-- ## bar:close()
function Bar:close()
    if self.closed then return end
    self.closed = true
    if self.mode == "off" then return end
    self.now = self.clock()
    self:_emit(true)
    self.now = nil
end

Bar.__close = Bar.close

return P
