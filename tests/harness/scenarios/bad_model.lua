-- bad_model.lua: a model for a label that is not in impls (line 8).
return {
  name = "bad_model",
  summary = "model for an unknown label",
  workload = function(p) return {items = 2, stages = {"identity"}} end,
  impls = {"merged"},
  model = {
    imap = function(p) return 1 end,
  },
}
