-- Printing tensors, as PyTorch does, with a footer of facts.
--
-- The format:
--
--   tensor([[1.0000, 2.0000],
--           [3.0000, 4.0000]], shape=(2,2), dtype=float32, device=cpu)
--
-- * Integer dtypes (int64, uint8) print as integers. Float dtypes print
--   every value with "%.4f", or every value with "%.4e" when the nonzero
--   finite magnitudes span a wide range (max / min > 1e3, max > 1e8 or
--   min < 1e-4), PyTorch's rule. nan, inf and -inf print as such.
-- * All values share one width and are right-aligned in columns.
-- * Nested dims nest brackets; blocks of dim >= 3 are separated by blank
--   lines (one fewer than their depth from the last dim), as PyTorch.
-- * Rows wrap at 80 columns.
-- * Past 1000 elements the tensor is summarised: each dim longer than 6
--   shows its first 3 and last 3 entries with "..." between.
-- * The footer gives shape as "(2,2)" ("()" for 0-dim, "(3)" for 1-dim),
--   dtype and device, then "requires_grad=true" for a leaf that requires
--   grad or "grad_fn=NAME" for the result of a recorded op.
-- * A 0-dim tensor prints its value alone: tensor(3.5000, shape=(), ...);
--   an empty one prints []. A closed tensor prints tensor(closed).
--
-- The REPL shows its results through M.show, which also lays out tables:
-- {2, 3} on one line when it fits, else one entry per line; a tensor inside
-- a table shows its footer only (a state_dict reads as names, shapes and
-- dtypes), a table with __tostring (a module, a shape) its own text.
-- Nesting stops at MAX_DEPTH ({...}) and each table at MAX_ITEMS entries
-- (... 950 more), so a large result never floods the terminal.

local core = require "tide.core"

local THRESHOLD, EDGE, LINEWIDTH = 1000, 3, 80

local M = {}

