/*
 * scenario_load.c: a scenario file, loaded into a Lua state of its own, its
 * shape checked, and freed.
 *
 * scn_load() reads the file once (its text serves the line lookups of
 * scenario_lua.c), runs it in a fresh Lua state with the standard libraries
 * and the `pb` table below, hands the table it returns to the schema walk
 * (scenario_schema.c), and evaluates workload(p) once with the defaults
 * (scenario_calls.c), so that a stage naming an unknown task is reported at
 * load, as the schema error it is. Every mistake comes back as
 * "file:line: message".
 *
 * This is the top of the scenario module: it calls the files below it
 * (schema, calls, params, lua) and none of them calls it.
 */
#include "scenario.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "manager.h"
#include "pool.h"
#include "shared_mem.h"
#include "lua_lock.h"

/* ---- the pb table: what scenario code can call ------------------------------ */

static double arg_seconds(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 1e6, 1, "seconds from 0 to 1e6 expected");
    return s;
}

/* The process scn_load first ran in: poolbench's parent side. Workers are
 * forks, with another pid. */
static pid_t scn_parent_pid;

/* In the parent, during a Lua strategy, the sleep releases the interpreter
 * lock, as CPython's time.sleep releases the GIL (scn_gil_release says when). */
static int pb_sleep(lua_State *L)
{
    double s = arg_seconds(L);
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    bool released = getpid() == scn_parent_pid && scn_gil_release(L);
    bool stopped = false;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        if (strat_interrupted() && getpid() == scn_parent_pid) {
            stopped = true;
            break;
        }
    scn_gil_reacquire(released);
    if (stopped)
        return luaL_error(L, "interrupted");
    return 0;
}

/* The engine's spin task, callable from Lua: CPU time, not wall time. */
static int pb_spin(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)pool_spin(arg_seconds(L)));
    return 1;
}

/* pb.fds(): how many descriptors this process has open (what a worker
 * inherited: scenarios/start_method.lua). */
static int pb_fds(lua_State *L)
{
    DIR *d = opendir("/proc/self/fd");
    lua_Integer n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    lua_pushinteger(L, d ? n - 1 : -1); /* not the directory's own */
    return 1;
}

/* pb.cpu(): CPU seconds this process has used (user + system), all its
 * threads: a worker's start-up cost that a busy machine does not inflate. */
static int pb_cpu(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    lua_pushnumber(L, (double)ts.tv_sec + (double)ts.tv_nsec / 1e9);
    return 1;
}

static int pb_pid(lua_State *L)
{
    lua_pushinteger(L, getpid());
    return 1;
}

/* Ends this process at once, as a crash would: _exit, so that a worker does
 * not flush its copy of the parent's stdio buffers or run atexit handlers.
 * For scenarios about workers that die mid-task (P16). */
static int pb_exit(lua_State *L)
{
    _exit((int)luaL_optinteger(L, 1, 1));
}

static int pb_now(lua_State *L)
{
    lua_pushnumber(L, pool_now());
    return 1;
}

static int pb_cores(lua_State *L)
{
    lua_pushinteger(L, sysconf(_SC_NPROCESSORS_ONLN));
    return 1;
}

/* ---- temporary files: one directory per run, removed however it ends -------- */

static char scn_tmp_dir[4096];
static pid_t scn_tmp_owner;
static unsigned long scn_tmp_count;

static int tmp_remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void scn_tmp_cleanup(void)
{
    mgr_stop(); /* pb.manager and pb.shared too: the run's end, however it ends */
    scn_shared_cleanup();
    /* Only the process that made it: a worker (a fork) that exits must not
     * take the parent's directory with it. */
    if (scn_tmp_dir[0] == '\0' || getpid() != scn_tmp_owner)
        return;
    nftw(scn_tmp_dir, tmp_remove_one, 16, FTW_DEPTH | FTW_PHYS);
    scn_tmp_dir[0] = '\0';
}

const char *scn_tmp_path(void)
{
    return scn_tmp_dir[0] ? scn_tmp_dir : NULL;
}

