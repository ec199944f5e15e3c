-- A reference solution of `poolbench lab early_stop --exercise`: results as
-- they complete, a break at the answer (the pool is then terminated).
return {
  imap_first = function(pool, items, p)
    for i, v, err in pool:imap_unordered(pool.stages[1], items, 1) do
      if pool:final(i, v, err) then break end
    end
  end,
}
