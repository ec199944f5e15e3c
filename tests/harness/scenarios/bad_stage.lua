-- bad_stage.lua: a stage names a task that does not exist (line 6).
return {
  name = "bad_stage",
  summary = "unknown task in stages",
  tasks = {A = function(x) return x end},
  workload = function(p) return {items = 2, stages = {"A", "no_such_task"}} end,
  impls = {"merged"},
}
