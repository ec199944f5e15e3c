/*
 * scenario.c: loading a scenario file and checking its shape.
 *
 * scn_load() reads the file once (its text serves the line lookups below),
 * runs it in a fresh Lua state with the standard libraries and the `pb`
 * table, and walks the table it returns. Every mistake becomes
 * "file:line: message", the form compilers use, so an editor can jump to
 * it. Lua's own errors already carry a line; a schema error (a missing
 * field, an unknown strategy...) does not, so we find one in the text: the
 * line where the offending name first appears, quoted or as a key, or the
 * line of the top-level `return {` for something missing. Searching text is
 * a heuristic (a comment could mention the name first), but it is right for
 * files written the way the docs show, and a wrong line is still a line.
 *
 * The walk over the returned table is scenario_schema.c; evaluating the
 * scenario (parameters, workload, model) is scenario_eval.c. This file holds
 * what they share: the lock, the line lookups, the message handler that
 * turns Lua errors into "file:line: message", and the `pb` table.
 */
#include "scenario.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"

/* The one lock for every parent-side use of a scenario's Lua state. */
static pthread_mutex_t scn_lua_lock = PTHREAD_MUTEX_INITIALIZER;

void scn_lock(void)
{
    pthread_mutex_lock(&scn_lua_lock);
}

void scn_unlock(void)
{
    pthread_mutex_unlock(&scn_lua_lock);
}

char *scn_strdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (d == NULL) {
        fprintf(stderr, "poolbench: out of memory\n");
        abort();
    }
    return d;
}

/* ---- the file's text: line lookups ---------------------------------------- */

static const char *line_start(const char *text, int line)
{
    const char *p = text;
    for (int l = 1; l < line && p; l++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return p;
}

static int line_at(const char *text, const char *p)
{
    int line = 1;
    for (const char *q = text; q < p; q++)
        line += *q == '\n';
    return line;
}

static int text_line_of(const char *text, const char *needle, int from)
{
    const char *start = line_start(text, from > 0 ? from : 1);
    const char *p = start ? strstr(start, needle) : NULL;
    return p ? line_at(text, p) : 0;
}

static bool ident_char(char c)
{
    return isalnum((unsigned char)c) || c == '_';
}

int scn_line_of(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    char buf[4096];
    int line = 0, found = 0;
    while (!found && fgets(buf, sizeof buf, f)) {
        line++;
        found = strstr(buf, needle) != NULL;
        /* A line longer than buf continues without counting a new line. */
        while (!strchr(buf, '\n') && !feof(f) && fgets(buf, sizeof buf, f))
            found = found || strstr(buf, needle) != NULL;
    }
    fclose(f);
    return found ? line : 0;
}

int scn_line_of_key(const scn_scenario *s, const char *key, int from)
{
    size_t k = strlen(key);
    const char *start = line_start(s->text, from > 0 ? from : 1);
    for (const char *p = start ? strstr(start, key) : NULL; p; p = strstr(p + 1, key)) {
        if (p > s->text && (ident_char(p[-1]) || p[-1] == '.'))
            continue;
        const char *q = p + k;
        if (ident_char(*q))
            continue;
        /* ["key"] = or ['key'] = */
        if (p > s->text + 1 && p[-2] == '[' && (p[-1] == '"' || p[-1] == '\'') && *q == p[-1])
            q += 2;
        while (*q == ' ' || *q == '\t')
            q++;
        if (q[0] == '=' && q[1] != '=')
            return line_at(s->text, p);
    }
    return 0;
}

/* The line of the top-level `return {` (not indented), where a missing
 * field belongs; 1 if the file has none. */
int scn_line_of_return(const scn_scenario *s)
{
    for (const char *p = s->text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, "return", 6) == 0 && !ident_char(p[6]))
            return line_at(s->text, p);
    int l = text_line_of(s->text, "return", 1);
    return l ? l : 1;
}

int scn_line_of_name(const scn_scenario *s, const char *name)
{
    char q[160];
    snprintf(q, sizeof q, "\"%s\"", name);
    int l = text_line_of(s->text, q, 1);
    if (l == 0) {
        snprintf(q, sizeof q, "'%s'", name);
        l = text_line_of(s->text, q, 1);
    }
    if (l == 0)
        l = scn_line_of_key(s, name, 1);
    return l ? l : scn_line_of_return(s);
}

/* ---- Lua errors as "file:line: message" ----------------------------------- */

/* Lua names a chunk "@path" by its tail when the path is long
 * (".../scenarios/x.lua:3: ..."); put the whole path back. */
