/*
 * test_manager.c: pb.manager (bench/harness/manager.c, manager_lua.c) and
 * pb.shared (bench/harness/shared_mem.c), driven from Lua as scenarios use
 * them, with forked children standing in for pool workers.
 *
 * What is pinned down: the proxies' round trips (set, get, delete, copy,
 * append, queue order, counter), reads are copies (document 002's append
 * trap reproduces and its fix works), the manager's counter is exact across
 * processes, a killed manager is an error at once and a stopped one an
 * error after the timeout (never a hang), and stopping leaves no process,
 * no socket name and no descriptor. For shared memory: a lost update made
 * certain by a barrier between the read and the write (both processes read
 * before either writes), and exact counts under the lock.
 *
 * Each case has a fresh Lua state with `pb.manager` and `pb.shared`; the
 * teardown stops the manager and unmaps the segment even after a failed
 * assertion. Children leave with _exit: 0 when their Lua ran without error.
 */
#include "test_helpers.h"

#include <dirent.h>
#include <lauxlib.h>
#include <lualib.h>

#include "manager.h"
#include "shared_mem.h"

static lua_State *L;

static int setup(void **state)
{
    (void)state;
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_newtable(L);
    scn_manager_open(L);
    scn_shared_open(L);
    lua_setglobal(L, "pb");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mgr_stop();
    scn_shared_cleanup();
    lua_close(L);
    return 0;
}

/* Runs code; returns its first result as an integer (0 when none), or
 * fails the case with the error. */
static long long lua_run(const char *code)
{
    lua_settop(L, 0);
    if (luaL_dostring(L, code) != LUA_OK)
        fail_msg("Lua error: %s\n  in: %s", lua_tostring(L, -1), code);
    return lua_gettop(L) > 0 ? (long long)lua_tointeger(L, 1) : 0;
}

/* Runs code expecting an error; returns its message (valid until the next
 * call). */
static const char *lua_fails(const char *code)
{
    lua_settop(L, 0);
    if (luaL_dostring(L, code) == LUA_OK)
        fail_msg("no error from: %s", code);
    return lua_tostring(L, -1);
}

/* Forks n children that each run code (the loop index in global K); waits
 * for all, bounded. Returns how many exited 0. */
static int run_children(int n, const char *code)
{
    pid_t pids[16];
    for (int i = 0; i < n; i++) {
        fflush(NULL);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            lua_pushinteger(L, i + 1);
            lua_setglobal(L, "K");
            int ok = luaL_dostring(L, code) == LUA_OK;
            if (!ok)
                fprintf(stderr, "child %d: %s\n", i + 1, lua_tostring(L, -1));
            _exit(ok ? 0 : 1);
        }
    }
    int good = 0;
    double deadline = pool_now() + WAIT_S;
    for (int i = 0; i < n; i++) {
        int st;
        pid_t r;
        while ((r = waitpid(pids[i], &st, WNOHANG)) == 0 && pool_now() < deadline)
            sleep_s(0.005);
        if (r == 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], &st, 0);
            fail_msg("child %d did not finish within %.0f s", i + 1, WAIT_S);
        }
        good += WIFEXITED(st) && WEXITSTATUS(st) == 0;
    }
    return good;
}

/* Whether /proc/net/unix lists a socket whose name holds `part`. */
static bool unix_socket_listed(const char *part)
{
    FILE *f = fopen("/proc/net/unix", "r");
    char line[512];
    bool found = false;
    assert_non_null(f);
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, part) != NULL;
    fclose(f);
    return found;
}

/* ---- the manager's proxies ---------------------------------------------------------- */

static void dict_set_get_delete_copy(void **state)
{
    (void)state;
    lua_run("d = pb.manager.dict('d'); d.a = 1; d[2] = 'two'; d[3.0] = {x = {1, 2}}");
    assert_int_equal(lua_run("return d.a"), 1);
    assert_int_equal(lua_run("return d[2] == 'two' and 1 or 0"), 1);
    assert_int_equal(lua_run("return d[3].x[2]"), 2); /* 3.0 was sent as the key 3 */
    assert_int_equal(lua_run("return d.missing == nil and 1 or 0"), 1);
    assert_int_equal(lua_run("return #d"), 3);
    lua_run("d.a = nil");
    assert_int_equal(lua_run("local n = 0 for _ in pairs(pb.manager.copy(d)) do n = n + 1 end "
                             "return n"), 2);
    lua_run("pb.manager.clear(d)");
    assert_int_equal(lua_run("return #d"), 0);
    assert_true(mgr_pid() > 0);
}

