-- tide.plot: PNG charts through gnuplot (terminal pngcairo): line charts,
-- grouped bar charts and reliability diagrams. Each call writes the data
-- and a gnuplot script to temporary files and runs `gnuplot script`; paths
-- and titles are quoted for the shell and for gnuplot, never spliced in
-- raw. Where gnuplot is missing (or TIDE_NO_GNUPLOT=1), a one-line notice
-- (once per process) and the data as CSV next to where the PNG would be.
local Plot = {}

local function argfail(fname, msg)
    error(string.format("bad argument #1 to '%s' (%s)", fname, msg), 3)
end

-- a string for the shell, in single quotes
local function shell_quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- a string for gnuplot, in single quotes (no escapes inside but '')
local function gp_quote(s)
    s = tostring(s):gsub("[\r\n]", " ")
    return "'" .. s:gsub("'", "''") .. "'"
end

local function is_nan(v) return v ~= v end

-- ---- styles ----------------------------------------------------------------

-- Paul Tol's colour-blind-safe "bright" scheme (its grey darkened, an orange
-- added), then distinct dash types and open point shapes: where curves
-- coincide, the dashes interleave and the open shapes nest, so every
-- series stays visible. The cycle lengths are coprime, so no two of the
-- first 8 x 5 x 7 styles are the same.
local COLORS = {"#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#555555", "#ee7733"}
local DASHES = {1, 2, 3, 4, 5}     -- solid, dashed, dotted, dash-dot, dash-dot-dot
local POINTS = {6, 4, 8, 12, 10, 14, 2}   -- circle, square, triangle, diamond, nabla, pentagon, cross

