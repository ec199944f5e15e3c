/*
 * scenario_lua.c: what every part of the harness needs to use a scenario's
 * Lua state safely and to point at the scenario's file.
 *
 *   - the lock: one process-wide mutex held by every parent-side use of a
 *     scenario's Lua state (scenario.h says who uses it from which thread),
 *     taken around every fork (pthread_atfork) as CPython takes its GIL;
 *   - scn_pcall: a protected call whose error reads "file:line: message",
 *     the form compilers use, so that an editor can jump to it, whatever
 *     the scenario raised (a table is named by its type); scn_protected, a
 *     C function run under it: every read of a table a scenario made goes
 *     through one, since a metamethod may raise anywhere; raw reads
 *     (scn_rawgetfield, scn_key_name) that consult no metamethod at all;
 *   - the --impl skip marker, a light userdata no Lua code can make, so
 *     that nothing a scenario raises is taken for it;
 *   - line lookups in the file's text, for the errors Lua gives no line
 *     (a missing field, an unknown strategy): the line where the offending
 *     name first appears, quoted or as a key, or the line of the top-level
 *     `return {` for something missing. Searching text is a heuristic (a
 *     comment could mention the name first), but it is right for files
 *     written the way the docs show, and a wrong line is still a line.
 *
 * It sits below every other harness file and calls none of them.
 */
#include "scenario.h"

#include <ctype.h>
#include <lauxlib.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The one lock for every parent-side use of a scenario's Lua state. It is
 * re-entrant per thread (a depth counter in the thread's own storage): a
 * Lua strategy holds it while its code runs, and what that code calls
 * (the stop rule through strat_final, a done callback the engine runs at
 * once in the calling thread) takes it again. While a Lua strategy runs it
 * is that strategy's interpreter lock, CPython's GIL (lua_pool.c). */
static pthread_mutex_t scn_lua_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local int scn_lock_depth;
/* Set while a Lua strategy runs: blocking calls may then release the lock. */
static atomic_bool scn_gil_on;

void scn_lock(void)
{
    if (scn_lock_depth++ == 0)
        pthread_mutex_lock(&scn_lua_lock);
}

void scn_unlock(void)
{
    if (--scn_lock_depth == 0)
        pthread_mutex_unlock(&scn_lua_lock);
}

/* Around every fork of the process: the forking thread takes the lock, so
 * no other thread holds it at the fork, and both sides let it go after (in
 * the child the forking thread is the one thread, and the copy of its
 * depth counter is its own). A pool with start method fork forks workers
 * from its launcher thread while the strategy's threads run Lua; without
 * this a worker could start with the lock held by a thread it does not
 * have, and hang on its first Lua task. CPython does the same with its GIL
 * (PyOS_BeforeFork, PyOS_AfterFork_Child). Locks of the scenario's own
 * (pb.lock) get no such care: that is the fork_with_threads trap.
 *
 * The wait is bounded (SCN_ATFORK_WAIT_S): CPython's GIL is handed over
 * every few milliseconds, ours only when its holder blocks (a Lua strategy
 * that loops without pb.sleep or a pool call never does). Past the bound
 * the fork goes ahead without the lock, so no worker start waits forever;
 * a worker forked then may find the lock held (its Lua tasks hang, and
 * the task time limit, if any, ends them). */
#define SCN_ATFORK_WAIT_S 2
static _Thread_local bool scn_atfork_took;

/* Takes the lock within SCN_ATFORK_WAIT_S on the monotonic clock: trylock
 * every 100 us. Not pthread_mutex_clocklock, which ThreadSanitizer does not
 * intercept (it then took every unlock after a fork for an unlock of a
 * free mutex, and make tsan failed on it), and not timedlock, whose
 * wall-clock deadline a clock step back would stretch. */
static bool scn_lock_within(int seconds)
{
    struct timespec now, end;
    clock_gettime(CLOCK_MONOTONIC, &end);
    end.tv_sec += (time_t)seconds;
    while (pthread_mutex_trylock(&scn_lua_lock) != 0) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec > end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec >= end.tv_nsec))
            return false;
        nanosleep(&(struct timespec){0, 100000}, NULL);
    }
    return true;
}

static void scn_atfork_prepare(void)
{
    if (scn_lock_depth > 0) { /* this thread holds it already */
        scn_lock_depth++;
        scn_atfork_took = true;
        return;
    }
    scn_atfork_took = scn_lock_within(SCN_ATFORK_WAIT_S);
    if (scn_atfork_took)
        scn_lock_depth = 1;
}

static void scn_atfork_release(void)
{
    if (scn_atfork_took)
        scn_unlock();
    scn_atfork_took = false;
}

static void scn_atfork_install(void)
{
    pthread_atfork(scn_atfork_prepare, scn_atfork_release, scn_atfork_release);
}

void scn_lock_atfork(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, scn_atfork_install);
}

void scn_gil_enable(bool on)
{
    atomic_store(&scn_gil_on, on);
}

/* Only the outermost holder releases, and only Lua code that runs on a Lua
 * thread of its own (not the state's main thread, where the stop rule, the
 * observe hook and the Lua tasks run in the parent): what it leaves
 * mid-call is then no stack anyone else uses. */
bool scn_gil_release(lua_State *L)
{
    if (!atomic_load(&scn_gil_on) || scn_lock_depth != 1)
        return false;
    if (L) {
        bool main = lua_pushthread(L) == 1;
        lua_pop(L, 1);
        if (main)
            return false;
    }
    scn_lock_depth = 0;
    pthread_mutex_unlock(&scn_lua_lock);
    return true;
}