/* Document 002: d['k'] = []; d['k'].append(x) does not change d. */
static void append_to_copy_is_lost_reassign_works(void **state)
{
    (void)state;
    lua_run("d = pb.manager.dict('lists'); d.k = {}; d.k[#d.k + 1] = 42");
    assert_int_equal(lua_run("return #d.k"), 0);
    lua_run("local l = d.k; l[#l + 1] = 42; d.k = l");
    assert_int_equal(lua_run("return #d.k * 1000 + d.k[1]"), 1042);
    /* the copy a read returned is the reader's own */
    assert_int_equal(lua_run("local a, b = d.k, d.k; a[1] = 7; return b[1]"), 42);
}

static void list_and_queue_keep_order(void **state)
{
    (void)state;
    lua_run("l = pb.manager.list('l'); for i = 1, 5 do l:append(i * 10) end; l:set(2, 'x')");
    assert_int_equal(lua_run("return l:len()"), 5);
    assert_int_equal(lua_run("return l:get(5)"), 50);
    assert_int_equal(lua_run("return l:copy()[2] == 'x' and 1 or 0"), 1);
    assert_contains(lua_fails("return l:get(6)"), "list index out of range");
    lua_run("q = pb.manager.queue('q'); for i = 1, 10 do q:put(i) end");
    assert_int_equal(lua_run("local s = 0 for i = 1, 10 do s = s * 2 + (q:get() == i and 1 "
                             "or 0) end return s"), 1023);
    double t0 = pool_now();
    assert_contains(lua_fails("return q:get(0.2)"), "queue \"q\" empty");
    double waited = pool_now() - t0;
    if (!(waited >= 0.19 && waited < slack(5.0)))
        fail_msg("q:get(0.2) raised after %.3f s", waited);
}

static void counter_exact_across_processes(void **state)
{
    (void)state;
    lua_run("pb.manager.start(); c = pb.manager.counter('c'); c:set(0)");
    assert_int_equal(run_children(4, "local c = pb.manager.counter('c') "
                                      "for _ = 1, 500 do c:add(1) end"), 4);
    assert_int_equal(lua_run("return c:get()"), 2000);
    assert_int_equal(lua_run("return c:add(-2000)"), 0);
}

/* A child that finds no manager (none was started before it forked) gets
 * an error, and does not fork one of its own. */
static void worker_without_manager_errors(void **state)
{
    (void)state;
    assert_false(mgr_running());
    assert_int_equal(run_children(1, "local ok, e = pcall(function() "
                                      "return pb.manager.dict('d').x end) "
                                      "assert(not ok and e:find('no manager'), e)"), 1);
    assert_false(mgr_running());
}

/* ---- failures are errors, never hangs --------------------------------------------- */

static void killed_manager_is_an_error_at_once(void **state)
{
    (void)state;
    lua_run("d = pb.manager.dict('d'); d.x = 1");
    pid_t pid = mgr_pid();
    assert_int_equal(kill(pid, SIGKILL), 0);
    waitpid(pid, NULL, 0);
    double t0 = pool_now();
    assert_contains(lua_fails("return d.x"), "is gone");
    assert_contains(lua_fails("return d.x"), "is gone"); /* reconnecting fails too */
    assert_true(pool_now() - t0 < slack(1.0));
}

static void stopped_manager_is_an_error_after_the_timeout(void **state)
{
    (void)state;
    lua_run("d = pb.manager.dict('d'); d.x = 1; pb.manager.timeout(0.3)");
    assert_int_equal(kill(mgr_pid(), SIGSTOP), 0);
    double t0 = pool_now();
    assert_contains(lua_fails("return d.x"), "no reply from the manager");
    double waited = pool_now() - t0;
    kill(mgr_pid(), SIGCONT);
    assert_true(waited >= 0.29 && waited < slack(3.0));
    assert_int_equal(lua_run("return d.x"), 1); /* a new connection, in step again */
}

