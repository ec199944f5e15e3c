/*
 * lua_values.h: Lua values <-> MessagePack, the glue between scenario code
 * and the engine.
 *
 * Task arguments and results cross processes as msgpack (see impls/engine/pool.h);
 * scenario code speaks Lua. This module converts one way and back, so that a
 * value a scenario hands to a Lua task arrives as the same Lua value.
 *
 * Type mapping, Lua -> msgpack:
 *   nil -> nil, boolean -> bool, integer -> int, float -> float64 (1.0 stays
 *   a float; NaN and inf pass), string -> str (any bytes, zeros included),
 *   table -> array or map (below). Functions, userdata, light userdata and
 *   threads are refused with the path of the offending value.
 *
 * Array or map. A table whose keys are exactly the integers 1..n (n >= 1) is
 * an array; the empty table is an empty array; every other table is a map.
 * So a table with a hole, {1, 2, nil, 4}, is the map {1=1, 2=2, 4=4}: its
 * keys survive as they were, where an array would have to invent a nil or
 * drop the 4. Tables are read raw (no __index, no __pairs): a value is data.
 *
 * Type mapping, msgpack -> Lua:
 *   nil, bool, ints -> integer, float32/float64 -> float, str and bin ->
 *   string, array -> sequence table (1-based), map -> table. A positive int
 *   above math.maxinteger becomes a float, as Lua's own reader does with such
 *   a literal. ext values, and map keys that are nil or NaN (no Lua table can
 *   hold them), raise a Lua error.
 *
 * What does not round-trip, by nature of the two type systems: an empty map
 * comes back as an empty array; a map whose keys are 1..n comes back as an
 * array; nil inside an array or as a map value becomes a hole or a missing
 * key; float32 comes back as float64 and bin as str.
 *
 * Depth. Tables nest up to LUAV_MAX_DEPTH levels; deeper is refused (most
 * likely a cycle), both ways. Note that msgpack-c's C unpacker accepts at
 * most 32 nested containers per message (MSGPACK_EMBED_STACK_SIZE, compiled
 * into libmsgpackc), and a task's args array is one of them.
 */
#ifndef LUA_VALUES_H
#define LUA_VALUES_H

#include <lua.h>
#include <msgpack.h>
#include <stddef.h>

/* 28: msgpack-c unpacks at most 32 nested containers per message, and a
 * value travels inside a message three containers deep (pool_internal.h),
 * so a deeper value would be refused later, with a less clear error. */
#define LUAV_MAX_DEPTH 28

/*
 * Packs the value at stack index idx into pk. Returns 0, or -1 with a
 * message in err (errlen bytes), e.g. "cannot serialize a function (at
 * value.f)"; 256 bytes always hold the whole message, and err may be NULL
 * if errlen is 0. The Lua stack is left
 * as it was either way; on failure pk may hold a partial value, so discard
 * its buffer.
 */
int luav_pack(lua_State *L, int idx, msgpack_packer *pk, char *err, size_t errlen);

/*
 * Pushes the Lua value for o. Like most Lua API calls it may raise a Lua
 * error (out of memory, an ext value, a nil map key), so call it where a
 * Lua error is caught: inside a lua_CFunction or under lua_pcall.
 */
void luav_push(lua_State *L, const msgpack_object *o);

/*
 * Clears out and packs the stack values first..last (a task's positional
 * arguments) as one msgpack array; last < first packs an empty array.
 * Errors as luav_pack, with paths such as "args[2].f" (1-based, as in Lua).
 */
int luav_pack_args(lua_State *L, int first, int last, msgpack_sbuffer *out, char *err,
                   size_t errlen);

/* Pushes each element of a (a->size values), for calling a Lua task. May
 * raise a Lua error, as luav_push. */
void luav_push_args(lua_State *L, const msgpack_object_array *a);

/* A table that reads as the list 1..n (items[i], #items, ipairs) and holds
 * nothing per item: a workload's items = n as a Lua strategy sees them, so
 * that 10^7 items cost no 10^7-entry table. pairs() sees it empty. */
void luav_push_count(lua_State *L, size_t n);
/* Whether the value at idx is such a table; its n into *n. */
bool luav_is_count(lua_State *L, int idx, size_t *n);

#endif