-- the values to show as a nested table; a summarised level carries
-- cut = EDGE (the "..." goes after that many entries)
local function gather(t, summarise)
   if t:dim() == 0 then return t:item() end
   if not summarise then return t:totable() end
   local n = t:size(0)
   local out = {}
   if t:dim() == 1 then
      if n > 2 * EDGE then
         for i, v in ipairs(t:narrow(0, 0, EDGE):totable()) do out[i] = v end
         for i, v in ipairs(t:narrow(0, n - EDGE, EDGE):totable()) do out[EDGE + i] = v end
         out.cut = EDGE
         return out
      end
      return t:totable()
   end
   local idx = {}
   if n > 2 * EDGE then
      for i = 0, EDGE - 1 do idx[#idx + 1] = i end
      for i = n - EDGE, n - 1 do idx[#idx + 1] = i end
      out.cut = EDGE
   else
      for i = 0, n - 1 do idx[#idx + 1] = i end
   end
   for k, i in ipairs(idx) do out[k] = gather(t:select(0, i), true) end
   return out
end

local function leaves(node, acc)
   if type(node) == "number" then
      acc[#acc + 1] = node
   else
      for _, v in ipairs(node) do leaves(v, acc) end
   end
   return acc
end

-- a function turning one value into its text, and the common width
local function formatter(values, is_float)
   local fmt = "%d"
   if is_float then
      fmt = "%.4f"
      local lo, hi = math.huge, 0
      for _, v in ipairs(values) do
         local a = math.abs(v)
         if a == a and a ~= math.huge and a ~= 0 then
            if a < lo then lo = a end
            if a > hi then hi = a end
         end
      end
      if hi > 0 and (hi / lo > 1e3 or hi > 1e8 or lo < 1e-4) then fmt = "%.4e" end
   end
   local function text(v)
      if v ~= v then return "nan" end
      if v == math.huge then return "inf" end
      if v == -math.huge then return "-inf" end
      if fmt == "%d" then return string.format("%d", math.tointeger(v) or v) end
      return string.format(fmt, v)
   end
   local width = 0
   for _, v in ipairs(values) do
      local n = #text(v)
      if n > width then width = n end
   end
   return function(v)
      local s = text(v)
      return string.rep(" ", width - #s) .. s
   end, width
end

-- the block for `node` whose "[" sits at column `col`; `depth` dims remain
local function block(node, depth, col, text, width)
   local items = {}
   if depth == 1 then
      for i, v in ipairs(node) do
         items[#items + 1] = text(v)
         if node.cut == i then items[#items + 1] = "..." end
      end
      local per = math.max(1, (LINEWIDTH - col - 1) // (width + 2))
      local lines = {}
      for i = 1, #items, per do
         lines[#lines + 1] = table.concat(items, ", ", i, math.min(i + per - 1, #items))
      end
      return "[" .. table.concat(lines, ",\n" .. string.rep(" ", col + 1)) .. "]"
   end
   for i, child in ipairs(node) do
      items[#items + 1] = block(child, depth - 1, col + 1, text, width)
      if node.cut == i then items[#items + 1] = "..." end
   end
   local sep = "," .. string.rep("\n", depth - 1) .. string.rep(" ", col + 1)
   return "[" .. table.concat(items, sep) .. "]"
end

local function shape_text(t)
   return "(" .. table.concat(t:shape(), ",") .. ")"
end

-- the footer: ", shape=(2,2), dtype=float32, device=cpu[, requires_grad=true | , grad_fn=NAME]"
local function footer(t)
   local s = ", shape=" .. shape_text(t) .. ", dtype=" .. t:dtype() .. ", device=" .. t:device()
   local fn = t.grad_fn
   if fn then
      s = s .. ", grad_fn=" .. fn
   elseif t.requires_grad then
      s = s .. ", requires_grad=true"
   end
   return s
end

-- the text print(t) and tostring(t) show
function M.tostring(t)
   if not pcall(core.dim, t) then return "tensor(closed)" end
   local is_float = t:is_floating_point()
   local prefix = "tensor("
   if t:dim() == 0 then
      local text = formatter({ t:item() }, is_float)
      return prefix .. text(t:item()) .. footer(t) .. ")"
   end
   if t:numel() == 0 then return prefix .. "[]" .. footer(t) .. ")" end
   local node = gather(t, t:numel() > THRESHOLD)
   local text, width = formatter(leaves(node, {}), is_float)
   return prefix .. block(node, t:dim(), #prefix, text, width) .. footer(t) .. ")"
end

local MAX_DEPTH, MAX_ITEMS = 4, 40

local function is_tensor(v) return core.is_tensor(v) end

-- a table that print would show as "table: 0x...": laid out instead
local function is_plain(v)
   if type(v) ~= "table" then return false end
   local mt = getmetatable(v)
   return type(mt) ~= "table" or mt.__tostring == nil
end

-- "abc" with the escapes Lua itself would read back, on one line
local function quote(s)
   return (string.format("%q", s):gsub("\\\n", "\\n"))
end

-- the text of a tensor inside a table: its value when 0-dim, else the footer
local function tensor_brief(t)
   if not pcall(core.dim, t) then return "tensor(closed)" end
   if t:dim() == 0 then return M.tostring(t) end
   return "tensor(" .. footer(t):sub(3) .. ")"
end

-- key order: numbers first, then strings with their digit runs compared as
-- numbers ("layer2" before "layer10", as a state_dict is read)
local function natural_less(a, b)
   local ta, tb = type(a), type(b)
   if ta ~= tb then
      if ta == "number" or tb == "number" then return ta == "number" end
      return ta < tb
   end
   if ta == "number" then return a < b end
   if ta ~= "string" then return tostring(a) < tostring(b) end
   local i, j = 1, 1
   while i <= #a and j <= #b do
      local da, db = a:match("^%d+", i), b:match("^%d+", j)
      if da and db then
         local na, nb = tonumber(da), tonumber(db)
         if na ~= nb then return na < nb end
         i, j = i + #da, j + #db
      else
         local ca, cb = a:sub(i, i), b:sub(j, j)
         if ca ~= cb then return ca < cb end
         i, j = i + 1, j + 1
      end
   end
   return #a - i < #b - j
end

local show_value

local function key_text(k)
   if type(k) == "string" and k:match("^[%a_][%w_]*$") then return k end
   if type(k) == "string" then return "[" .. quote(k) .. "]" end
   return "[" .. tostring(k) .. "]"
end

-- a plain table at nesting depth `depth`, its first line at column `col`
local function show_table(t, depth, col, seen)
   if seen[t] then return "{<cycle>}" end
   if depth > MAX_DEPTH then return next(t) == nil and "{}" or "{...}" end
   seen[t] = true
   local n, keys = #t, {}
   for k in pairs(t) do
      if not (math.type(k) == "integer" and k >= 1 and k <= n) then keys[#keys + 1] = k end
   end
   table.sort(keys, natural_less)
   local items, total = {}, n + #keys
   local function add(text)
      if #items < MAX_ITEMS then items[#items + 1] = text end
   end
   for i = 1, n do add(show_value(t[i], depth + 1, col + 2, seen)) end
   local n_listed = #items -- the sequence part: packed several to a line
   for _, k in ipairs(keys) do
      local kt = key_text(k) .. " = "
      add(kt .. show_value(t[k], depth + 1, col + 2 + #kt, seen))
   end
   seen[t] = nil
   if total > #items then items[#items + 1] = string.format("... %d more", total - #items) end
   local line = "{" .. table.concat(items, ", ") .. "}"
   if #items == 0 or (col + #line <= LINEWIDTH and not line:find("\n")) then return line end
   local pad = string.rep(" ", col + 2)
   local lines = {}
   for i, item in ipairs(items) do
      local last = lines[#lines]
      if i <= n_listed and i > 1 and not (last .. item):find("\n")
         and col + 2 + #last + #item + 2 <= LINEWIDTH then
         lines[#lines] = last .. ", " .. item
      else
         lines[#lines + 1] = item
      end
   end
   return "{\n" .. pad .. table.concat(lines, ",\n" .. pad) .. "\n" .. string.rep(" ", col) .. "}"
end

-- a value inside a table: strings quoted, tensors brief, tables laid out
function show_value(v, depth, col, seen)
   if type(v) == "string" then return quote(v) end
   if is_tensor(v) then return tensor_brief(v) end
   if is_plain(v) then return show_table(v, depth, col, seen) end
   local text = tostring(v)
   return (text:gsub("\n", "\n" .. string.rep(" ", col)))
end

-- the REPL's text for its results: a string, a number or a tensor as print
-- shows it, a table laid out; several results separated by tabs
function M.show(...)
   local out = {}
   for i = 1, select("#", ...) do
      local v = select(i, ...)
      if is_plain(v) then
         out[i] = show_table(v, 1, 0, {})
      else
         out[i] = tostring(v)
      end
   end
   return table.concat(out, "\t")
end

return M
