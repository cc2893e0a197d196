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

return M
