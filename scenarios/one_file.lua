-- one_file.lua: many writers, one file: the parent's callback writes whole lines; workers writing directly may tear them (document 002).
--
-- Document 002's apply_async example appends every result to result.txt from
-- the callback, which runs in the parent, one callback at a time: each line
-- is written whole. A task that opened the file itself, in each worker,
-- would have several processes appending at once. A line longer than what
-- one write() carries leaves the process in several writes, and another
-- process's write can land between them: a torn line.

-- The files, one per writer (set in setup, read by the workers through the
-- fork, checked and removed in the parent).
local FILES = {}
local WRITERS = {"callback_chain", "merged", "imap"}
-- What the checks read back, per writer, for the lab's questions (the files
-- themselves are gone by then: cleanup removes them).
local SCANS = {}

-- The line of item x: its id, then line_bytes of one letter that depends on
-- x, so that a line made of pieces of two lines is always told apart.
local function line_of(x, bytes)
  local c = string.char(string.byte("a") + x % 26)
  return "id " .. x .. " " .. string.rep(c, bytes)
end

-- Appends one line, opening and closing the file as document 002's callback
-- does (`with open("result.txt", "a+") as f: f.write(...)`). Lua's io uses
-- stdio's default buffering (a 4 KiB buffer here): f:write(line, "\n") hands
-- each argument to fwrite, which writes the line's whole 4 KiB blocks
-- straight (one write() of 64 KiB) and keeps the tail and the newline in
-- its buffer until close (a second write()). Each write() is appended
-- atomically (O_APPEND); the two are not appended together.
local function append(path, line)
  local f = assert(io.open(path, "a"))
  f:write(line, "\n")
  f:close()
end

-- Reads a file back: intact lines (exactly the line of the id they start
-- with), torn lines (anything else), how often each id appeared intact, and
-- the size.
local function scan(path, n, bytes)
  local s = {lines = 0, intact = 0, torn = 0, seen = {}, size = 0, missing = 0, twice = 0}
  local f = io.open(path, "rb")
  if f == nil then
    s.missing = n
    return s
  end
  for line in f:lines() do
    s.lines = s.lines + 1
    s.size = s.size + #line + 1
    local id = tonumber(line:match("^id (%d+) "))
    if id and id >= 1 and id <= n and line == line_of(id, bytes) then
      s.intact = s.intact + 1
      s.seen[id] = (s.seen[id] or 0) + 1
    else
      s.torn = s.torn + 1
    end
  end
  f:close()
  for id = 1, n do
    local k = s.seen[id] or 0
    if k == 0 then s.missing = s.missing + 1 elseif k > 1 then s.twice = s.twice + 1 end
  end
  return s
end

