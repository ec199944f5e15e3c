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
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

/* ---- the pb table: what scenario code can call ------------------------------ */

static double arg_seconds(lua_State *L)
{
    double s = luaL_checknumber(L, 1);
    luaL_argcheck(L, s >= 0 && s <= 1e6, 1, "seconds from 0 to 1e6 expected");
    return s;
}

static int pb_sleep(lua_State *L)
{
    double s = arg_seconds(L);
    struct timespec ts = {(time_t)s, (long)((s - floor(s)) * 1e9)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

/* The engine's spin task, callable from Lua: CPU time, not wall time. */
static int pb_spin(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)pool_spin(arg_seconds(L)));
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

static void open_pb(lua_State *L)
{
    static const luaL_Reg fns[] = {
        {"sleep", pb_sleep}, {"spin", pb_spin}, {"pid", pb_pid},
        {"now", pb_now},     {"cores", pb_cores}, {"exit", pb_exit}, {NULL, NULL},
    };
    luaL_newlib(L, fns);
    lua_setglobal(L, "pb");
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
            snprintf(err, errlen, "%s:%d: the file raised an error that is a table, not a "
                     "message", s->path, scn_line_of_return(s));
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
    if ((rc = lua_pcall(L, 2, 0, 0)) != LUA_OK)
        scn_fix_prefix(s, lua_tostring(L, -1), err, errlen);
    lua_settop(L, 0);
    return rc == LUA_OK ? 0 : -1;
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

scn_scenario *scn_load(const char *path, char *err, size_t errlen)
{
    scn_scenario *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        return NULL;
    }
    s->path = scn_strdup(path);
    s->table_ref = s->tasks_ref = LUA_NOREF;
    if ((s->text = read_file(path, err, errlen)) == NULL)
        goto fail;
    if ((s->L = luaL_newstate()) == NULL) {
        snprintf(err, errlen, "%s: out of memory", path);
        goto fail;
    }
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