static void stop_leaves_nothing_behind(void **state)
{
    (void)state;
    int fds = count_fds();
    lua_run("pb.manager.dict('d').x = 1");
    pid_t pid = mgr_pid();
    char name[64];
    snprintf(name, sizeof name, "poolbench-manager-%ld-", (long)getpid());
    assert_true(unix_socket_listed(name));
    mgr_stop();
    assert_false(mgr_running());
    assert_int_equal(kill(pid, 0), -1); /* reaped: no such process */
    assert_int_equal(errno, ESRCH);
    assert_false(unix_socket_listed(name)); /* abstract name: no file ever */
    assert_int_equal(count_fds(), fds);
    mgr_stop(); /* twice is harmless */
}

/* ---- shared memory ---------------------------------------------------------------- */

/* Both children read, meet at a barrier, then write: in round 1 both read 0
 * before either writes, so at least one increment is certainly lost. */
static void shared_value_loses_updates_unlocked(void **state)
{
    (void)state;
    lua_run("v = pb.shared.value('v', 0); b = pb.shared.value('barrier', 0)");
    assert_int_equal(run_children(2, "local v, b = pb.shared.value('v'), "
                                      "pb.shared.value('barrier') "
                                      "for r = 1, 20 do local x = v:get(); b:locked_add(1) "
                                      "local t = os.clock() + 10 "
                                      "while b:get() < 2 * r do assert(os.clock() < t) end "
                                      "v:set(x + 1) end"), 2);
    long long got = lua_run("return v:get()");
    assert_true(got >= 1 && got < 40); /* 40 would mean no update was lost */
}

static void shared_value_exact_under_the_lock(void **state)
{
    (void)state;
    lua_run("v = pb.shared.value('v', 0); a = pb.shared.array('a', 3)");
    assert_int_equal(run_children(3, "local v, a = pb.shared.value('v'), pb.shared.array('a') "
                                      "for _ = 1, 300 do v:with_lock(function() "
                                      "local x = v:get() v:set(x + 1) end) "
                                      "a:locked_add(K, 2) a:locked_add(1, 1) end"), 3);
    assert_int_equal(lua_run("return v:get()"), 900);
    assert_int_equal(lua_run("return a:get(1)"), 900 + 600);
    assert_int_equal(lua_run("return a:get(3)"), 600);
    assert_int_equal(lua_run("return #a"), 3);
    /* an error inside with_lock releases the lock */
    assert_contains(lua_fails("v:with_lock(function() error('boom') end)"), "boom");
    assert_int_equal(lua_run("return v:locked_add(1)"), 901);
}

static void shared_objects_made_in_the_parent_only(void **state)
{
    (void)state;
    lua_run("pb.shared.value('v', 5)");
    assert_true(scn_shared_bytes() > 0);
    assert_int_equal(run_children(1, "assert(pb.shared.value('v'):get() == 5) "
                                      "local ok, e = pcall(pb.shared.value, 'new') "
                                      "assert(not ok and e:find('create it in the parent'), e)"),
                     1);
    assert_contains(lua_fails("pb.shared.array('v', 3)"), "is a value, not an array");
    scn_shared_cleanup();
    assert_int_equal(scn_shared_bytes(), 0);
}

#define MCASE(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        MCASE(dict_set_get_delete_copy),
        MCASE(append_to_copy_is_lost_reassign_works),
        MCASE(list_and_queue_keep_order),
        MCASE(counter_exact_across_processes),
        MCASE(worker_without_manager_errors),
        MCASE(killed_manager_is_an_error_at_once),
        MCASE(stopped_manager_is_an_error_after_the_timeout),
        MCASE(stop_leaves_nothing_behind),
        MCASE(shared_value_loses_updates_unlocked),
        MCASE(shared_value_exact_under_the_lock),
        MCASE(shared_objects_made_in_the_parent_only),
    };
    return test_main(argc, argv, "test_manager", tests, sizeof tests / sizeof tests[0]);
}
