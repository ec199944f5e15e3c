/*
 * test_lua_values.c: unit tests for bench/harness/lua_values.c, the Lua <-> msgpack
 * value glue.
 *
 * Values go both ways: Lua -> msgpack -> Lua must give back an equal Lua
 * value (same math.type, same -0.0, NaN for NaN), msgpack -> Lua -> msgpack
 * an equivalent object, modulo the documented widenings (float32 -> float64,
 * bin -> str). Where a mapping is a decision rather than an identity (array
 * or map, holes, big unsigned integers) a test pins it down.
 *
 * Each case gets a fresh fixture: a Lua state and the buffers, freed by the
 * teardown so that a failing assertion leaks nothing. Run with no argument
 * for every case, `--list` for the case names, or one case name to run only
 * that case (tests/run_cases.sh runs each in its own process, so a crash in
 * one case cannot hide the others).
 *
 * One property is checked by valgrind rather than by an assertion: without
 * lua_checkstack, deep values write past the Lua stack inside liblua, which
 * ASan cannot see (liblua is not instrumented) but valgrind reports.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lua_values.h"

/* Deep equality in Lua, stricter than ==: 1 and 1.0 differ, as do 0.0 and
 * -0.0; NaN equals NaN. nest(n) is n tables, each inside the next. */
static const char *helpers_lua =
    "function same(a, b)\n"
    "  if type(a) ~= type(b) then return false end\n"
    "  if type(a) == 'number' then\n"
    "    if math.type(a) ~= math.type(b) then return false end\n"
    "    if a ~= a then return b ~= b end\n"
    "    return a == b and (a ~= 0 or 1/a == 1/b)\n"
    "  end\n"
    "  if type(a) ~= 'table' then return a == b end\n"
    "  for k, v in pairs(a) do if not same(v, b[k]) then return false end end\n"
    "  for k in pairs(b) do if rawget(a, k) == nil then return false end end\n"
    "  return true\n"
    "end\n"
    "function nest(n) local t = {} for _ = 2, n do t = {t} end return t end\n";

typedef struct fixture {
    lua_State *L;
    msgpack_sbuffer in, out; /* in: built by a test; out: written by luav_pack */
    msgpack_packer pin, pout;
    msgpack_unpacked uin, uout;
    char err[256];
} fixture;

static void run(lua_State *L, const char *code, int nresults)
{
    if (luaL_loadstring(L, code) != LUA_OK || lua_pcall(L, 0, nresults, 0) != LUA_OK)
        fail_msg("Lua error in [%s]: %s", code, lua_tostring(L, -1));
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (f == NULL || (f->L = luaL_newstate()) == NULL)
        return -1;
    luaL_openlibs(f->L);
    msgpack_sbuffer_init(&f->in);
    msgpack_sbuffer_init(&f->out);
    msgpack_packer_init(&f->pin, &f->in, msgpack_sbuffer_write);
    msgpack_packer_init(&f->pout, &f->out, msgpack_sbuffer_write);
    msgpack_unpacked_init(&f->uin);
    msgpack_unpacked_init(&f->uout);
    *state = f;
    run(f->L, helpers_lua, 0);
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    msgpack_unpacked_destroy(&f->uin);
    msgpack_unpacked_destroy(&f->uout);
    msgpack_sbuffer_destroy(&f->in);
    msgpack_sbuffer_destroy(&f->out);
    lua_close(f->L);
    free(f);
    return 0;
}

/* Pops the top value into global v and asserts that cond holds of it. */
static void check(lua_State *L, const char *cond)
{
    char code[512];
    lua_setglobal(L, "v");
    snprintf(code, sizeof code, "return %s", cond);
    run(L, code, 1);
    if (!lua_toboolean(L, -1))
        fail_msg("does not hold: %s", cond);
    lua_pop(L, 1);
}

/* Exactly one msgpack value in sb, nothing trailing. */
static const msgpack_object *unpack(const msgpack_sbuffer *sb, msgpack_unpacked *u)
{
    size_t off = 0;
    msgpack_unpacked_destroy(u);
    assert_int_equal(msgpack_unpack_next(u, sb->data, sb->size, &off), MSGPACK_UNPACK_SUCCESS);
    assert_int_equal(off, sb->size);
    return &u->data;
}

