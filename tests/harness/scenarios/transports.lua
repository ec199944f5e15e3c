-- transports.lua: one strategy on both transports (issue 14), for tests/harness/test_cli.sh.
-- A variant's transport = wins over --transport and POOLBENCH_TRANSPORT; the
-- report names the transport each variant ran on.
return {
  name = "transports",
  source = "none (written for the tests)",
  summary = "squares through map_async on the socket and on shared memory",
  doc = [[Squares 1..n with map_async (chunksize 1), once per transport: the variant
on_socket names the socket, on_shm the shared-memory rings, and plain names
none (it runs on --transport, else POOLBENCH_TRANSPORT, else the socket).]],
  params = {
    n       = {default = 50, quick = 20, min = 1, max = 100000, doc = "items"},
    workers = {default = 2, quick = 2, min = 1, max = 64, doc = "pool processes"},
    chunksize = {default = 1, min = 0, doc = "map chunk size"},
  },
  workload = function(p) return {items = p.n, stages = {"square"}} end,
  impls = {
    {impl = "map_async", label = "on_socket", transport = "socket"},
    {impl = "map_async", label = "on_shm", transport = "shm"},
    {impl = "map_async", label = "plain"},
  },
  checks = function(r, p, check)
    for _, label in ipairs({"on_socket", "on_shm", "plain"}) do
      check(label .. " ran every task", r[label].results == p.n and r[label].errors == 0,
            string.format("%d results, %d errors on %s", r[label].results, r[label].errors,
                          tostring(r[label].transport)))
    end
    check("the variants ran on the transports they name",
          r.on_socket.transport == "socket" and r.on_shm.transport == "shm",
          r.on_socket.transport .. ", " .. r.on_shm.transport)
  end,
}
