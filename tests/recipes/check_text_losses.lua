-- Checks what scripts/text_losses.lua wrote into its --out folder, beyond
-- check_report.lua's generic checks:
--   tide tests/recipes/check_text_losses.lua DIR --variants lstm_ce,transformer_ce
-- - every metrics.jsonl record has val_nll > 0 and finite, val_ppl =
--   exp(val_nll), val_acc, val_top5 and ece in [0, 1] and val_top5 >= val_acc;
-- - every variant has a record, and after its last epoch a perplexity below
--   the vocabulary size read from report.md (a uniform guess scores exactly
--   the vocabulary size, so a model that learned nothing fails);
-- - report.md: the Results table with val NLL, perplexity, top-1 %, top-5 %
--   and ECE, whose perplexity cells match metrics.jsonl; a Generated
--   samples section with, for each variant, a heading and a non-empty
--   fenced sample; the reliability and perplexity plots linked.
-- Exits 1 with one line per failure.

local dir = arg[1]
local variants = {}
if arg[2] == "--variants" and arg[3] then
    for v in arg[3]:gmatch("[^,]+") do variants[#variants + 1] = v end
end
if not dir or #variants == 0 then
    io.stderr:write("usage: tide tests/recipes/check_text_losses.lua DIR --variants a,b\n")
    os.exit(2)
end

local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/checklib.lua")
local fail, read, in01 = C.fail, C.read, C.in01
local function finite_pos(x) return type(x) == "number" and x > 0 and x < math.huge end

local report = read(dir .. "/report.md") or ""
if report == "" then fail("%s/report.md is missing or empty", dir) end
local vocab = tonumber(report:match("a vocabulary of (%d+) characters"))
if not vocab or vocab < 2 then fail("report.md: no 'a vocabulary of N characters'") end

local last = {}
local n = C.each_record(dir, function(rec, n)
    if not finite_pos(rec.val_nll) then fail("metrics.jsonl:%d: val_nll is %s", n, tostring(rec.val_nll)) end
    if not finite_pos(rec.val_ppl) then
        fail("metrics.jsonl:%d: val_ppl is %s", n, tostring(rec.val_ppl))
    elseif finite_pos(rec.val_nll) and math.abs(rec.val_ppl - math.exp(rec.val_nll)) > 1e-6 * rec.val_ppl then
        fail("metrics.jsonl:%d: val_ppl %s is not exp(val_nll %s)", n, tostring(rec.val_ppl), tostring(rec.val_nll))
    end
    for _, f in ipairs({"val_acc", "val_top5", "ece", "train_acc"}) do
        if not in01(rec[f]) then fail("metrics.jsonl:%d: %s is %s, not in [0, 1]", n, f, tostring(rec[f])) end
    end
    if in01(rec.val_acc) and in01(rec.val_top5) and rec.val_top5 < rec.val_acc then
        fail("metrics.jsonl:%d: top-5 %.4f below top-1 %.4f", n, rec.val_top5, rec.val_acc)
    end
    if type(rec.variant) == "string" and (not last[rec.variant] or rec.epoch > last[rec.variant].epoch) then
        last[rec.variant] = rec
    end
end)

-- the Results table
local rows, head = {}, nil
for line in report:gmatch("[^\n]+") do
    local cells = {}
    for c in line:gmatch("|([^|]*)") do cells[#cells + 1] = c:match("^%s*(.-)%s*$") end
    if #cells > 1 and cells[#cells] == "" then cells[#cells] = nil end
    if cells[1] == "variant" and not head then head = cells end
    if cells[1] and head and not rows[cells[1]] and #cells == #head then rows[cells[1]] = cells end
end
local col = {}
if not head then fail("report.md: no Results table (a header starting with 'variant')")
else
    for k, c in ipairs(head) do col[c] = k end
    for _, c in ipairs({"val NLL", "perplexity", "top-1 %", "top-5 %", "ECE"}) do
        if not col[c] then fail("report.md: the Results table has no column '%s'", c) end
    end
end

for _, v in ipairs(variants) do
    local rec = last[v]
    if not rec then fail("metrics.jsonl: no record of variant %s", v)
    elseif vocab and finite_pos(rec.val_ppl) and not (rec.val_ppl < vocab) then -- luacheck: ignore 581 (NaN)
        fail("%s: validation perplexity %.3f is not below the vocabulary size %d (a uniform guess)", v, rec.val_ppl,
             vocab)
    end
    local row = rows[v]
    if not row then fail("report.md: no Results row for %s", v)
    elseif rec and col.perplexity then
        local p = tonumber(row[col.perplexity])
        if not p or not finite_pos(rec.val_ppl) or math.abs(p - rec.val_ppl) > 0.0006 then
            fail("report.md: %s's perplexity '%s' is not metrics.jsonl's %s", v, tostring(row[col.perplexity]),
                 tostring(rec.val_ppl))
        end
        local t1, t5 = tonumber(row[col["top-1 %"]]), tonumber(row[col["top-5 %"]])
        if not t1 or not t5 or t5 < t1 then
            fail("report.md: %s's top-5 '%s' is below its top-1 '%s'", v, tostring(row[col["top-5 %"]]),
                 tostring(row[col["top-1 %"]]))
        end
    end
    -- the sample: "### NAME", a line, then a fenced block with text after the prompt
    local body = report:match("\n### " .. v:gsub("%p", "%%%0") .. "\n\n[^\n]*\n\n(`+)\n")
    local sample = body and report:match("\n### " .. v:gsub("%p", "%%%0") .. "\n\n[^\n]*\n\n" .. body
                                         .. "\n(.-)\n" .. body .. "\n")
    if not sample then fail("report.md: no generated sample for %s", v)
    elseif #sample < 20 then fail("report.md: %s's sample is only %d bytes: %s", v, #sample, sample) end
end
for _, what in ipairs({"## Generated samples", "val_ppl.png", "reliability_", "a uniform guess has perplexity"}) do
    if not report:find(what, 1, true) then fail("report.md: no '%s'", what) end
end

C.exit_if_failed("check_text_losses")
print(string.format("check_text_losses: %s: %d records, %d variants, vocabulary %d; all checks pass", dir, n,
                    #variants, vocab or 0))