/* A test starts building msgpack input here. */
static msgpack_packer *mp(fixture *f)
{
    msgpack_sbuffer_clear(&f->in);
    return &f->pin;
}

/* Packs the value on top with luav_pack (keeping it), then unpacks it. */
static const msgpack_object *pack_top(fixture *f)
{
    int top = lua_gettop(f->L);
    msgpack_sbuffer_clear(&f->out);
    if (luav_pack(f->L, -1, &f->pout, f->err, sizeof f->err) != 0)
        fail_msg("luav_pack: %s", f->err);
    assert_int_equal(lua_gettop(f->L), top);
    return unpack(&f->out, &f->uout);
}

static const msgpack_object *pack_expr(fixture *f, const char *expr)
{
    char code[512];
    snprintf(code, sizeof code, "return %s", expr);
    run(f->L, code, 1);
    const msgpack_object *o = pack_top(f);
    lua_pop(f->L, 1);
    return o;
}

static int push_cf(lua_State *L)
{
    luav_push(L, lua_touserdata(L, 1));
    return 1;
}

/* luav_push under lua_pcall: LUA_OK with the value on top, or an error
 * status with the message on top. */
static int push_protected(lua_State *L, const msgpack_object *o)
{
    lua_pushcfunction(L, push_cf);
    lua_pushlightuserdata(L, (void *)o);
    return lua_pcall(L, 1, 1, 0);
}

/* Whether b (repacked) is equivalent to a (the original): float32 may come
 * back as float64 and bin as str; map order is free. */
static bool equiv(const msgpack_object *a, const msgpack_object *b)
{
    msgpack_object_type ta = a->type == MSGPACK_OBJECT_FLOAT32 ? MSGPACK_OBJECT_FLOAT64
                             : a->type == MSGPACK_OBJECT_BIN   ? MSGPACK_OBJECT_STR
                                                               : a->type;
    if (ta != b->type)
        return false;
    switch (ta) {
    case MSGPACK_OBJECT_FLOAT64:
        if (isnan(a->via.f64))
            return isnan(b->via.f64);
        return a->via.f64 == b->via.f64 && !signbit(a->via.f64) == !signbit(b->via.f64);
    case MSGPACK_OBJECT_STR: /* bin and str share the layout */
        return a->via.str.size == b->via.str.size &&
               memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0;
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size)
            return false;
        for (uint32_t i = 0; i < a->via.array.size; i++)
            if (!equiv(&a->via.array.ptr[i], &b->via.array.ptr[i]))
                return false;
        return true;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size)
            return false;
        for (uint32_t i = 0; i < a->via.map.size; i++) {
            bool found = false;
            for (uint32_t j = 0; j < b->via.map.size && !found; j++)
                found = equiv(&a->via.map.ptr[i].key, &b->via.map.ptr[j].key) &&
                        equiv(&a->via.map.ptr[i].val, &b->via.map.ptr[j].val);
            if (!found)
                return false;
        }
        return true;
    default:
        return msgpack_object_equal(*a, *b);
    }
}

/* msgpack (f->in) -> Lua -> msgpack: the Lua value must satisfy cond;
 * returns what repacking gave. */
static const msgpack_object *mp_back(fixture *f, const char *cond)
{
    if (push_protected(f->L, unpack(&f->in, &f->uin)) != LUA_OK)
        fail_msg("luav_push: %s", lua_tostring(f->L, -1));
    const msgpack_object *back = pack_top(f);
    check(f->L, cond);
    return back;
}

/* ... and must come back equivalent. */
static void mp_same(fixture *f, const char *cond)
{
    if (!equiv(&f->uin.data, mp_back(f, cond)))
        fail_msg("not the same after msgpack -> Lua -> msgpack (%s)", cond);
}