/* The run's directory, made on first use, in the parent. */
static const char *tmp_dir(lua_State *L)
{
    if (scn_tmp_dir[0])
        return scn_tmp_dir;
    if (getpid() != scn_parent_pid)
        luaL_error(L, "pb.tmpdir/pb.tmpname: the run's directory is made in the parent; "
                   "call pb.tmpdir() in setup first");
    const char *base = getenv("TMPDIR");
    char tmpl[sizeof scn_tmp_dir];
    snprintf(tmpl, sizeof tmpl, "%s/poolbench.XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(tmpl) == NULL)
        luaL_error(L, "pb.tmpdir: cannot make %s: %s", tmpl, strerror(errno));
    static bool registered;
    if (!registered && atexit(scn_tmp_cleanup) == 0)
        registered = true;
    scn_tmp_owner = getpid();
    snprintf(scn_tmp_dir, sizeof scn_tmp_dir, "%s", tmpl);
    return scn_tmp_dir;
}

/* pb.tmpdir(): the run's own directory; poolbench removes it and all in it
 * when the run ends, whichever way (checks, error, SIGINT, SIGTERM, the run
 * time limit). */
static int pb_tmpdir(lua_State *L)
{
    lua_pushstring(L, tmp_dir(L));
    return 1;
}

/* pb.tmpname(): a new empty file in that directory (as os.tmpname makes
 * one), its path returned. */
static int pb_tmpname(lua_State *L)
{
    const char *dir = tmp_dir(L);
    char path[sizeof scn_tmp_dir + 64];
    for (int tries = 0; tries < 100; tries++) {
        snprintf(path, sizeof path, "%s/tmp%ld-%lu", dir, (long)getpid(), ++scn_tmp_count);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            lua_pushstring(L, path);
            return 1;
        }
        if (errno != EEXIST)
            return luaL_error(L, "pb.tmpname: %s: %s", path, strerror(errno));
    }
    return luaL_error(L, "pb.tmpname: no free name in %s", dir);
}

/* os.exit in the parent would end poolbench with no report and no cleanup
 * (status 0 at that); in a worker it is the scenario's business. */
static int os_exit_guard(lua_State *L)
{
    if (getpid() == scn_parent_pid)
        return luaL_error(L, "os.exit is not allowed in a scenario's parent-side code; "
                          "raise an error (pb.exit ends a worker)");
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, lua_gettop(L) - 1, LUA_MULTRET);
    return lua_gettop(L);
}

static void open_pb(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"sleep", pb_sleep}, {"spin", pb_spin},     {"pid", pb_pid},
        {"now", pb_now},     {"cores", pb_cores},   {"exit", pb_exit},
        {"tmpdir", pb_tmpdir}, {"tmpname", pb_tmpname}, {"fds", pb_fds},
        {"cpu", pb_cpu},
        {NULL, NULL},
    };
    luaL_newlib(L, fns);
    scn_manager_open(L); /* pb.manager (manager.h) */
    scn_lock_open(L);    /* pb.lock (lua_lock.h) */
    scn_shared_open(L);  /* pb.shared (shared_mem.h) */
    lua_setglobal(L, "pb");
    if (lua_getglobal(L, "os") == LUA_TTABLE) {
        lua_getfield(L, -1, "exit"); /* the library's own table: no metamethods yet */
        lua_pushcclosure(L, os_exit_guard, 1);
        lua_setfield(L, -2, "exit");
    }
    lua_pop(L, 1);
}

/* ---- load and free ---------------------------------------------------------- */

static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;
    if (f == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return NULL;
    }
    do {
        if (len + 4096 + 1 > cap) {
            cap = cap ? 2 * cap : 8192;
            char *b = realloc(buf, cap);
            if (b == NULL) {
                free(buf);
                fclose(f);
                snprintf(err, errlen, "%s: out of memory", path);
                return NULL;
            }
            buf = b;
        }
        n = fread(buf + len, 1, 4096, f);
        len += n;
    } while (n > 0);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/*
 * Runs the file's text as a chunk and walks the table it returns into s
 * (scn_schema, inside lua_pcall so that whatever it raises is caught).
 * Caller holds the lock. 0, or -1 with "file:line: message".
 */
