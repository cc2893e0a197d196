-- tide.gradcheck(fn, inputs, {eps = 1e-6, atol = 1e-5, rtol = 1e-3, params})
--
-- Checks the gradients autograd computes for fn against central finite
-- differences, as Torch7's nn.Jacobian and PyTorch's gradcheck do.
--
-- inputs is a list of fn's arguments; the tensors among them that require
-- grad are checked and must be float64 (the others are passed through).
-- fn returns a tensor or a list of tensors. With fixed pseudo-random
-- weights v (one tensor per output, the same on every run), the scalar
-- s = sum_k sum(out_k * v_k) is differentiated twice:
--   analytic: backward of s, on detached leaf copies of the inputs;
--   numeric:  (s(x + eps e_j) - s(x - eps e_j)) / (2 eps) for each element j.
-- Every element must satisfy |analytic - numeric| <= atol + rtol * |numeric|.
-- Returns true, or raises an error naming the input (1-based, its place in
-- the list), the element (0-based indices), and both values.
--
-- params (a list of float64 tensors, as model:parameters()) are checked
-- too. fn reaches them through its closure, not its arguments, so they
-- cannot be swapped for copies: the analytic pass saves their .grad, runs
-- backward and puts the .grad back; the numeric pass moves them in place
-- under no_grad and restores each element.

local core = require "tide.core"

local caller = require "tide.caller"

local OPTIONS = { eps = true, atol = true, rtol = true, params = true }

-- a fixed stream of weights in +-[0.5, 1.5] (Lua's math.random is left alone)
local function weights(shape)
   local state = 12345
   local n = 1
   for _, s in ipairs(shape) do n = n * s end
   local flat = {}
   for i = 1, n do
      state = (state * 1103515245 + 12345) % 2147483648
      local u = state / 2147483648
      flat[i] = (u < 0.5 and -1 or 1) * (0.5 + 2 * math.abs(u - 0.5))
   end
   local w = core.tensor(#shape == 0 and flat[1] or flat, "float64")
   return #shape == 0 and w or w:view(shape)
end

local function as_list(out)
   if core.is_tensor(out) then return { out } end
   if type(out) == "table" then return out end
   caller.error("gradcheck: fn must return a tensor or a list of tensors, got " .. type(out))
end

-- the indices (0-based) of flat element j of a tensor of this shape
local function unflatten(shape, j)
   local idx = {}
   for d = #shape, 1, -1 do
      idx[d] = j % shape[d]
      j = j // shape[d]
   end
   return idx
end

return function(fn, inputs, opts)
   if type(fn) ~= "function" then error("bad argument #1 to 'gradcheck' (function expected)", 2) end
   if type(inputs) ~= "table" or core.is_tensor(inputs) then
      error("bad argument #2 to 'gradcheck' (list of inputs expected)", 2)
   end
   opts = opts or {}
   if type(opts) ~= "table" then error("bad argument #3 to 'gradcheck' (options table expected)", 2) end
   for k in pairs(opts) do
      if not OPTIONS[k] then
         error(("bad argument #3 to 'gradcheck' (unknown option '%s'; known: atol, eps, params, rtol)")
            :format(tostring(k)), 2)
      end
   end
   local eps, atol, rtol = opts.eps or 1e-6, opts.atol or 1e-5, opts.rtol or 1e-3
   local params = opts.params or {}
   if type(params) ~= "table" or core.is_tensor(params) then
      error("bad argument #3 to 'gradcheck' (option 'params' must be a list of tensors)", 2)
   end
   for i, p in ipairs(params) do
      if not core.is_tensor(p) then
         error(("bad argument #3 to 'gradcheck' (params[%d] is a %s, not a tensor)"):format(i, type(p)), 2)
      end
      if p:dtype() ~= "float64" then
         error(("gradcheck: params[%d] is %s; check in float64 (model:double())"):format(i, p:dtype()), 2)
      end
      if not p.requires_grad then
         error(("gradcheck: params[%d] does not require grad"):format(i), 2)
      end
   end

   local n = #inputs
   local checked = {}
   for i = 1, n do
      local x = inputs[i]
      if core.is_tensor(x) and x.requires_grad then
         if x:dtype() ~= "float64" then
            error(("gradcheck: inputs[%d] is %s; check in float64 (x:double():requires_grad_())")
               :format(i, x:dtype()), 2)
         end
         checked[#checked + 1] = i
      end
   end
   if #checked == 0 and #params == 0 then error("gradcheck: no input is a tensor that requires grad", 2) end

   -- analytic: backward through detached leaf copies
   local leaves = {}
   for i = 1, n do
      local x = inputs[i]
      if core.is_tensor(x) and x.requires_grad then
         leaves[i] = x:detach():clone():requires_grad_(true)
      else
         leaves[i] = x
      end
   end
   local outs = as_list(fn(table.unpack(leaves, 1, n)))
   local ws = {}
   local total
   for k, o in ipairs(outs) do
      if o:is_floating_point() then
         ws[k] = weights(o:shape())
         local term = (o * ws[k]):sum()
         total = total and total + term or term
      end
   end
   local saved = {}
   for i, p in ipairs(params) do
      saved[i] = p.grad
      p.grad = nil
   end
   if total and total.requires_grad then total:backward() end
   local pgrads = {}
   for i, p in ipairs(params) do
      pgrads[i] = p.grad
      p.grad = saved[i]
   end

   -- numeric: central differences on detached copies, no graph recorded
   local plain = {}
   for i = 1, n do
      local x = inputs[i]
      plain[i] = core.is_tensor(x) and x:detach():clone() or x
   end
   local function score()
      return core.no_grad(function()
         local s = 0
         for k, o in ipairs(as_list(fn(table.unpack(plain, 1, n)))) do
            if ws[k] then s = s + (o:double() * ws[k]):sum():item() end
         end
         return s
      end)
   end

   -- x is changed in place at each element and put back
   local function compare(what, x, grad)
      local shape = x:shape()
      for j = 0, x:numel() - 1 do
         local idx = unflatten(shape, j)
         local orig = x:get(table.unpack(idx))
         core.no_grad(function() x:set(orig + eps, table.unpack(idx)) end)
         local plus = score()
         core.no_grad(function() x:set(orig - eps, table.unpack(idx)) end)
         local minus = score()
         core.no_grad(function() x:set(orig, table.unpack(idx)) end)
         local numeric = (plus - minus) / (2 * eps)
         local analytic = grad and grad:get(table.unpack(idx)) or 0
         local close = math.abs(analytic - numeric) <= atol + rtol * math.abs(numeric)
         if not close then
            caller.error(("gradcheck: %s element (%s): analytic gradient %.8g, numeric %.8g "
                   .. "(|diff| %.3g > atol %g + rtol %g * |numeric|)")
               :format(what, table.concat(idx, ","), analytic, numeric, math.abs(analytic - numeric), atol, rtol))
         end
      end
   end

   for _, i in ipairs(checked) do compare(("inputs[%d]"):format(i), plain[i], leaves[i].grad) end
   for i, p in ipairs(params) do compare(("params[%d]"):format(i), p, pgrads[i]) end
   return true
end