/* Lua -> msgpack -> Lua must give back a same() value. */
static void lua_same(fixture *f, const char *expr)
{
    char code[600];
    if (push_protected(f->L, pack_expr(f, expr)) != LUA_OK)
        fail_msg("luav_push(%s): %s", expr, lua_tostring(f->L, -1));
    lua_setglobal(f->L, "w");
    snprintf(code, sizeof code, "return same(%s, w)", expr);
    run(f->L, code, 1);
    if (!lua_toboolean(f->L, -1))
        fail_msg("not the same after Lua -> msgpack -> Lua: %s", expr);
    lua_pop(f->L, 1);
}

/* Packs a Lua expression and asserts the msgpack type (and size) it became. */
static void expect_type(fixture *f, const char *expr, msgpack_object_type type, uint32_t size)
{
    const msgpack_object *o = pack_expr(f, expr);
    if (o->type != type)
        fail_msg("%s packed as msgpack type %d, expected %d", expr, o->type, type);
    if (type == MSGPACK_OBJECT_ARRAY || type == MSGPACK_OBJECT_MAP)
        assert_int_equal(type == MSGPACK_OBJECT_MAP ? o->via.map.size : o->via.array.size, size);
}

/* Packs the nargs values code returns as args; expects refusal with msg. */
static void expect_refusal(fixture *f, const char *code, int nargs, const char *msg)
{
    run(f->L, code, nargs);
    int top = lua_gettop(f->L);
    assert_int_equal(luav_pack_args(f->L, top - nargs + 1, top, &f->out, f->err, sizeof f->err),
                     -1);
    assert_string_equal(f->err, msg);
    assert_int_equal(lua_gettop(f->L), top);
    lua_settop(f->L, 0);
}

/* ---- the cases ----------------------------------------------------------- */

static void same_helper_detects_differences(void **state)
{
    fixture *f = *state;
    /* The round trips are only as strict as same(): make sure it can say no. */
    run(f->L, "return same(1, 1.0) or same(0.0, -0.0) or same({1}, {1, 2}) or"
              " same({a = 1}, {a = 1, b = 2}) or same('a', 'a\\0') or same(0/0, 1)", 1);
    assert_false(lua_toboolean(f->L, -1));
    run(f->L, "return same(0/0, 0/0) and same({1, {x = 'y'}}, {1, {x = 'y'}})", 1);
    assert_true(lua_toboolean(f->L, -1));
}

static void lua_scalars_round_trip(void **state)
{
    const char *exprs[] = {"nil", "true", "false", "0", "-7", "1.0", "-0.0", "0.1", "2^63",
                           "0/0", "math.huge", "-math.huge", "math.pi", "''", "'hello'",
                           "'a\\0b\\0'", "string.rep('x', 70000)"};
    for (size_t i = 0; i < sizeof exprs / sizeof exprs[0]; i++)
        lua_same(*state, exprs[i]);
}

static void lua_types_become_msgpack_types(void **state)
{
    expect_type(*state, "nil", MSGPACK_OBJECT_NIL, 0);
    expect_type(*state, "false", MSGPACK_OBJECT_BOOLEAN, 0);
    expect_type(*state, "3", MSGPACK_OBJECT_POSITIVE_INTEGER, 0);
    expect_type(*state, "-3", MSGPACK_OBJECT_NEGATIVE_INTEGER, 0);
    expect_type(*state, "3.0", MSGPACK_OBJECT_FLOAT64, 0); /* integral, still a float */
    expect_type(*state, "'s'", MSGPACK_OBJECT_STR, 0);
    expect_type(*state, "{}", MSGPACK_OBJECT_ARRAY, 0);
}

