-- A reference solution of `poolbench lab straggler --exercise`: chunks of
-- one task, so that the straggler drags no companions along.
return function(pool, items, p)
  local values = pool:map(pool.stages[1], items, 1)
  for i = 1, #items do pool:final(i, values[i]) end -- sleep returns nil: no ipairs
end
