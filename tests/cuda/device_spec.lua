-- Devices from Lua: what holds with and without a GPU. Without one (or in
-- a build without CUDA) every CUDA request is a clear error; with one, the
-- round trip, the same-device rule and the not-yet-implemented gate.
local tide = require "tide"

describe("devices", function()
  it("answers what CUDA there is", function()
    assert.is_boolean(tide.cuda.is_available())
    assert.is_true(math.type(tide.cuda.device_count()) == "integer")
    assert.equal(tide.cuda.is_available(), tide.cuda.device_count() > 0)
    tide.cuda.synchronize()
    tide.cuda.empty_cache()
  end)

  it("names devices", function()
    assert.equal("cpu", tide.ones{2}:device())
    assert.equal("cpu", tide.ones{2}:cpu():device())
    assert.equal("float64", tide.ones{2}:to("float64"):dtype())
    assert.has_error(function() tide.ones{2}:to("gpu") end)
    assert.has_error(function() tide.ones{2}:to{device = "tpu"} end)
  end)

  if not tide.cuda.is_available() then
    it("refuses CUDA clearly where there is none", function()
      local ok, err = pcall(function() return tide.ones{2}:cuda() end)
      assert.is_false(ok)
      assert.matches("cuda:0' is not available", err)
      ok, err = pcall(function() return tide.zeros({2}, {device = "cuda"}) end)
      assert.is_false(ok)
      assert.matches("not available", err)
      ok, err = pcall(tide.memory, "cuda")
      assert.is_false(ok)
      assert.matches("not available", err)
    end)
    return
  end

  it("moves tensors both ways", function()
    local x = tide.randn{3, 4}
    local g = x:cuda()
    assert.equal("cuda:0", g:device())
    assert.equal("cuda:0", x:to("cuda"):device())
    assert.same(x:totable(), g:cpu():totable())
    assert.same(x:totable(), g:totable())
    assert.equal(x:get(1, 2), g:get(1, 2))
    assert.equal("cuda:0", tide.zeros_like(g):device())
    assert.equal("cuda:0", tide.zeros({2}, {device = "cuda"}):device())
    assert.is_true(tide.memory("cuda").live > 0)
    assert.is_true(tide.memory("cuda").peak >= tide.memory("cuda").live)
  end)

  it("computes on the device and back-propagates to a CPU leaf", function()
    local w = tide.randn({4, 5}, {requires_grad = true})
    local loss = (w:cuda():log_softmax(1) * 2):sum()
    loss:backward()
    assert.equal("cpu", w.grad:device())
    local w2 = w:detach():clone()
    w2:requires_grad_()
    ;(w2:log_softmax(1) * 2):sum():backward()
    assert.is_true(((w.grad - w2.grad):abs():max():item()) < 1e-5)
  end)

  it("wants one device per op", function()
    local ok, err = pcall(function() return tide.ones{2} + tide.ones{2}:cuda() end)
    assert.is_false(ok)
    assert.matches("expected all tensors on the same device, got cpu and cuda:0", err, 1, true)
  end)

  it("refuses ops that have no CUDA path yet", function()
    -- cross_entropy, once the example here, runs on CUDA now; saving CUDA
    -- tensors is still pending (docs/cuda.md)
    local x = tide.randn{3, 4}:cuda()
    local path = os.tmpname()
    local ok, err = pcall(tide.save, path, {x = x})
    os.remove(path)
    assert.is_false(ok)
    assert.matches("is not implemented on cuda yet", err)
  end)
end)