return {
  name = "one_file",
  source = "002_2fab88b10910dd43.txt",
  summary = "one file, many writers: the parent's callback writes whole lines; workers may tear them",
  doc = [[Phenomenon P11 (document 002, section 1.2.2: its callback appends each
result to result.txt). n items; each makes a line of line_bytes (default 64 KiB,
far above PIPE_BUF = 4096, the most one write() is promised to deliver
unbroken to a pipe) and appends it to a file opened in append mode, with
Lua's default stdio buffering, so each line leaves in several write() calls.
callback_chain makes the line in the worker (stage 1) and appends it in its
callback (stage 2, in the parent, one callback at a time): every line is
written by one process, whole, so there are no torn lines. merged and imap
append from the workers themselves, `workers` processes at once: each write()
is appended atomically (O_APPEND), but another worker's write may land
between two writes of one line, which tears both. Each file is read back in
the checks: a line is intact when it is exactly the line of the id it starts
with. The torn count of the direct writers is reported, not asserted: it
depends on how the workers' writes happen to interleave on this machine (it
may be 0 on a given run, more often with more workers and cores). The model
is the count: 0 torn lines for the callback writer; every byte written still
reaches the file (its size is n lines' worth) for everyone. No figure in the
document or in PHENOMENA.md. The files are temporary names from pb.tmpname(),
in the run's own directory, which poolbench removes however the run ends
(done, an error, SIGINT, SIGTERM, the run time limit).]],
  params = {
    n          = {default = 400,   quick = 100,   min = 1, max = 100000, doc = "items (lines)"},
    workers    = {default = 4,     quick = 4,     min = 1, max = 64, doc = "pool processes"},
    line_bytes = {default = 65536, quick = 65536, min = 1, max = 16777216,
                  doc = "bytes per line (64 KiB: 16 times PIPE_BUF)"},
    writer     = {default = 1,     quick = 1,     min = 1, max = 3,
                  doc = "which file the run appends to (set by each variant: 1 callback_chain, "
                          .. "2 merged, 3 imap)"},
  },
  tasks = {
    -- callback_chain: the line is made in the worker, written in the parent.
    make_line = function(x) return {x, line_of(x, P.line_bytes)} end,
    append_line = function(v)
      append(FILES[P.writer], v[2])
      return v[1]
    end,
    -- merged, imap: made and written in the worker.
    write_direct = function(x)
      append(FILES[P.writer], line_of(x, P.line_bytes))
      return x
    end,
  },
  setup = function(p)
    -- pb.tmpname, not os.tmpname: the run's directory goes however the run ends.
    for i = 1, #WRITERS do FILES[i] = pb.tmpname() end
  end,
  workload = function(p)
    -- Called before each strategy runs: its file starts empty.
    if FILES[p.writer] then assert(io.open(FILES[p.writer], "w")):close() end
    if p.writer == 1 then
      return {items = p.n, stages = {"make_line", "append_line"}}
    end
    return {items = p.n, stages = {"write_direct"}}
  end,
  impls = {
    {impl = "callback_chain", label = "callback_chain", set = {writer = 1}},
    {impl = "merged", label = "merged", set = {writer = 2}},
    {impl = "imap", label = "imap", set = {writer = 3}},
  },
  -- The classroom lab: `poolbench lab one_file` (docs/labs/09-one_file.md).
  lab = {
    -- The exercise "write the fix" (`poolbench lab one_file --exercise`).
    exercise = {
      reference = "merged",
      margin = 0.5,
      task = [[No fix to the tearing itself: where the lines are written decides it.
Write merged's strategy: each item's whole pipeline as one task in a
worker (pool:pipeline(item)), submitted for every item, then each handle
collected with pool:final(i, value). Your run uses merged's parameters.]],
      skeleton = [[
return function(pool, items, p)
  -- TODO: for each item, local task, args = pool:pipeline(item), then
  -- pool:apply_async(task, args); collect the handles in order.
end
]],
    },
    title = "one file, many writers: whole lines from the parent, torn lines from the workers",
    order = 9,
    vary = {n = {50, 200, 50}, workers = {2, 4}, line_bytes = {16384, 65536, 16384}},
    questions = {
      {ask = "%n lines of %line_bytes bytes; the parent's callback appends each one to the "
             .. "file (callback_chain), one callback at a time. How many lines are torn?",
       answer = function(p) return 0 end,
       measure = function(r) return SCANS.callback_chain and SCANS.callback_chain.torn end},
      {ask = "merged: each of the %workers workers appends its own lines, several writes per "
             .. "line. A line is \"id N \", %line_bytes letters and a newline. How many bytes "
             .. "does the file hold at the end?",
       answer = function(p)
         local total = 0
         for id = 1, p.n do total = total + #("id " .. id .. " ") + p.line_bytes + 1 end
         return total
       end,
       unit = "bytes", measure = function(r) return SCANS.merged and SCANS.merged.size end},
      {ask = "At most how many of merged's %n lines can be torn?",
       answer = function(p) return p.n end,
       measure = function(r) return SCANS.merged and SCANS.merged.torn end},
    },
    explain = [[O_APPEND makes each write() land whole at the end of the file,
but a line of %line_bytes bytes leaves a process in several writes (stdio
writes its whole blocks at once and keeps the tail until close), and
another worker's write can land between two of them: both lines are torn.
Nothing is lost, every byte arrives, so the size is exactly the n lines'.
How many lines tear depends on how the %workers workers' writes interleave
on this machine: anywhere from none to all of them, which is why the
scenario reports the count and does not check it. The callback runs in the
parent, one at a time (P2), so exactly one process writes, and no line is
ever torn: document 002's advice, for a reason it does not give.]],
  },
  checks = function(r, p, check)
    local cb = r.callback_chain
    local reps = cb.repeats or 1 -- each repeat appends its n lines again
    local line_size = #line_of(p.n, p.line_bytes) -- ids differ in width: sum exactly below
    local total = 0
    for id = 1, p.n do total = total + #line_of(id, p.line_bytes) + 1 end
    total = total * reps

    local s = scan(FILES[1], p.n, p.line_bytes)
    SCANS.callback_chain = s
    check("callback_chain: the parent wrote every line, none torn",
          cb.errors == 0 and s.torn == 0 and s.intact == p.n * reps,
          string.format("%d lines, %d intact, %d torn; callbacks in pid %d (parent %d)",
                        s.lines, s.intact, s.torn, cb.callback_pid, cb.parent_pid))
    check("callback_chain: every id present exactly once",
          s.missing == 0 and (reps > 1 or s.twice == 0),
          string.format("%d ids missing, %d twice", s.missing, s.twice))
    check("callback_chain: callbacks ran in the parent, one at a time",
          cb.callbacks == p.n and cb.callback_pid == cb.parent_pid
            and cb.callbacks_max_overlap == 1,
          string.format("%d callbacks, at most %d at once", cb.callbacks,
                        cb.callbacks_max_overlap))

    for i = 2, #WRITERS do
      local label = WRITERS[i]
      local x = r[label]
      local d = scan(FILES[i], p.n, p.line_bytes)
      SCANS[label] = d
      check(label .. ": every byte reached the file (appends are not lost, only interleaved)",
            x.errors == 0 and d.size == total,
            string.format("%d bytes, expected %d; %d lines read (%d written)", d.size, total,
                          d.lines, p.n * reps))
      -- The torn count is reported, not asserted: tearing needs two
      -- writers' writes to interleave, which a given run may not produce.
      -- What must hold: no line appears whole twice, so every id is either
      -- intact once or inside a torn line.
      check(label .. ": no line duplicated; torn lines reported",
            (reps > 1 or d.twice == 0) and d.intact <= p.n * reps,
            string.format("%d torn lines, %d ids not intact, of %d lines of %d bytes; "
                          .. "%d workers, %d cores", d.torn, d.missing, p.n * reps, line_size,
                          p.workers, x.cores))
    end
  end,
  -- Removed as soon as the run is over (up to 131 MB); pb.tmpname's
  -- directory would go at exit anyway, on any path.
  cleanup = function()
    for _, path in ipairs(FILES) do os.remove(path) end
  end,
}