static void big_integers_exact(void **state)
{
    fixture *f = *state;
    const msgpack_object *o = pack_expr(f, "math.maxinteger");
    assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_true(o->via.u64 == (uint64_t)INT64_MAX);
    o = pack_expr(f, "math.mininteger");
    assert_int_equal(o->type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_true(o->via.i64 == INT64_MIN);
    lua_same(f, "math.maxinteger");
    lua_same(f, "math.mininteger");
    lua_same(f, "{math.mininteger, math.maxinteger, -1, 127, 128, 255, 256, 65536, -32, -33}");
}

static void integral_float_stays_float(void **state)
{
    fixture *f = *state;
    const msgpack_object *o = pack_expr(f, "1.0");
    assert_int_equal(o->type, MSGPACK_OBJECT_FLOAT64);
    assert_true(o->via.f64 == 1.0);
    o = pack_expr(f, "-0.0");
    assert_int_equal(o->type, MSGPACK_OBJECT_FLOAT64);
    assert_true(o->via.f64 == 0.0 && signbit(o->via.f64));
    lua_same(f, "{1.0, 2, 3.0, -0.0}");
}

static void binary_strings_keep_every_byte(void **state)
{
    fixture *f = *state;
    const msgpack_object *o = pack_expr(f, "'a\\0b\\0'");
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.str.size, 4);
    assert_memory_equal(o->via.str.ptr, "a\0b\0", 4);
    o = pack_expr(f, "(function() local t = {} for i = 0, 255 do t[#t + 1] = string.char(i)"
                     " end return table.concat(t) end)()");
    assert_int_equal(o->via.str.size, 256);
    for (int i = 0; i < 256; i++)
        assert_int_equal((unsigned char)o->via.str.ptr[i], i);
    lua_same(f, "string.char(0, 255, 0, 10, 13, 0)");
}

static void sequence_is_array(void **state)
{
    fixture *f = *state;
    const msgpack_object *o = pack_expr(f, "{10, 'x', true}");
    assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(o->via.array.size, 3);
    assert_true(o->via.array.ptr[0].via.u64 == 10);
    assert_int_equal(o->via.array.ptr[1].type, MSGPACK_OBJECT_STR);
    assert_true(o->via.array.ptr[2].via.boolean);
    /* Built backwards, so the keys may sit in the hash part: still 1..n. */
    expect_type(f, "(function() local t = {} for i = 5, 1, -1 do t[i] = i end return t end)()",
                MSGPACK_OBJECT_ARRAY, 5);
    expect_type(f, "{[2] = 'b', [1] = 'a'}", MSGPACK_OBJECT_ARRAY, 2);
    lua_same(f, "{1, 2, 3}");
}

static void empty_table_is_empty_array(void **state)
{
    expect_type(*state, "{}", MSGPACK_OBJECT_ARRAY, 0);
    expect_type(*state, "{nil, nil}", MSGPACK_OBJECT_ARRAY, 0);
    lua_same(*state, "{}");
}

static void holes_and_other_keys_make_a_map(void **state)
{
    fixture *f = *state;
    expect_type(f, "{1, 2, nil, 4}", MSGPACK_OBJECT_MAP, 3); /* keys 1, 2, 4 */
    expect_type(f, "{a = 1}", MSGPACK_OBJECT_MAP, 1);
    expect_type(f, "{[1] = 1, [3] = 3}", MSGPACK_OBJECT_MAP, 2);
    expect_type(f, "{1, 2, x = 3}", MSGPACK_OBJECT_MAP, 3);
    expect_type(f, "{[0] = 'z', 'a'}", MSGPACK_OBJECT_MAP, 2);
    expect_type(f, "{[-1] = 1}", MSGPACK_OBJECT_MAP, 1);
    expect_type(f, "{[1.5] = 1}", MSGPACK_OBJECT_MAP, 1);
    expect_type(f, "{[2] = 2}", MSGPACK_OBJECT_MAP, 1);
    /* A map keeps the keys exactly, so holes survive the round trip. */
    lua_same(f, "{1, 2, nil, 4}");
    lua_same(f, "{[1] = 1, [3] = 3}");
    lua_same(f, "{a = 1}");
}

