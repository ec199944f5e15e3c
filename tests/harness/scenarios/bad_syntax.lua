-- bad_syntax.lua: a syntax error: the comma after name is missing, so Lua stops at line 4.
return {
  name = "bad_syntax"
  summary = "does not parse",
  impls = {"merged"},
}
