-- tide.experiment: the toolkit the recipes in scripts/ are written with.
--
-- A recipe parses its flags (parse), makes an experiment on an output
-- folder (new), runs named variants (ex:variant, or ex:train_classifier
-- for the standard loop), and writes report.md (ex:report). Every epoch
-- goes to <out>/metrics.jsonl as one JSON object; a finished variant is
-- recorded in <out>/state.json with the settings it ran with, so a rerun
-- with the same settings loads it instead of training it again. See
-- docs/experiment.md.

--
-- The parts, under experiment/: flags (the command line), log (files and
-- metrics.jsonl), factories (data, models, optimizers, evaluation), tables,
-- runner (the Experiment, its variants and the classifier loop), report,
-- and dist (several processes under mpirun: rank 0 writes and prints, the
-- others get what it reads; see docs/experiment.md, "Several processes").
local E = require "tide.experiment.api"

for _, part in ipairs({"flags", "log", "factories", "tables", "runner", "report"}) do
    require("tide.experiment." .. part)
end

return E