static void map_keys_of_every_type(void **state)
{
    fixture *f = *state;
    const msgpack_object *o = pack_expr(f, "{[{1, 2}] = 'tbl'}");
    assert_int_equal(o->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(o->via.map.ptr[0].key.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(o->via.map.ptr[0].key.via.array.size, 2);
    lua_same(f, "{[true] = false, [false] = 'f', [2.5] = 'x', s = 'y', [10] = 0,"
                " [-3] = -3, [math.mininteger] = 'min', ['a b\\0c'] = {}}");
}

static void nested_tables_round_trip(void **state)
{
    char expr[32];
    lua_same(*state, "{a = {b = {c = {1, 2, {d = 'e', f = {}}}}}, list = {1, 'two', 3.0, {}},"
                     " [7] = {{{{'deep'}}}}, mixed = {1, 2, nil, {x = 0/0}}}");
    snprintf(expr, sizeof expr, "nest(%d)", LUAV_MAX_DEPTH); /* as deep as we pack */
    lua_same(*state, expr);
}
static void max_depth_fits_a_message(void **state)
{
    fixture *f = *state;
    /* Why the limit is what it is: libmsgpackc's C unpacker has a fixed
     * stack of 32 containers per message, and a value travels three
     * containers deep in a task message. The deepest value we pack, put
     * three arrays deep, must still unpack. */
    char code[48];
    size_t off = 0;
    snprintf(code, sizeof code, "return nest(%d)", LUAV_MAX_DEPTH);
    run(f->L, code, 1);
    for (int i = 0; i < 3; i++)
        msgpack_pack_array(&f->pout, 1);
    assert_int_equal(luav_pack(f->L, -1, &f->pout, f->err, sizeof f->err), 0);
    assert_int_equal(msgpack_unpack_next(&f->uout, f->out.data, f->out.size, &off),
                     MSGPACK_UNPACK_SUCCESS);
}

static void msgpack_scalars_round_trip(void **state)
{
    fixture *f = *state;
    msgpack_pack_nil(mp(f)), mp_same(f, "v == nil");
    msgpack_pack_true(mp(f)), mp_same(f, "v == true");
    msgpack_pack_false(mp(f)), mp_same(f, "v == false");
    msgpack_pack_uint8(mp(f), 200), mp_same(f, "math.type(v) == 'integer' and v == 200");
    msgpack_pack_int64(mp(f), INT64_MAX), mp_same(f, "v == math.maxinteger");
    msgpack_pack_int64(mp(f), INT64_MIN), mp_same(f, "v == math.mininteger");
    msgpack_pack_int8(mp(f), -5), mp_same(f, "math.type(v) == 'integer' and v == -5");
    msgpack_pack_double(mp(f), 2.0), mp_same(f, "math.type(v) == 'float' and v == 2.0");
    msgpack_pack_double(mp(f), -INFINITY), mp_same(f, "v == -math.huge");
    msgpack_pack_double(mp(f), NAN), mp_same(f, "v ~= v");
    msgpack_pack_str_with_body(mp(f), "hi\0there", 8), mp_same(f, "v == 'hi\\0there'");
    /* These two come back widened, as float64 and str: equiv() allows it. */
    msgpack_pack_float(mp(f), 1.5f), mp_same(f, "math.type(v) == 'float' and v == 1.5");
    msgpack_pack_bin_with_body(mp(f), "\0\1\2\377", 4), mp_same(f, "v == '\\0\\1\\2\\255'");
}

static void msgpack_containers_round_trip(void **state)
{
    fixture *f = *state;
    msgpack_packer *pk = mp(f);
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, 1);
    msgpack_pack_str_with_body(pk, "a", 1);
    msgpack_pack_array(pk, 1);
    msgpack_pack_true(pk);
    mp_same(f, "#v == 3 and v[1] == 1 and v[2] == 'a' and v[3][1] == true");

    pk = mp(f);
    msgpack_pack_map(pk, 3);
    msgpack_pack_str_with_body(pk, "a", 1), msgpack_pack_int(pk, 1);
    msgpack_pack_str_with_body(pk, "b", 1), msgpack_pack_array(pk, 2);
    msgpack_pack_int(pk, 2), msgpack_pack_double(pk, 3.0);
    msgpack_pack_int(pk, -4), msgpack_pack_map(pk, 1);
    msgpack_pack_str_with_body(pk, "k", 1), msgpack_pack_double(pk, -0.0);
    mp_same(f, "v.a == 1 and v.b[2] == 3.0 and v[-4].k == 0 and 1/v[-4].k < 0");
}

static void msgpack_shapes_lua_cannot_keep(void **state)
{
    fixture *f = *state;
    /* A map keyed 1..n is a sequence in Lua, so it comes back an array. */
    msgpack_packer *pk = mp(f);
    msgpack_pack_map(pk, 2);
    msgpack_pack_int(pk, 2), msgpack_pack_str_with_body(pk, "y", 1);
    msgpack_pack_int(pk, 1), msgpack_pack_str_with_body(pk, "x", 1);
    const msgpack_object *back = mp_back(f, "v[1] == 'x' and v[2] == 'y'");
    assert_int_equal(back->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(back->via.array.size, 2);
    /* An empty map is an empty table, which packs as an empty array. */
    msgpack_pack_map(mp(f), 0);
    back = mp_back(f, "type(v) == 'table' and next(v) == nil");
    assert_int_equal(back->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(back->via.array.size, 0);
    /* nil in an array is a hole: the array comes back as a map. */
    pk = mp(f);
    msgpack_pack_array(pk, 3);
    msgpack_pack_int(pk, 1), msgpack_pack_nil(pk), msgpack_pack_int(pk, 3);
    back = mp_back(f, "v[1] == 1 and v[2] == nil and v[3] == 3");
    assert_int_equal(back->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(back->via.map.size, 2);
    /* A nil map value is no entry at all. */
    pk = mp(f);
    msgpack_pack_map(pk, 2);
    msgpack_pack_str_with_body(pk, "a", 1), msgpack_pack_nil(pk);
    msgpack_pack_str_with_body(pk, "b", 1), msgpack_pack_int(pk, 0);
    back = mp_back(f, "v.b == 0 and next(v, next(v)) == nil");
    assert_int_equal(back->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(back->via.map.size, 1);
    /* Above math.maxinteger: a float, as Lua reads 18446744073709551615. */
    msgpack_pack_uint64(mp(f), UINT64_MAX);
    back = mp_back(f, "math.type(v) == 'float' and v == 2^64");
    assert_int_equal(back->type, MSGPACK_OBJECT_FLOAT64);
}

static void msgpack_values_lua_refuses(void **state)
{
    lua_State *L = ((fixture *)*state)->L;
    msgpack_object_kv kv = {.key = {.type = MSGPACK_OBJECT_NIL},
                            .val = {.type = MSGPACK_OBJECT_BOOLEAN}};
    msgpack_object map = {.type = MSGPACK_OBJECT_MAP, .via.map = {.size = 1, .ptr = &kv}};
    assert_int_equal(push_protected(L, &map), LUA_ERRRUN);
    assert_string_equal(lua_tostring(L, -1), "msgpack map key is nil: a Lua table cannot hold it");
    kv.key = (msgpack_object){.type = MSGPACK_OBJECT_FLOAT64, .via.f64 = NAN};
    assert_int_equal(push_protected(L, &map), LUA_ERRRUN);
    assert_string_equal(lua_tostring(L, -1), "msgpack map key is NaN: a Lua table cannot hold it");
    msgpack_object ext = {.type = MSGPACK_OBJECT_EXT, .via.ext = {.type = 5, .size = 0}};
    assert_int_equal(push_protected(L, &ext), LUA_ERRRUN);
    assert_string_equal(lua_tostring(L, -1), "cannot convert a msgpack ext value (type 5) to Lua");
}

static void refuses_function_with_path(void **state)
{
    fixture *f = *state;
    expect_refusal(f, "return 1, {f = print}", 2, "cannot serialize a function (at args[2].f)");
    expect_refusal(f, "return print", 1, "cannot serialize a function (at args[1])");
    expect_refusal(f, "return {['a b'] = {1, print}}", 1,
                   "cannot serialize a function (at args[1][\"a b\"][2])");
    expect_refusal(f, "return {[1] = 1, [7] = print}", 1,
                   "cannot serialize a function (at args[1][7])");
    expect_refusal(f, "return {['x\\0\"y\\255'] = print}", 1,
                   "cannot serialize a function (at args[1][\"x\\0\\\"y\\255\"])");
    expect_refusal(f, "return {['1x'] = {_ok9 = print}}", 1,
                   "cannot serialize a function (at args[1][\"1x\"]._ok9)");
    expect_refusal(f, "return {[string.rep('k', 50)] = print}", 1,
                   "cannot serialize a function (at args[1][\"kkkkkkkkkkkkkkkkkkkk"
                   "kkkkkkkkkkkkkkkkkkkk...\"])");
    expect_refusal(f, "return {[print] = 1}", 1,
                   "cannot serialize a function as a table key (at args[1])");
    expect_refusal(f, "return {[{print}] = 1}", 1,
                   "cannot serialize a function (at args[1]{key}[1])");
}

static void refuses_thread_and_userdata(void **state)
{
    fixture *f = *state;
    expect_refusal(f, "return {list = {1, 2, coroutine.create(print)}}", 1,
                   "cannot serialize a thread (at args[1].list[3])");
    expect_refusal(f, "return 'ok', io.stdout", 2, "cannot serialize a userdata (at args[2])");
    lua_pushlightuserdata(f->L, f);
    assert_int_equal(luav_pack(f->L, 1, &f->pout, f->err, sizeof f->err), -1);
    assert_string_equal(f->err, "cannot serialize a light userdata (at value)");
    assert_int_equal(lua_gettop(f->L), 1);
}

static void depth_limit(void **state)
{
    fixture *f = *state;
    enum { D = LUAV_MAX_DEPTH };
    char prefix[64], code[48], cyc[80];
    snprintf(prefix, sizeof prefix, "nesting deeper than %d (a cycle?) (at value[1][1]", D);
    /* D tables pack: D-1 one-element arrays (0x91) around an empty one. */
    snprintf(code, sizeof code, "return nest(%d)", D);
    run(f->L, code, 1);
    assert_int_equal(luav_pack(f->L, -1, &f->pout, f->err, sizeof f->err), 0);
    assert_int_equal(f->out.size, D);
    for (int i = 0; i < D - 1; i++)
        assert_int_equal((unsigned char)f->out.data[i], 0x91);
    assert_int_equal((unsigned char)f->out.data[D - 1], 0x90);
    /* D+1 do not. */
    snprintf(code, sizeof code, "return nest(%d)", D + 1);
    run(f->L, code, 1);
    assert_int_equal(luav_pack(f->L, -1, &f->pout, f->err, sizeof f->err), -1);
    assert_true(strncmp(f->err, prefix, strlen(prefix)) == 0);
    /* A cycle is caught by the same limit, and the stack stays balanced. */
    run(f->L, "local t = {} t.self = t return t", 1);
    assert_int_equal(luav_pack(f->L, -1, &f->pout, f->err, sizeof f->err), -1);
    snprintf(cyc, sizeof cyc, "nesting deeper than %d (a cycle?) (at value.self.self.self", D);
    assert_non_null(strstr(f->err, cyc));
    assert_int_equal(lua_gettop(f->L), 3);
}

static void push_depth_limit(void **state)
{
    lua_State *L = ((fixture *)*state)->L;
    enum { D = LUAV_MAX_DEPTH };
    char cond[160], msg[64];
    /* Hand-built, so the depth is exact. D tables need more than
     * LUA_MINSTACK slots once maps hold keys: luav_push must grow the stack. */
    msgpack_object chain[D + 2];
    for (int i = 0; i < D + 1; i++)
        chain[i] = (msgpack_object){.type = MSGPACK_OBJECT_ARRAY,
                                    .via.array = {.size = 1, .ptr = &chain[i + 1]}};
    chain[D + 1] = (msgpack_object){.type = MSGPACK_OBJECT_NIL};
    chain[D].via.array.size = 0;
    lua_gc(L, LUA_GCCOLLECT); /* shrinks the Lua stack, so a missing checkstack shows */
    assert_int_equal(push_protected(L, &chain[1]), LUA_OK); /* D tables */
    snprintf(cond, sizeof cond, "same(v, nest(%d))", D);
    check(L, cond);
    assert_int_equal(push_protected(L, &chain[0]), LUA_ERRRUN); /* D+1 */
    snprintf(msg, sizeof msg, "msgpack value nested deeper than %d", D);
    assert_string_equal(lua_tostring(L, -1), msg);

    /* Maps hold a key on the stack at each level too: D x {k = ...}. */
    msgpack_object_kv kvs[D];
    msgpack_object maps[D];
    for (int i = D - 1; i >= 0; i--) { /* innermost first: each copies the next */
        kvs[i].key = (msgpack_object){.type = MSGPACK_OBJECT_STR, .via.str = {1, "k"}};
        kvs[i].val = i < D - 1 ? maps[i + 1] : (msgpack_object){.type = MSGPACK_OBJECT_NIL};
        maps[i] = (msgpack_object){.type = MSGPACK_OBJECT_MAP, .via.map = {1, &kvs[i]}};
    }
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    assert_int_equal(push_protected(L, &maps[0]), LUA_OK);
    snprintf(cond, sizeof cond,
             "(function() local n = 0 while v do n, v = n + 1, v.k end return n end)() == %d", D);
    check(L, cond);
}

static void pack_args_clears_and_packs_range(void **state)
{
    fixture *f = *state;
    lua_State *L = f->L;
    msgpack_sbuffer_write(&f->out, "junk", 4);
    run(L, "return 'before', 1, 'two', {3}", 4);
    assert_int_equal(luav_pack_args(L, -3, -1, &f->out, f->err, sizeof f->err), 0); /* relative */
    assert_int_equal(lua_gettop(L), 4);
    const msgpack_object *o = unpack(&f->out, &f->uout); /* no junk before the array */
    assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(o->via.array.size, 3);
    assert_true(o->via.array.ptr[0].via.u64 == 1);
    assert_int_equal(o->via.array.ptr[1].type, MSGPACK_OBJECT_STR);
    assert_int_equal(o->via.array.ptr[2].type, MSGPACK_OBJECT_ARRAY);

    /* push_args gives the same values back, one per element. */
    lua_settop(L, 0);
    luav_push_args(L, &o->via.array);
    assert_int_equal(lua_gettop(L), 3);
    lua_createtable(L, 3, 0);
    for (int i = 1; i <= 3; i++)
        lua_pushvalue(L, i), lua_rawseti(L, -2, i);
    check(L, "same(v, {1, 'two', {3}})");

    /* last < first: no arguments, an empty array. */
    assert_int_equal(luav_pack_args(L, 4, 3, &f->out, f->err, sizeof f->err), 0);
    assert_int_equal(f->out.size, 1);
    assert_int_equal((unsigned char)f->out.data[0], 0x90);
}

static void small_error_buffer(void **state)
{
    fixture *f = *state;
    char err[10];
    run(f->L, "return {f = print}", 1);
    assert_int_equal(luav_pack_args(f->L, 1, 1, &f->out, err, sizeof err), -1);
    assert_string_equal(err, "cannot se"); /* cut, terminated */
    assert_int_equal(luav_pack_args(f->L, 1, 1, &f->out, NULL, 0), -1);
    assert_int_equal(lua_gettop(f->L), 1);
}

#define CASE(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        CASE(same_helper_detects_differences), CASE(lua_scalars_round_trip),
        CASE(lua_types_become_msgpack_types), CASE(big_integers_exact),
        CASE(integral_float_stays_float), CASE(binary_strings_keep_every_byte),
        CASE(sequence_is_array), CASE(empty_table_is_empty_array),
        CASE(holes_and_other_keys_make_a_map), CASE(map_keys_of_every_type),
        CASE(nested_tables_round_trip), CASE(max_depth_fits_a_message),
        CASE(msgpack_scalars_round_trip), CASE(msgpack_containers_round_trip),
        CASE(msgpack_shapes_lua_cannot_keep), CASE(msgpack_values_lua_refuses),
        CASE(refuses_function_with_path), CASE(refuses_thread_and_userdata),
        CASE(depth_limit), CASE(push_depth_limit),
        CASE(pack_args_clears_and_packs_range), CASE(small_error_buffer),
    };
    size_t n = sizeof tests / sizeof tests[0];

    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < n; i++)
            puts(tests[i].name);
        return 0;
    }
    if (argc == 2) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(argv[1], tests[i].name) == 0) {
                const struct CMUnitTest one[] = {tests[i]};
                return cmocka_run_group_tests_name(tests[i].name, one, NULL, NULL);
            }
        fprintf(stderr, "test_lua_values: no case named '%s' (try --list)\n", argv[1]);
        return 2;
    }
    if (argc > 2) {
        fprintf(stderr, "usage: test_lua_values [--list | CASE]\n");
        return 2;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
