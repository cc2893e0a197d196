-- tide.optim: optimizers and learning-rate schedules, and gradient clipping
-- in tide.nn.utils. Semantics are PyTorch 1.13's (torch.optim,
-- torch.optim.lr_scheduler, torch.nn.utils.clip_grad); the update of each
-- parameter is one fused C pass (tide.core._sgd_step, _adam_step,
-- _rmsprop_step); SGD, Adam and AdamW hand a whole group to one C call
-- (_sgd_step_multi, _adam_step_multi: few launches on CUDA). See docs/optim.md.
--
-- The parts: optim/base.lua (the Optimizer: groups, state_dict), optim/
-- algorithms.lua (SGD, Adam, AdamW, RMSprop), optim/schedulers.lua,
-- optim/clip.lua (tide.nn.utils' clipping), optim/common.lua (what they
-- share).
local M = {}

function M.install(tide, core)
    local optim = {}
    local base = require("tide.optim.base").install(optim, core)
    require("tide.optim.algorithms").install(base, core)
    require("tide.optim.schedulers").install(optim, core)
    tide.optim = optim
    require("tide.optim.clip").install(tide, core)
end

return M
