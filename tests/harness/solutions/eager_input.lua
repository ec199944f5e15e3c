-- A reference solution of `poolbench lab eager_input --exercise`: imap with
-- a buffersize, so that at most that many chunks are out and the workers
-- wait for the slow consumer instead of filling the parent with results.
return function(pool, items, p)
  for i, v in pool:imap(pool.stages[1], items, {buffersize = p.buffersize}) do
    pool:final(i, v)
  end
end
