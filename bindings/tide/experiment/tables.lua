-- tide.experiment's tables: the epochs worth a row, and {columns, rows}
-- as aligned text and as Markdown.
local E = require "tide.experiment.api"

-- The epochs to show in a table: the first, the middle and the last.
function E.milestones(epochs)
    local list, seen = {}, {}
    for _, e in ipairs({1, (epochs + 1) // 2, epochs}) do
        if not seen[e] then list[#list + 1] = e; seen[e] = true end
    end
    return list
end

-- The record of epoch e in a history (nil when absent).
function E.at_epoch(history, e)
    for _, r in ipairs(history or {}) do if r.epoch == e then return r end end
    return nil
end

local function cell(v, fmt)
    if v == nil then return "-" end
    if type(v) == "number" then
        if v ~= v then return "nan" end
        if fmt then return string.format(fmt, v) end
        if math.type(v) == "integer" then return tostring(v) end
        return string.format("%.4f", v)
    end
    if fmt and type(v) == "string" then return v end
    return tostring(v)
end

local function table_cells(t)
    local head, fmts, rows = {}, {}, {}
    for i, c in ipairs(t.columns) do
        if type(c) == "table" then
            head[i], fmts[i] = c.name or c[1], c.fmt
        else
            head[i] = c
        end
    end
    for r, row in ipairs(t.rows) do
        rows[r] = {}
        for i = 1, #head do rows[r][i] = cell(row[i], fmts[i]) end
    end
    return head, rows
end

-- a number, or what stands in a column of numbers where one is missing or
-- not finite: such a column is right-aligned, so its digits line up
local NOT_A_NUMBER = {nan = true, NaN = true, inf = true, ["-inf"] = true, none = true}
local function numeric(s)
    return s:match("^[-+]?[%d.]+[%%]?$") or s:match("^[-+]?[%d.]+e[-+]%d+$") or NOT_A_NUMBER[s]
end

-- An aligned text table of {columns, rows} (numbers right-aligned).
function E.format_table(t)
    local head, rows = table_cells(t)
    local width = {}
    for i, h in ipairs(head) do width[i] = utf8.len(h) or #h end
    for _, row in ipairs(rows) do
        for i, s in ipairs(row) do width[i] = math.max(width[i], utf8.len(s) or #s) end
    end
    local function line(cells, right)
        local parts = {}
        for i, s in ipairs(cells) do
            local pad = string.rep(" ", width[i] - (utf8.len(s) or #s))
            parts[i] = (right and right[i]) and pad .. s or s .. pad
        end
        return (table.concat(parts, "  "):gsub("%s+$", ""))
    end
    local right = {}
    for i = 1, #head do
        right[i] = #rows > 0
        for _, row in ipairs(rows) do
            if not (numeric(row[i]) or row[i] == "-") then right[i] = false end
        end
    end
    local out = {line(head, right)}
    local rule = {}
    for i = 1, #head do rule[i] = string.rep("-", width[i]) end
    out[#out + 1] = table.concat(rule, "  ")
    for _, row in ipairs(rows) do out[#out + 1] = line(row, right) end
    return table.concat(out, "\n") .. "\n"
end

-- The same table in Markdown.
function E.markdown_table(t)
    local head, rows = table_cells(t)
    local function esc(s) return (s:gsub("|", "\\|")) end
    local out = {}
    local h, rule = {}, {}
    for i, s in ipairs(head) do
        h[i] = esc(s)
        local right = #rows > 0
        for _, row in ipairs(rows) do if not (numeric(row[i]) or row[i] == "-") then right = false end end
        rule[i] = right and "---:" or "---"
    end
    out[1] = "| " .. table.concat(h, " | ") .. " |"
    out[2] = "| " .. table.concat(rule, " | ") .. " |"
    for _, row in ipairs(rows) do
        local r = {}
        for i, s in ipairs(row) do r[i] = esc(s) end
        out[#out + 1] = "| " .. table.concat(r, " | ") .. " |"
    end
    return table.concat(out, "\n") .. "\n"
end