static int load_table(scn_scenario *s, char *err, size_t errlen)
{
    lua_State *L = s->L;
    char chunk[4096 + 2];
    snprintf(chunk, sizeof chunk, "@%s", s->path);
    int rc = luaL_loadbufferx(L, s->text, strlen(s->text), chunk, "t");
    if (rc != LUA_OK) {
        scn_fix_prefix(s, lua_tostring(L, -1), err, errlen);
        lua_pop(L, 1);
        return -1;
    }
    if ((rc = scn_pcall(s, 0, 1, err, errlen)) != 0) {
        if (rc > 0)
            snprintf(err, errlen, "%s:%d: the file raised an error that is not a message",
                     s->path, scn_line_of_return(s));
        lua_settop(L, 0);
        return -1;
    }
    if (lua_type(L, -1) != LUA_TTABLE) {
        snprintf(err, errlen, "%s:%d: the scenario must return a table (it returned %s)",
                 s->path, scn_line_of_return(s), luaL_typename(L, -1));
        lua_settop(L, 0);
        return -1;
    }
    lua_pushvalue(L, -1);
    s->table_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcfunction(L, scn_schema);
    lua_pushlightuserdata(L, s);
    lua_pushvalue(L, -3);
    if ((rc = scn_pcall(s, 2, 0, err, errlen)) > 0)
        snprintf(err, errlen, "%s:%d: the scenario table raised an error that is not a message",
                 s->path, scn_line_of_return(s));
    lua_settop(L, 0);
    return rc == 0 ? 0 : -1;
}

/* workload(p) once, with the defaults: a stage naming an unknown task is a
 * schema error and belongs to loading, not to a run. */
static int check_workload(scn_scenario *s, char *err, size_t errlen)
{
    scn_params p;
    scn_workload w;
    if (scn_params_resolve(s, false, NULL, 0, &p, err, errlen) != 0 ||
        scn_workload_eval(s, &p, &w, err, errlen) != 0)
        return -1;
    scn_workload_free(s, &w);
    return 0;
}

void scn_set_worker_process(void)
{
    scn_parent_pid = -1; /* no process is the parent here: pb behaves as in a worker */
}

scn_scenario *scn_load(const char *path, char *err, size_t errlen)
{
    scn_scenario *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    s->path = scn_strdup(path);
    s->table_ref = s->tasks_ref = s->strategies_ref = LUA_NOREF;
    if ((s->text = read_file(path, err, errlen)) == NULL)
        goto fail;
    if ((s->L = luaL_newstate()) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
    if (scn_parent_pid == 0)
        scn_parent_pid = getpid();
    scn_lock_atfork();
    scn_lock();
    luaL_openlibs(s->L);
    open_pb(s->L);
    int rc = load_table(s, err, errlen);
    scn_unlock();
    if (rc != 0 || check_workload(s, err, errlen) != 0)
        goto fail;
    return s;
fail:
    scn_free(s);
    return NULL;
}

int scn_is_scenario_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return n > 4 && strcmp(d->d_name + n - 4, ".lua") == 0 && d->d_name[0] != '.';
}

void scn_free(scn_scenario *s)
{
    if (s == NULL)
        return;
    if (s->L)
        lua_close(s->L);
    for (int i = 0; i < s->nparams; i++) {
        free(s->params[i].name);
        free(s->params[i].doc);
    }
    for (int i = 0; i < s->nvariants; i++)
        free(s->variants[i].label);
    for (int i = 0; i < s->nlua_strats; i++)
        free((char *)s->lua_strats[i].name);
    free(s->lua_strats);
    for (int i = 0; i < s->ntasks; i++)
        free(s->tasks[i]);
    free(s->tasks);
    free(s->name);
    free(s->source);
    free(s->summary);
    free(s->doc);
    free(s->text);
    free(s->path);
    free(s);
}
