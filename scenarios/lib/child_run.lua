-- child_run.lua: a child poolbench run, signalled and watched from outside,
-- for the scenarios that cannot signal their own poolbench and go on
-- reporting (interrupt.lua: Ctrl-C; orphans.lua: SIGKILL of the parent).
--
-- Not a scenario: scenarios/lib/ holds what scenarios load with dofile.
-- It needs bash, kill and pgrep, and reads /proc. Every wait is bounded by
-- the caller's parameters (exit_bound_s, grace_s); `cleanup` kills what an
-- interrupted strategy left running.

local function q(s) return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'" end

local function sh(cmd)
  local f = assert(io.popen(cmd, "r"))
  local out = f:read("a") or ""
  f:close()
  return out
end

-- The state letter of a process (nil when it is gone).
local function state(pid)
  local f = io.open("/proc/" .. pid .. "/stat")
  if not f then return nil end
  local line = f:read("l") or ""
  f:close()
  return line:match(".*%) (%a)")
end

local function alive(pid)
  local s = state(pid)
  return s ~= nil and s ~= "Z"
end

-- The live processes (zombies left out) of process group g.
local function group(g)
  local n = 0
  for pid in sh("pgrep -g " .. g .. " 2>/dev/null"):gmatch("%d+") do
    if alive(pid) then n = n + 1 end
  end
  return n
end

-- The process groups of child runs in progress: `cleanup` kills what a
-- SIGINT to this poolbench (which stops the strategy mid-way) left behind.
local CHILDREN = {}

-- Runs `poolbench run SELF --impl label ...` (SELF: the calling scenario's file) in a process group of its own,
-- waits for its pool (fork server + workers), waits delay_s more, sends `sig`
-- to the group (Ctrl-C) or to its main process only, and measures. Returns
-- {exit_s, exit_code, hung, before, survivors, empty_s, pool}: pool is what
-- the group holds once the pool is up (the child, its fork server, the
-- workers), before what it held when the signal went.
local function child_run(self, p, label, sig, whole_group)
  local exe = (sh("readlink /proc/" .. pb.pid() .. "/exe"):gsub("%s+$", ""))
  local args = string.format("--impl %s --set hang_s=%g --set n=%d --set workers=%d "
                               .. "--set task_ms=%d --run-timeout %g",
                             label, p.child_hang_s, p.n, p.workers, p.task_ms, p.child_hang_s / 2)
  local script = 'set -m; "$0" run "$1" ' .. args
                   .. ' > /dev/null 2>&1 < /dev/null & echo $!; wait $!; echo "rc=$?"'
  local f = assert(io.popen("bash -c " .. q(script) .. " " .. q(exe) .. " " .. q(self)
                             .. " 2> /dev/null", "r"))
  local pid = tonumber(f:read("l"))
  if not pid then f:close(); error("could not start the child run (bash is needed)") end
  CHILDREN[pid] = true
  local t, pool = pb.now(), 2 + p.workers
  while group(pid) < pool and alive(pid) and pb.now() - t < p.exit_bound_s do
    pb.sleep(0.01)
  end
  pb.sleep(p.delay_ms / 1000) -- the map under way
  local out = {before = group(pid), pool = pool}
  local t0 = pb.now()
  os.execute(string.format("kill -%s %s%d", sig, whole_group and "-" or "", pid))
  while alive(pid) and pb.now() - t0 < p.exit_bound_s do pb.sleep(0.001) end
  out.exit_s, out.hung = pb.now() - t0, alive(pid)
  -- The group empties: at once when every process ends with the parent.
  while group(pid) > 0 and pb.now() - t0 < out.exit_s + p.grace_s do pb.sleep(0.01) end
  out.empty_s, out.survivors = pb.now() - t0, group(pid)
  if out.hung or out.survivors > 0 then os.execute("kill -KILL -" .. pid .. " 2>/dev/null") end
  out.exit_code = tonumber(((f:read("a") or ""):match("rc=(%d+)"))) or -1
  f:close()
  CHILDREN[pid] = nil
  return out
end

-- Kills the process groups of child runs still in progress (the scenario's
-- `cleanup`: a SIGINT to this poolbench stops a strategy mid-way).
local function cleanup()
  for pid in pairs(CHILDREN) do os.execute("kill -KILL -" .. pid .. " 2>/dev/null") end
end

return {child_run = child_run, cleanup = cleanup}
