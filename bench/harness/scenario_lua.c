/*
 * scenario_lua.c: what every part of the harness needs to use a scenario's
 * Lua state safely and to point at the scenario's file.
 *
 *   - the lock: one process-wide mutex held by every parent-side use of a
 *     scenario's Lua state (scenario.h says who uses it from which thread);
 *   - scn_pcall: a protected call whose error reads "file:line: message",
 *     the form compilers use, so that an editor can jump to it;
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    scn_fix_prefix(s, msg ? msg : "(no message)", err, errlen);
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