-- ## style(k) -> {color, dash, point}
function Plot.style(k)
    if math.type(k) ~= "integer" or k < 1 then
        error(string.format("bad argument #1 to 'style' (a positive integer expected, got %s)", tostring(k)), 2)
    end
    return {color = COLORS[(k - 1) % #COLORS + 1], dash = DASHES[(k - 1) % #DASHES + 1],
            point = POINTS[(k - 1) % #POINTS + 1]}
end

-- the style of the i-th series: its `style` index (else i), then its own
-- color, dash and point
local function series_style(s, i)
    local st = Plot.style(s.style or i)
    return {color = s.color or st.color, dash = s.dash or st.dash, point = s.point or st.point}
end

-- Later series are drawn over earlier ones, each line a little thinner and
-- each open point a little larger: where curves coincide, every one still
-- shows, as an edge around the next line and as a ring of points.
local function line_width(i, n)
    if n == 1 then return "2" end
    return string.format("%.2g", 3 - 1.5 * (i - 1) / (n - 1))
end
local function point_size(i)
    return string.format("%.2g", math.min(2, 0.9 + 0.25 * (i - 1)))
end

-- a step between integer ticks: 1, 2, 5, 10, 20, ... giving at most 10 ticks
local function integer_step(range)
    local step = 1
    while range / step > 10 do
        local d = tostring(step):sub(1, 1)
        step = step * (d == "2" and 2.5 or 2)
    end
    return math.tointeger(step) or step
end

local function num(v)
    if is_nan(v) or v == math.huge or v == -math.huge then return "NaN" end
    return string.format("%.17g", v)
end

-- ---- availability ---------------------------------------------------------

local cached
-- ## available() -> boolean
function Plot.available()
    if cached == nil then
        local off = os.getenv("TIDE_NO_GNUPLOT")
        if off and off ~= "" and off ~= "0" then
            cached = false
        else
            cached = os.execute("command -v gnuplot >/dev/null 2>&1 && " ..
                "gnuplot -e 'set terminal pngcairo' >/dev/null 2>&1") == true
        end
    end
    return cached
end

local noticed = false
local function notice(path)
    if noticed then return end
    noticed = true
    io.stderr:write("tide.plot: gnuplot not found (apt-get install gnuplot-nox); writing CSV data instead: ",
        path, "\n")
    io.stderr:flush()
end

local known = require("tide.caller").known

-- ---- argument checks -------------------------------------------------------

local function check_opts(fname, opts, allowed)
    if type(opts) ~= "table" then argfail(fname, "expected a table of options, got " .. type(opts)) end
    for k in pairs(opts) do
        if not allowed[k] then argfail(fname, "unknown option '" .. tostring(k) .. "'; known: " .. known(allowed)) end
    end
    if type(opts.path) ~= "string" or opts.path == "" then
        argfail(fname, "path is required (the PNG to write)")
    end
    for _, k in ipairs({"title", "xlabel", "ylabel"}) do
        if opts[k] ~= nil and type(opts[k]) ~= "string" and type(opts[k]) ~= "number" then
            argfail(fname, k .. " must be a string")
        end
    end
    if opts.yrange ~= nil and (type(opts.yrange) ~= "table" or type(opts.yrange[1]) ~= "number"
            or type(opts.yrange[2]) ~= "number") then
        argfail(fname, "yrange must be {min, max}")
    end
    if type(opts.series) ~= "table" or #opts.series == 0 then
        argfail(fname, "series must be a non-empty list of {name =, ...}")
    end
    for i, s in ipairs(opts.series) do
        if type(s) ~= "table" then argfail(fname, string.format("series %d must be a table", i)) end
        if s.name ~= nil and type(s.name) ~= "string" and type(s.name) ~= "number" then
            argfail(fname, string.format("series %d: name must be a string", i))
        end
        for _, k in ipairs({"style", "dash", "point"}) do
            if s[k] ~= nil and (math.type(s[k]) ~= "integer" or s[k] < 1) then
                argfail(fname, string.format("series %d: %s must be a positive integer", i, k))
            end
        end
        if s.color ~= nil and (type(s.color) ~= "string" or not s.color:match("^#%x%x%x%x%x%x$")) then
            argfail(fname, string.format("series %d: color must be a string '#rrggbb'", i))
        end
    end
end

local function series_name(s, i)
    return s.name ~= nil and tostring(s.name) or ("series " .. i)
end

local function check_numbers(fname, list, what)
    if type(list) ~= "table" then argfail(fname, what .. " must be a list of numbers") end
    for j = 1, #list do
        if type(list[j]) ~= "number" then
            argfail(fname, string.format("%s: value %d is a %s, not a number", what, j, type(list[j])))
        end
    end
end

-- ---- files -----------------------------------------------------------------

local function write_file(path, text)
    local f, err = io.open(path, "w")
    if not f then error("tide.plot: cannot write " .. tostring(err), 3) end
    f:write(text)
    f:close()
end

local function make_parent(path)
    local dir = path:match("^(.*)/[^/]*$")
    if dir and dir ~= "" then os.execute("mkdir -p " .. shell_quote(dir)) end
end

local function csv_path(path)
    return (path:gsub("%.[pP][nN][gG]$", "")) .. ".csv"
end

local function csv_field(v)
    if v == nil then return "" end
    if type(v) == "number" then
        if is_nan(v) then return "NaN" end
        if math.type(v) == "integer" then return tostring(v) end
        return string.format("%.15g", v)
    end
    v = tostring(v)
    if v:find('[,"\r\n]') or v:match("^%s") or v:match("%s$") then
        return '"' .. v:gsub('"', '""') .. '"'
    end
    return v
end

-- columns: list of {header, values}; rows run to the longest column
local function write_csv(path, columns)
    local rows, lines = 0, {}
    local head = {}
    for i, c in ipairs(columns) do
        head[i] = csv_field(c[1])
        rows = math.max(rows, #c[2])
    end
    lines[1] = table.concat(head, ",")
    for r = 1, rows do
        local cells = {}
        for i, c in ipairs(columns) do cells[i] = csv_field(c[2][r]) end
        lines[#lines + 1] = table.concat(cells, ",")
    end
    make_parent(path)
    write_file(path, table.concat(lines, "\n") .. "\n")
    notice(path)
    return path
end

-- run gnuplot on a script with its data; returns the PNG's path
local function run_gnuplot(fname, path, script_for, data)
    if Plot._render then
        -- the specs' view of what gnuplot would get, without running it
        Plot._render(fname, path, script_for("$data"), data)
        return path
    end
    make_parent(path)
    local base = os.tmpname()
    local data_path, script_path = base, base .. ".gp"
    write_file(data_path, data)
    local script = script_for(gp_quote(data_path))
    write_file(script_path, script)
    local pipe = io.popen("gnuplot " .. shell_quote(script_path) .. " 2>&1")
    local out = pipe:read("a")
    local ok = pipe:close()
    os.remove(data_path)
    os.remove(script_path)
    if not ok then
        error(string.format("tide.plot.%s: gnuplot failed writing %s: %s", fname, path, out:gsub("%s+$", "")), 3)
    end
    return path
end

local function header(opts, extra)
    local lines = {
        "set terminal pngcairo noenhanced size " .. (extra.size or "800,500") .. " font ',10'",
        "set output " .. gp_quote(opts.path),
        "set datafile missing 'NaN'",
        "set grid",
        "set key outside right top",
    }
    if opts.title then lines[#lines + 1] = "set title " .. gp_quote(opts.title) end
    if opts.xlabel then lines[#lines + 1] = "set xlabel " .. gp_quote(opts.xlabel) end
    if opts.ylabel then lines[#lines + 1] = "set ylabel " .. gp_quote(opts.ylabel) end
    if opts.yrange then
        lines[#lines + 1] = string.format("set yrange [%s:%s]", num(opts.yrange[1]), num(opts.yrange[2]))
    end
    return lines
end

-- ---- line charts -------------------------------------------------------------

local LINES_OPTS = {path = true, title = true, xlabel = true, ylabel = true, series = true, logy = true,
                    yrange = true}

-- ## lines{path, series = {{name, x, y}, ...}, title, xlabel, ylabel, logy, yrange} -> path
function Plot.lines(opts)
    check_opts("lines", opts, LINES_OPTS)
    local series = {}
    for i, s in ipairs(opts.series) do
        local name = series_name(s, i)
        check_numbers("lines", s.y, string.format("series %d ('%s') y", i, name))
        local x = s.x
        if x == nil then
            x = {}
            for j = 1, #s.y do x[j] = j end
        end
        check_numbers("lines", x, string.format("series %d ('%s') x", i, name))
        if #x ~= #s.y then
            argfail("lines", string.format("series %d ('%s') has %d x values but %d y values", i, name, #x, #s.y))
        end
        if #x == 0 then argfail("lines", string.format("series %d ('%s') has no points", i, name)) end
        series[i] = {name = name, x = x, y = s.y, style = s.style, color = s.color, dash = s.dash, point = s.point}
    end

    if not Plot.available() then
        local columns = {}
        local shared = true
        for i = 2, #series do
            local a, b = series[1].x, series[i].x
            if #a ~= #b then shared = false break end
            for j = 1, #a do if a[j] ~= b[j] then shared = false break end end
        end
        if shared then
            columns[1] = {opts.xlabel or "x", series[1].x}
            for _, s in ipairs(series) do columns[#columns + 1] = {s.name, s.y} end
        else
            for _, s in ipairs(series) do
                columns[#columns + 1] = {s.name .. " x", s.x}
                columns[#columns + 1] = {s.name, s.y}
            end
        end
        return write_csv(csv_path(opts.path), columns)
    end

    local blocks = {}
    for i, s in ipairs(series) do
        local rows = {}
        for j = 1, #s.x do rows[j] = num(s.x[j]) .. " " .. num(s.y[j]) end
        blocks[i] = table.concat(rows, "\n")
    end
    -- epochs, steps and log10 grids: integer x gets integer ticks only, and
    -- one x value gets a range around it rather than gnuplot's [x-1%:x+1%]
    local xmin, xmax, integral = math.huge, -math.huge, true
    for _, s in ipairs(series) do
        for _, v in ipairs(s.x) do
            if v == v and v ~= math.huge and v ~= -math.huge then
                xmin, xmax = math.min(xmin, v), math.max(xmax, v)
                if v ~= math.floor(v) then integral = false end
            end
        end
    end
    return run_gnuplot("lines", opts.path, function(data)
        local lines = header(opts, {})
        if opts.logy then lines[#lines + 1] = "set logscale y" end
        if integral and xmin <= xmax then
            lines[#lines + 1] = "set xtics " .. integer_step(xmax - xmin)
            lines[#lines + 1] = "set mxtics 1"
            lines[#lines + 1] = "set format x '%.0f'"
            if xmin == xmax then
                lines[#lines + 1] = string.format("set xrange [%s:%s]", num(xmin - 0.5), num(xmax + 0.5))
            else
                lines[#lines + 1] = string.format("set xrange [%s:%s]", num(xmin), num(xmax))
            end
        end
        -- a curve at the top of an autoscaled range (accuracy 1.0) would lie
        -- on the border: 5% of headroom keeps it visible
        if not opts.yrange and not opts.logy then lines[#lines + 1] = "set offsets 0, 0, graph 0.05, 0" end
        local plots = {}
        for i, s in ipairs(series) do
            local st = series_style(s, i)
            local marks = #s.x <= 40 and string.format("linespoints pt %d ps %s", st.point, point_size(i)) or "lines"
            plots[i] = string.format("%s index %d using 1:2 with %s lw %s dt %d lc rgb '%s' title %s",
                i == 1 and data or "''", i - 1, marks, line_width(i, #series), st.dash, st.color, gp_quote(s.name))
        end
        lines[#lines + 1] = "plot " .. table.concat(plots, ", \\\n     ")
        return table.concat(lines, "\n") .. "\n"
    end, table.concat(blocks, "\n\n\n") .. "\n")
end

-- ---- grouped bars ------------------------------------------------------------

local BARS_OPTS = {path = true, title = true, xlabel = true, ylabel = true, categories = true, series = true,
                   yrange = true}

-- ## bars{path, categories = {...}, series = {{name, values}, ...}, title, xlabel, ylabel, yrange} -> path
function Plot.bars(opts)
    check_opts("bars", opts, BARS_OPTS)
    local cats = opts.categories
    if type(cats) ~= "table" or #cats == 0 then argfail("bars", "categories must be a non-empty list of names") end
    local series = {}
    for i, s in ipairs(opts.series) do
        local name = series_name(s, i)
        check_numbers("bars", s.values, string.format("series %d ('%s') values", i, name))
        if #s.values ~= #cats then
            argfail("bars", string.format("series %d ('%s') has %d values for %d categories", i, name, #s.values,
                #cats))
        end
        series[i] = {name = name, values = s.values, style = s.style, color = s.color}
    end

    if not Plot.available() then
        local names = {}
        for j = 1, #cats do names[j] = tostring(cats[j]) end
        local columns = {{opts.xlabel or "category", names}}
        for _, s in ipairs(series) do columns[#columns + 1] = {s.name, s.values} end
        return write_csv(csv_path(opts.path), columns)
    end

    local rows, longest = {}, 0
    for j = 1, #cats do
        local label = tostring(cats[j]):gsub('"', "'"):gsub("[\r\n]", " ")
        longest = math.max(longest, #label)
        local cells = {'"' .. label .. '"'}
        for i, s in ipairs(series) do cells[i + 1] = num(s.values[j]) end
        rows[j] = table.concat(cells, " ")
    end
    return run_gnuplot("bars", opts.path, function(data)
        local lines = header(opts, {})
        lines[#lines + 1] = "set style data histograms"
        lines[#lines + 1] = "set style histogram clustered gap 1"
        lines[#lines + 1] = "set style fill solid 0.8 border -1"
        lines[#lines + 1] = "set boxwidth 0.9"
        lines[#lines + 1] = "set grid noxtics ytics"
        if not opts.yrange then
            lines[#lines + 1] = "set yrange [0:*]"
            lines[#lines + 1] = "set offsets 0, 0, graph 0.05, 0"
        end
        if #cats * math.max(longest, 1) > 60 then
            lines[#lines + 1] = "set xtics rotate by -30 left"
        end
        local plots = {}
        for i, s in ipairs(series) do
            plots[i] = string.format("%s using %d%s lc rgb '%s' title %s", i == 1 and data or "''", i + 1,
                i == 1 and ":xtic(1)" or "", series_style(s, i).color, gp_quote(s.name))
        end
        lines[#lines + 1] = "plot " .. table.concat(plots, ", \\\n     ")
        return table.concat(lines, "\n") .. "\n"
    end, table.concat(rows, "\n") .. "\n")
end

-- ---- reliability diagrams ------------------------------------------------------

local REL_OPTS = {path = true, title = true, series = true}

local function check_bins(i, name, bins)
    if type(bins) ~= "table" or #bins == 0 then
        argfail("reliability", string.format("series %d ('%s'): bins must be the list from tide.metrics.reliability",
            i, name))
    end
    for j, b in ipairs(bins) do
        if type(b) ~= "table" or type(b.lo) ~= "number" or type(b.hi) ~= "number" or type(b.count) ~= "number" then
            argfail("reliability", string.format("series %d ('%s'): bin %d needs numbers lo, hi and count", i, name, j))
        end
    end
end

local function filled(b)
    return b.count > 0 and type(b.confidence) == "number" and type(b.accuracy) == "number"
        and not is_nan(b.confidence) and not is_nan(b.accuracy)
end

-- ## reliability{path, series = {{name, bins}, ...}, title} -> path
function Plot.reliability(opts)
    check_opts("reliability", opts, REL_OPTS)
    local series = {}
    for i, s in ipairs(opts.series) do
        local name = series_name(s, i)
        check_bins(i, name, s.bins)
        series[i] = {name = name, bins = s.bins, style = s.style, color = s.color, dash = s.dash, point = s.point}
    end

    if not Plot.available() then
        local same = true
        for i = 2, #series do
            local a, b = series[1].bins, series[i].bins
            if #a ~= #b then same = false break end
            for j = 1, #a do
                if a[j].lo ~= b[j].lo or a[j].hi ~= b[j].hi then same = false break end
            end
        end
        local columns = {}
        local function edges(s, prefix)
            local lo, hi = {}, {}
            for j, b in ipairs(s.bins) do lo[j], hi[j] = b.lo, b.hi end
            columns[#columns + 1] = {prefix .. "lo", lo}
            columns[#columns + 1] = {prefix .. "hi", hi}
        end
        if same then edges(series[1], "") end
        for _, s in ipairs(series) do
            if not same then edges(s, s.name .. " ") end
            local conf, acc, count = {}, {}, {}
            for j, b in ipairs(s.bins) do
                if filled(b) then conf[j], acc[j] = b.confidence, b.accuracy end
                count[j] = b.count
            end
            columns[#columns + 1] = {s.name .. " confidence", conf}
            columns[#columns + 1] = {s.name .. " accuracy", acc}
            columns[#columns + 1] = {s.name .. " count", count}
        end
        return write_csv(csv_path(opts.path), columns)
    end

    local blocks = {}
    for i, s in ipairs(series) do
        local rows = {}
        for _, b in ipairs(s.bins) do
            if filled(b) then
                rows[#rows + 1] = table.concat({num(b.lo), num(b.hi), num(b.confidence), num(b.accuracy),
                    num(b.count)}, " ")
            end
        end
        -- a series with no filled bin still needs a block: one missing point
        if #rows == 0 then rows[1] = "NaN NaN NaN NaN 0" end
        blocks[i] = table.concat(rows, "\n")
    end
    return run_gnuplot("reliability", opts.path, function(data)
        local lines = header({path = opts.path, title = opts.title, xlabel = "confidence",
                              ylabel = "accuracy"}, {size = "700,600"})
        -- past 1 on both axes, so a bin at confidence or accuracy 1 is not
        -- drawn on the border
        lines[#lines + 1] = "set xrange [0:1.05]"
        lines[#lines + 1] = "set yrange [0:1.05]"
        lines[#lines + 1] = "set xtics 0.1"
        lines[#lines + 1] = "set ytics 0.1"
        lines[#lines + 1] = "set size ratio -1"
        lines[#lines + 1] = "set key inside left top"
        local plots = {"x with lines dt 2 lw 1 lc rgb 'gray40' title 'perfect calibration'"}
        if #series == 1 then
            lines[#lines + 1] = "set style fill solid 0.5 border -1"
            plots[#plots + 1] = string.format("%s index 0 using (($1+$2)/2):4:($2-$1) with boxes lc rgb '%s' "
                .. "title %s", data, series_style(series[1], 1).color,
                gp_quote(series[1].name .. " (accuracy per bin)"))
            plots[#plots + 1] = string.format("'' index 0 using (($1+$2)/2):3 with points pt 7 ps 0.8 "
                .. "lc rgb 'black' title 'mean confidence'")
        else
            for i, s in ipairs(series) do
                local st = series_style(s, i)
                plots[#plots + 1] = string.format("%s index %d using 3:4 with linespoints lw %s dt %d pt %d ps %s "
                    .. "lc rgb '%s' title %s", i == 1 and data or "''", i - 1, line_width(i, #series), st.dash,
                    st.point, point_size(i), st.color, gp_quote(s.name))
            end
        end
        lines[#lines + 1] = "plot " .. table.concat(plots, ", \\\n     ")
        return table.concat(lines, "\n") .. "\n"
    end, table.concat(blocks, "\n\n\n") .. "\n")
end

return Plot