static void fix_prefix(const scn_scenario *s, const char *msg, char *out, size_t len)
{
    if (strncmp(msg, "...", 3) == 0) {
        const char *c = strchr(msg, ':');
        size_t tail = c ? (size_t)(c - msg) - 3 : 0, plen = strlen(s->path);
        if (c && isdigit((unsigned char)c[1]) && tail <= plen &&
            strncmp(s->path + plen - tail, msg + 3, tail) == 0) {
            snprintf(out, len, "%s%s", s->path, c);
            return;
        }
    }
    snprintf(out, len, "%s", msg);
}

/* Whether msg starts with "src:LINE:". */
static bool has_position(const char *msg)
{
    const char *c = msg;
    while (*c && *c != ':' && *c != '\n')
        c++;
    if (*c != ':' || !isdigit((unsigned char)c[1]))
        return false;
    c++;
    while (isdigit((unsigned char)*c))
        c++;
    return *c == ':';
}

/* Message handler for parent-side calls: when the error carries no
 * position (error(msg, 0), a bad argument to a C function), use the line of
 * the innermost frame in the scenario file. A table is a marker and passes
 * untouched. */
static int msgh(lua_State *L)
{
    const scn_scenario *s = lua_touserdata(L, lua_upvalueindex(1));
    if (lua_type(L, 1) == LUA_TTABLE)
        return 1;
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL)
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    if (!has_position(msg)) {
        lua_Debug ar;
        for (int level = 1; lua_getstack(L, level, &ar); level++) {
            lua_getinfo(L, "Sl", &ar);
            if (ar.currentline > 0 && ar.source[0] == '@' && strcmp(ar.source + 1, s->path) == 0) {
                lua_pushfstring(L, "%s:%d: %s", s->path, ar.currentline, msg);
                return 1;
            }
        }
    }
    lua_pushstring(L, msg);
    return 1;
}

int scn_pcall(scn_scenario *s, int nargs, int nresults, char *err, size_t errlen)
{
    lua_State *L = s->L;
    int base = lua_gettop(L) - nargs; /* the function's index */
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, msgh, 1);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    if (rc == LUA_OK)
        return 0;
    if (lua_type(L, -1) == LUA_TTABLE)
        return 1;
    const char *msg = lua_tostring(L, -1);
    fix_prefix(s, msg ? msg : "(no message)", err, errlen);
    lua_pop(L, 1);
    return -1;
}

int scn_push_field(scn_scenario *s, const char *name)
{
    lua_rawgeti(s->L, LUA_REGISTRYINDEX, s->table_ref);
    lua_getfield(s->L, -1, name);
    lua_remove(s->L, -2);
    return lua_type(s->L, -1);
}

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
    lua_State *L = s->L;
    luaL_openlibs(L);
    open_pb(L);
    char chunk[4096 + 2];
    snprintf(chunk, sizeof chunk, "@%s", path);
    int rc = luaL_loadbufferx(L, s->text, strlen(s->text), chunk, "t");
    if (rc != LUA_OK) {
        fix_prefix(s, lua_tostring(L, -1), err, errlen);
        lua_pop(L, 1);
    } else if ((rc = scn_pcall(s, 0, 1, err, errlen)) > 0) {
        snprintf(err, errlen, "%s:%d: the file raised an error that is a table, not a message",
                 path, scn_line_of_return(s));
        lua_settop(L, 0);
    } else if (rc == 0) {
        if (lua_type(L, -1) != LUA_TTABLE) {
            snprintf(err, errlen, "%s:%d: the scenario must return a table (it returned %s)",
                     path, scn_line_of_return(s), luaL_typename(L, -1));
            rc = -1;
        } else {
            lua_pushvalue(L, -1);
            s->table_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            lua_pushcfunction(L, scn_schema);
            lua_pushlightuserdata(L, s);
            lua_pushvalue(L, -3);
            if ((rc = lua_pcall(L, 2, 0, 0)) != LUA_OK) {
                fix_prefix(s, lua_tostring(L, -1), err, errlen);
                lua_pop(L, 1);
            }
        }
        lua_settop(L, 0);
    }
    scn_unlock();
    if (rc != 0)
        goto fail;

    /* Check the workload once, with the defaults: a stage naming an unknown
     * task is a schema error and belongs to loading, not to a run. */
    scn_params p;
    scn_workload w;
    if (scn_params_resolve(s, false, NULL, 0, &p, err, errlen) != 0 ||
        scn_workload_eval(s, &p, &w, err, errlen) != 0)
        goto fail;
    scn_workload_free(s, &w);
    return s;
fail:
    scn_free(s);
    return NULL;
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