void scn_gil_reacquire(bool released)
{
    if (!released)
        return;
    pthread_mutex_lock(&scn_lua_lock);
    scn_lock_depth = 1;
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

bool scn_ident_char(char c)
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
        if (p > s->text && (scn_ident_char(p[-1]) || p[-1] == '.'))
            continue;
        const char *q = p + k;
        if (scn_ident_char(*q))
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

/* Not indented: a nested `return` is some function's, not the file's. */
int scn_line_of_return(const scn_scenario *s)
{
    for (const char *p = s->text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, "return", 6) == 0 && !scn_ident_char(p[6]))
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
void scn_fix_prefix(const scn_scenario *s, const char *msg, char *out, size_t len)
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

/* The --impl skip marker: a light userdata with this address. Lua code cannot
 * make a light userdata, so no scenario raises it by accident (a table, any
 * table, is just an error). */
static const char scn_skip_marker_tag;

void scn_push_skip_marker(lua_State *L)
{
    lua_pushlightuserdata(L, (void *)&scn_skip_marker_tag);
}

bool scn_is_skip_marker(lua_State *L, int idx)
{
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA &&
           lua_touserdata(L, idx) == (void *)&scn_skip_marker_tag;
}

/* Message handler for parent-side calls: when the error carries no
 * position (error(msg, 0), error({}), a bad argument to a C function), use
 * the line of the innermost frame in the scenario file. An error object
 * that is not a string or a number is named by its type ("a table value"):
 * its __tostring is not called, it could raise too. Only the skip marker
 * passes untouched. */
static int msgh(lua_State *L)
{
    const scn_scenario *s = lua_touserdata(L, lua_upvalueindex(1));
    if (scn_is_skip_marker(L, 1))
        return 1;
    const char *msg = lua_type(L, 1) == LUA_TSTRING || lua_type(L, 1) == LUA_TNUMBER
                          ? lua_tostring(L, 1)
                          : NULL;
    if (msg == NULL)
        msg = lua_pushfstring(L, "error object is a %s value, not a message",
                              luaL_typename(L, 1));
    if (!has_position(msg)) {
        lua_Debug ar;
        for (int level = 1; lua_getstack(L, level, &ar); level++) {
            lua_getinfo(L, "Sl", &ar);
            if (ar.currentline > 0 && ar.source[0] == '@' && strcmp(ar.source + 1, s->path) == 0) {
                lua_pushfstring(L, "%s:%d: %s", s->path, ar.currentline, msg);
                return 1;
            }
        }
        /* No frame of the file is running (a metamethod of a table built
         * in C, say): the line of the top-level return. */
        lua_pushfstring(L, "%s:%d: %s", s->path, scn_line_of_return(s), msg);
        return 1;
    }
    lua_pushstring(L, msg);
    return 1;
}

int scn_pcall(scn_scenario *s, int nargs, int nresults, char *err, size_t errlen)
{
    return scn_pcall_on(s, s->L, nargs, nresults, err, errlen);
}

int scn_pcall_on(scn_scenario *s, lua_State *L, int nargs, int nresults, char *err,
                 size_t errlen)
{
    int base = lua_gettop(L) - nargs; /* the function's index */
    lua_pushlightuserdata(L, s);
    lua_pushcclosure(L, msgh, 1);
    lua_insert(L, base);
    int rc = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    if (rc == LUA_OK)
        return 0;
    if (scn_is_skip_marker(L, -1))
        return 1;
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    scn_fix_prefix(s, msg ? msg : "(no message)", err, errlen);
    lua_pop(L, 1);
    return -1;
}

int scn_protected(scn_scenario *s, lua_CFunction fn, void *ud, char *err, size_t errlen)
{
    if (!lua_checkstack(s->L, 4)) {
        snprintf(err, errlen, "%s: out of Lua stack", s->path);
        return -1;
    }
    lua_pushcfunction(s->L, fn);
    lua_pushlightuserdata(s->L, ud);
    return scn_pcall(s, 1, 0, err, errlen);
}

int scn_rawgetfield(lua_State *L, int t, const char *k)
{
    t = lua_absindex(L, t);
    if (lua_type(L, t) != LUA_TTABLE) { /* rawget needs a table: nil, as for a missing key */
        lua_pushnil(L);
        return LUA_TNIL;
    }
    lua_pushstring(L, k);
    return lua_rawget(L, t);
}

const char *scn_key_name(lua_State *L, int idx, char *buf, size_t len)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        snprintf(buf, len, "%s", lua_tostring(L, idx));
        break;
    case LUA_TNUMBER:
        if (lua_isinteger(L, idx))
            snprintf(buf, len, "%lld", (long long)lua_tointeger(L, idx));
        else
            snprintf(buf, len, "%.14g", (double)lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        snprintf(buf, len, "%s", lua_toboolean(L, idx) ? "true" : "false");
        break;
    default:
        snprintf(buf, len, "(a %s)", luaL_typename(L, idx));
    }
    return buf;
}

int scn_push_field(scn_scenario *s, const char *name)
{
    lua_rawgeti(s->L, LUA_REGISTRYINDEX, s->table_ref);
    scn_rawgetfield(s->L, -1, name);
    lua_remove(s->L, -2);
    return lua_type(s->L, -1);
}

