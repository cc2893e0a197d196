-- The table that require "tide.experiment" returns. Each part of the
-- toolkit (flags, log, factories, tables, runner, report) adds its public
-- functions to it and calls the others through it, so a recipe that
-- replaces E.evaluate, say, changes what E.train_classifier uses.
return {}
