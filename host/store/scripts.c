/* scripts.c - the Lua scripts of spec 12.3, Berth's own scripts of the
 * periodic scheduler, and the EVALSHA runner; see scripts.h for the
 * KEYS/ARGV of each script.
 *
 * Status codes inside the scripts (spec 4.1): Pending 0, Scheduled 1,
 * Running 2, Stopped/Error/Success 3; anything unknown or missing is 0.
 *
 * The SHA1 of a script is learnt from the first SCRIPT LOAD in this process
 * and cached (it depends only on the source, not on the server). A NOSCRIPT
 * reply (Redis restarted, SCRIPT FLUSH, another server behind the same URL)
 * loads the script again and retries once. */
#include "store/scripts.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Shared Lua helpers, pasted at the top of the scripts that need them. */
#define LUA_CODES                                                            \
	"local codes = {Pending = 0, Scheduled = 1, Running = 2,\n"          \
	"  Stopped = 3, Error = 3, Success = 3}\n"                           \
	"local function code(s)\n"                                           \
	"  if type(s) ~= 'string' then return 0 end\n"                      \
	"  return codes[s] or 0\n"                                           \
	"end\n"                                                              \
	"local function is_final(s)\n"                                       \
	"  return type(s) == 'string' and codes[s] == 3\n"                  \
	"end\n"

/* HINCRBY inprogress id -1 and HDEL the field when the result is <= 0.
 * A malformed counter (HINCRBY error) is removed as well: the script must
 * not stop half-way after its other writes. */
#define LUA_DEC_INPROGRESS                                                   \
	"local function dec_inprogress(key, id)\n"                           \
	"  local n = redis.pcall('HINCRBY', key, id, -1)\n"                  \
	"  if type(n) ~= 'number' or n <= 0 then\n"                          \
	"    redis.call('HDEL', key, id)\n"                                   \
	"  end\n"                                                            \
	"end\n"

/* spec 4.3 as a function: cas(stats key, NS:job_track:inprogress, target,
 * caller revision, now, job id) returns true, or false and the stored
 * status (nil when absent). Berth: a final status of a job without
 * web_hook_url removes its in-progress field at once (no hook, so no ACK
 * will ever come). */
#define LUA_CAS                                                              \
	LUA_CODES LUA_DEC_INPROGRESS                                         \
	"local function cas(skey, track, target, crev, now, id)\n"          \
	"  local res = redis.call('HMGET', skey, 'status', 'revision',\n"   \
	"    'web_hook_url')\n"                                              \
	"  local stored = res[1]\n"                                          \
	"  local srev = tonumber(res[2]) or 0\n"                             \
	"  crev = tonumber(crev) or 0\n"                                     \
	"  if not (srev < crev or (srev == crev and\n"                       \
	"      (code(stored) < code(target) or stored == target))) then\n"   \
	"    return false, stored\n"                                         \
	"  end\n"                                                            \
	"  redis.call('HMSET', skey, 'status', target, 'update_time', now)\n" \
	"  if is_final(target) then\n"                                       \
	"    local url = res[3]\n"                                           \
	"    if url and url ~= '' then\n"                                    \
	"      dec_inprogress(track, id)\n"                                  \
	"    else\n"                                                         \
	"      redis.call('HDEL', track, id)\n"                              \
	"    end\n"                                                          \
	"    if target == 'Error' then\n"                                    \
	"      redis.call('EXPIRE', skey, 604800)\n"                         \
	"    else\n"                                                         \
	"      redis.call('EXPIRE', skey, 86400)\n"                          \
	"    end\n"                                                          \
	"  end\n"                                                            \
	"  return true\n"                                                    \
	"end\n"

static const char lua_status_cas[] =
	LUA_CAS
	"local ok, stored = cas(KEYS[1], KEYS[2], ARGV[1], ARGV[2],\n"
	"  ARGV[3], ARGV[4])\n"
	"if ok then return 'ok' end\n"
	"return stored\n";

/* spec 4.5 */
static const char lua_reset[] =
	"redis.call('HMSET', KEYS[1], 'status', 'Pending',\n"
	"  'revision', ARGV[1], 'update_time', ARGV[1])\n"
	"redis.call('HDEL', KEYS[1], 'ack', 'check_in', 'check_in_at')\n"
	"redis.call('HSET', KEYS[2], ARGV[2], 2)\n"
	"return 'ok'\n";

/* spec 7.4. A stored ack that does not decode counts as absent. */
static const char lua_ack[] =
	LUA_CODES LUA_DEC_INPROGRESS
	"local res = redis.call('HMGET', KEYS[1], 'revision', 'ack')\n"
	"local nst = ARGV[1]\n"
	"local nrev = tonumber(ARGV[2]) or 0\n"
	"local ncia = tonumber(ARGV[3]) or 0\n"
	"local ack = nil\n"
	"if res[2] then\n"
	"  local ok, v = pcall(cjson.decode, res[2])\n"
	"  if ok and type(v) == 'table' then ack = v end\n"
	"end\n"
	"local accept\n"
	"if ack then\n"
	"  local arev = tonumber(ack['revision']) or 0\n"
	"  accept = arev < nrev or (arev == nrev and\n"
	"    (code(ack['status']) <= code(nst) or ncia ~= 0))\n"
	"else\n"
	"  accept = (tonumber(res[1]) or 0) <= nrev\n"
	"end\n"
	"if not accept then return 'none' end\n"
	"redis.call('HSET', KEYS[1], 'ack', cjson.encode({status = nst,\n"
	"  revision = nrev, check_in_at = ncia}))\n"
	"if is_final(nst) then dec_inprogress(KEYS[2], ARGV[4]) end\n"
	"return 'ok'\n";

/* spec 5.6. Registered = NS:jobs:<name> is one of KEYS[3..]. A member that
 * does not decode (or has no string name) goes to dead unchanged / with
 * the error fields, so one bad member cannot block the requeuer. Berth:
 * with ARGV[3] = "ask", a member of an unregistered type is left in place
 * and the script returns "unknown" (the caller re-reads which types the
 * registered pools serve, then runs the script without "ask"). */
static const char lua_requeue[] =
	"local res = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2],\n"
	"  'LIMIT', 0, 1)\n"
	"if #res == 0 then return nil end\n"
	"local raw = res[1]\n"
	"local now = tonumber(ARGV[2])\n"
	"local ok, j = pcall(cjson.decode, raw)\n"
	"if not ok or type(j) ~= 'table' then\n"
	"  redis.call('ZREM', KEYS[1], raw)\n"
	"  redis.call('ZADD', KEYS[2], ARGV[2], raw)\n"
	"  return 'dead'\n"
	"end\n"
	"if type(j['name']) == 'string' then\n"
	"  local queue = ARGV[1] .. j['name']\n"
	"  for i = 3, #KEYS do\n"
	"    if KEYS[i] == queue then\n"
	"      redis.call('ZREM', KEYS[1], raw)\n"
	"      j['t'] = now\n"
	"      redis.call('LPUSH', queue, cjson.encode(j))\n"
	"      if ARGV[4] then redis.call('SADD', ARGV[4], j['name']) end\n"
	"      return 'ok'\n"
	"    end\n"
	"  end\n"
	"  if ARGV[3] == 'ask' then return 'unknown' end\n"
	"end\n"
	"redis.call('ZREM', KEYS[1], raw)\n"
	"j['err'] = 'unknown job when requeueing'\n"
	"j['failed_at'] = now\n"
	"redis.call('ZADD', KEYS[2], ARGV[2], cjson.encode(j))\n"
	"return 'dead'\n";

/* spec 5.7 */
static const char lua_enqueue_unique[] =
	"if redis.call('SET', KEYS[2], '1', 'NX', 'EX', '86400') then\n"
	"  redis.call('LPUSH', KEYS[1], ARGV[1])\n"
	"  return 'ok'\n"
	"end\n"
	"return 'dup'\n";

static const char lua_enqueue_unique_delayed[] =
	"if redis.call('SET', KEYS[2], '1', 'NX', 'EX', '86400') then\n"
	"  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])\n"
	"  return 'ok'\n"
	"end\n"
	"return 'dup'\n";

/* spec 9.1 */
static const char lua_reenqueue_pool[] =
	"local pool = ARGV[1]\n"
	"for i = 1, #KEYS - 3, 4 do\n"
	"  local inprog, queue = KEYS[i], KEYS[i + 1]\n"
	"  local lock, lock_info = KEYS[i + 2], KEYS[i + 3]\n"
	"  local msg = redis.call('RPOPLPUSH', inprog, queue)\n"
	"  if msg then\n"
	"    if ARGV[3] then\n"
	"      redis.call('SADD', ARGV[2], string.sub(queue, #ARGV[3] + 1))\n"
	"    end\n"
	"    redis.call('DECR', lock)\n"
	"    redis.call('HINCRBY', lock_info, pool, -1)\n"
	"    return {msg, inprog, queue}\n"
	"  end\n"
	"end\n"
	"return nil\n";

static const char lua_stale_locks[] =
	"local pool = ARGV[1]\n"
	"for i = 1, #KEYS - 1, 2 do\n"
	"  local lock, lock_info = KEYS[i], KEYS[i + 1]\n"
	"  local n = tonumber(redis.call('HGET', lock_info, pool))\n"
	"  if n then\n"
	"    redis.call('DECRBY', lock, n)\n"
	"    redis.call('HDEL', lock_info, pool)\n"
	"    if (tonumber(redis.call('GET', lock)) or 0) < 0 then\n"
	"      redis.call('SET', lock, 0)\n"
	"    end\n"
	"  end\n"
	"end\n"
	"return 'ok'\n";

/* spec 8.7 */
static const char lua_zrem_by_id[] =
	"local res = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], ARGV[1])\n"
	"local out = {}\n"
	"for _, raw in ipairs(res) do\n"
	"  local ok, j = pcall(cjson.decode, raw)\n"
	"  if ok and type(j) == 'table' and j['id'] == ARGV[2] then\n"
	"    redis.call('ZREM', KEYS[1], raw)\n"
	"    out[#out + 1] = raw\n"
	"  end\n"
	"end\n"
	"return out\n";

/* spec 8.3 / Q6 */
static const char lua_period_add_once[] =
	"if redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1]) > 0 then\n"
	"  return 0\n"
	"end\n"
	"redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])\n"
	"return 1\n";

/* Q17. Members "<policy>@<epoch>" with the same score sort by epoch, so
 * the oldest come first. */
static const char lua_period_trim[] =
	"local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-1', '-1',\n"
	"  'LIMIT', 0, tonumber(ARGV[2]))\n"
	"local gone = {}\n"
	"for _, id in ipairs(ids) do\n"
	"  if redis.call('EXISTS', ARGV[1] .. id) == 0 then\n"
	"    gone[#gone + 1] = id\n"
	"  end\n"
	"end\n"
	"if #gone > 0 then redis.call('ZREM', KEYS[1], unpack(gone)) end\n"
	"return #gone\n";

/* spec 8.5 */
static const char lua_period_known[] =
	"local r = {}\n"
	"for i = 1, #ARGV do\n"
	"  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then r[i] = 1\n"
	"  else r[i] = 0 end\n"
	"end\n"
	"return r\n";

/* spec 8.4 */
static const char lua_period_unlock[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	"  return redis.call('DEL', KEYS[1])\n"
	"end\n"
	"return 0\n";

/* Berth, spec 5.5 step 4 made idempotent. The effects are those of Go's
 * MULTI/EXEC (LREM, DECR lock, HINCRBY lock_info -1, ZADD of the retry),
 * but only when the LREM removed the message: a finish sent again after
 * its reply was lost (Redis paused, connection cut) changes nothing. */
static const char lua_finish[] =
	"if redis.call('LREM', KEYS[1], 1, ARGV[2]) == 0 then return 0 end\n"
	"redis.call('DECR', KEYS[2])\n"
	"redis.call('HINCRBY', KEYS[3], ARGV[1], -1)\n"
	"if ARGV[4] and KEYS[4] then\n"
	"  redis.call('ZADD', KEYS[4], ARGV[3], ARGV[4])\n"
	"end\n"
	"return 1\n";

/* Berth: a live pool's own in-progress list against what its workers hold
 * (ARGV[2..], exact bytes, repeated when held twice). Every other member
 * goes back to the tail of the queue (fetched next: it was claimed
 * first); lock_info[pool] becomes the number kept and lock moves by the
 * difference (never below 0). */
static const char lua_reconcile[] =
	"local pool = ARGV[1]\n"
	"local held = {}\n"
	"for i = 3, #ARGV do held[ARGV[i]] = (held[ARGV[i]] or 0) + 1 end\n"
	"local items = redis.call('LRANGE', KEYS[1], 0, -1)\n"
	"local kept, moved = 0, 0\n"
	"for _, m in ipairs(items) do\n"
	"  if (held[m] or 0) > 0 then\n"
	"    held[m] = held[m] - 1\n"
	"    kept = kept + 1\n"
	"  else\n"
	"    redis.call('LREM', KEYS[1], 1, m)\n"
	"    redis.call('RPUSH', KEYS[2], m)\n"
	"    moved = moved + 1\n"
	"  end\n"
	"end\n"
	"if moved > 0 then redis.call('SADD', KEYS[5], ARGV[2]) end\n"
	"local share = tonumber(redis.call('HGET', KEYS[4], pool)) or 0\n"
	"if share ~= kept then\n"
	"  local lock = redis.call('INCRBY', KEYS[3], kept - share)\n"
	"  if lock < 0 then redis.call('SET', KEYS[3], 0) end\n"
	"  if kept > 0 then redis.call('HSET', KEYS[4], pool, kept)\n"
	"  else redis.call('HDEL', KEYS[4], pool) end\n"
	"end\n"
	"return {moved, share, kept}\n";

/* Berth, issue 12: the drain's first round trip (scripts.h SCRIPT_CLAIM).
 * Spec 5.4 over the types of NS:berth:ready this pool serves (the others
 * are empty, and a weighted random order restricted to a subset has the
 * distribution of the full order restricted to it), then spec 6.2 steps
 * 1, 2 and 4 (track, decide, Running or reset) and the observation of
 * 5.9, for the message claimed. */
/* The claim as a function of its KEYS and ARGV (SCRIPT_CLAIM alone, and
 * after a completion in SCRIPT_COMPLETE). Notes on its parts:
 *   - `valid` mirrors the field types message_parse (message.c) accepts:
 *     a message the host would drop is left to it untouched;
 *   - the stats: status, revision and kind (what the run needs), all of
 *     them (HGETALL) only for a job with a hook URL, whose status events
 *     carry the whole stats;
 *   - the observation's args are Go JSON of the args: the bytes of the
 *     message itself when it is exactly Go's layout and has no further
 *     field (what Berth and Go enqueue); else the caller writes them;
 *   - nothing claimable (paused, at max_concurrency): the wake-ups of the
 *     messages waiting are spent, unless another pool serves a ready type
 *     this one does not. */
#define LUA_CLAIM_FN \
	"local function claim(KEYS, ARGV)\n" \
	"local pool, now, jp = ARGV[1], ARGV[2], ARGV[3]\n" \
	"local kinds = {name = 'string', id = 'string', err = 'string',\n" \
	"  t = 'number', fails = 'number', failed_at = 'number',\n" \
	"  args = 'table', unique = 'boolean'}\n" \
	"local function valid(m)\n" \
	"  for k, v in pairs(m) do\n" \
	"    if type(k) ~= 'string' then return false end\n" \
	"    local lk = string.lower(k)\n" \
	"    local want = kinds[lk]\n" \
	"    if want then\n" \
	"      if k ~= lk then return false end\n" \
	"      if v ~= cjson.null and (type(v) ~= want or\n" \
	"          (lk == 'args' and #v > 0)) then return false end\n" \
	"    end\n" \
	"  end\n" \
	"  return true\n" \
	"end\n" \
	"if ARGV[11] == '1' then\n" \
	"  local served = redis.call('HKEYS', KEYS[2])\n" \
	"  if #served == 0 and redis.call('EXISTS', KEYS[2]) == 0 then\n" \
	"    return {'types'}\n" \
	"  end\n" \
	"  for _, t in ipairs(served) do\n" \
	"    if redis.call('LLEN', jp .. t) > 0 then\n" \
	"      redis.call('SADD', KEYS[1], t)\n" \
	"    end\n" \
	"  end\n" \
	"end\n" \
	"local ready = redis.call('SMEMBERS', KEYS[1])\n" \
	"if #ready == 0 then\n" \
	"  redis.call('DEL', KEYS[4])\n" \
	"  return nil\n" \
	"end\n" \
	"local prio = redis.call('HMGET', KEYS[2], unpack(ready))\n" \
	"local cand, w, sum = {}, {}, 0\n" \
	"for i, t in ipairs(ready) do\n" \
	"  local p = tonumber(prio[i])\n" \
	"  if p then\n" \
	"    if p < 1 then p = 1 end\n" \
	"    cand[#cand + 1] = t\n" \
	"    w[#w + 1] = p\n" \
	"    sum = sum + p\n" \
	"  end\n" \
	"end\n" \
	"if #cand == 0 then\n" \
	"  if redis.call('EXISTS', KEYS[2]) == 0 then return {'types'} end\n" \
	"  return nil\n" \
	"end\n" \
	"local all_served = #cand == #ready\n" \
	"local seed = (tonumber(ARGV[10]) or 1) % 2147483646 + 1\n" \
	"local n = #cand\n" \
	"while n > 0 do\n" \
	"  local j = 1\n" \
	"  if n > 1 then\n" \
	"    seed = (seed * 16807) % 2147483647\n" \
	"    local r = seed / 2147483647 * sum\n" \
	"    j = n\n" \
	"    for k = 1, n do\n" \
	"      if r < w[k] then j = k break end\n" \
	"      r = r - w[k]\n" \
	"    end\n" \
	"  end\n" \
	"  local t = cand[j]\n" \
	"  sum = sum - w[j]\n" \
	"  cand[j], w[j] = cand[n], w[n]\n" \
	"  cand[n], w[n] = nil, nil\n" \
	"  n = n - 1\n" \
	"  local queue = jp .. t\n" \
	"  if redis.call('EXISTS', queue .. ARGV[6]) == 0 then\n" \
	"    local maxc = tonumber(redis.call('GET', queue .. ARGV[9]))\n" \
	"    local lock = queue .. ARGV[7]\n" \
	"    local active = maxc and maxc ~= 0 and\n" \
	"      tonumber(redis.call('GET', lock))\n" \
	"    if not active or active < maxc then\n" \
	"      local inprog = queue .. ARGV[5]\n" \
	"      local msg = redis.call('RPOPLPUSH', queue, inprog)\n" \
	"      if not msg then\n" \
	"        redis.call('SREM', KEYS[1], t)\n" \
	"      else\n" \
	"        redis.call('INCR', lock)\n" \
	"        redis.call('HINCRBY', queue .. ARGV[8], pool, 1)\n" \
	"        local more = 1\n" \
	"        if redis.call('LLEN', queue) == 0 then\n" \
	"          redis.call('SREM', KEYS[1], t)\n" \
	"          if #ready == 1 then more = 0 end\n" \
	"        end\n" \
	"        local ok, m = pcall(cjson.decode, msg)\n" \
	"        if not ok or type(m) ~= 'table' or not valid(m) or\n" \
	"            type(m.id) ~= 'string' or type(m.name) ~= 'string' then\n" \
	"          return {msg, t, inprog, 'host', more}\n" \
	"        end\n" \
	"        local id = m.id\n" \
	"        if type(m.args) == 'table' and m.args[ARGV[13]] ~= nil then\n" \
	"          local mark = m.args[ARGV[13]]\n" \
	"          if type(mark) ~= 'string' then\n" \
	"            return {msg, t, inprog, 'host', more}\n" \
	"          end\n" \
	"          id = id .. '@' .. mark\n" \
	"        end\n" \
	"        local skey = ARGV[4] .. id\n" \
	"        local f = redis.call('HMGET', skey, 'status', 'revision',\n" \
	"          'kind', 'web_hook_url')\n" \
	"        local status, srev = f[1], f[2]\n" \
	"        local st\n" \
	"        if f[4] and f[4] ~= '' then\n" \
	"          st = redis.call('HGETALL', skey)\n" \
	"        else\n" \
	"          st = {}\n" \
	"          if status then st[#st + 1] = 'status' st[#st + 1] = status end\n" \
	"          if srev then st[#st + 1] = 'revision' st[#st + 1] = srev end\n" \
	"          if f[3] then st[#st + 1] = 'kind' st[#st + 1] = f[3] end\n" \
	"        end\n" \
	"        local decision, rev = 'host', 0\n" \
	"        if not status then\n" \
	"          decision = 'host'\n" \
	"        elseif status == 'Pending' or status == 'Scheduled' then\n" \
	"          redis.call('HMSET', skey, 'status', 'Running',\n" \
	"            'update_time', now)\n" \
	"          decision = 'run'\n" \
	"        elseif status == 'Running' or status == 'Error' then\n" \
	"          rev = tonumber(now)\n" \
	"          local old = tonumber(srev) or 0\n" \
	"          if rev <= old then rev = old + 1 end\n" \
	"          redis.call('HMSET', skey, 'status', 'Running',\n" \
	"            'revision', rev, 'update_time', now)\n" \
	"          redis.call('HDEL', skey, 'ack', 'check_in', 'check_in_at')\n" \
	"          redis.call('HSET', KEYS[3], id, 2)\n" \
	"          decision = 'reset'\n" \
	"        elseif status == 'Stopped' or status == 'Success' then\n" \
	"          decision = 'final'\n" \
	"        end\n" \
	"        if decision == 'host' then\n" \
	"          return {msg, t, inprog, 'host', more}\n" \
	"        end\n" \
	"        local args, exact = '', 1\n" \
	"        if m.args ~= nil and m.args ~= cjson.null then\n" \
	"          exact = 0\n" \
	"          local head = '{\"name\":' .. cjson.encode(m.name) ..\n" \
	"            ',\"id\":' .. cjson.encode(m.id) .. ',\"t\":'\n" \
	"          local tail = '}'\n" \
	"          if m.unique == true then tail = ',\"unique\":true}' end\n" \
	"          local keys = 0\n" \
	"          for _ in pairs(m) do keys = keys + 1 end\n" \
	"          local want = 4\n" \
	"          if m.unique == true then want = 5 end\n" \
	"          local a = string.find(msg, ',\"args\":', 1, true)\n" \
	"          if keys == want and a and\n" \
	"              string.sub(msg, 1, #head) == head and\n" \
	"              string.find(string.sub(msg, #head + 1, a - 1),\n" \
	"                '^%-?%d+$') and\n" \
	"              string.sub(msg, -#tail) == tail then\n" \
	"            args = string.sub(msg, a + 8, #msg - #tail)\n" \
	"            exact = 1\n" \
	"          end\n" \
	"        end\n" \
	"        redis.call('HMSET', KEYS[5], 'job_name', m.name,\n" \
	"          'job_id', m.id, 'started_at', now, 'args', args)\n" \
	"        redis.call('EXPIRE', KEYS[5], ARGV[12])\n" \
	"        return {msg, t, inprog, decision, more, st, rev, exact}\n" \
	"      end\n" \
	"    end\n" \
	"  end\n" \
	"end\n" \
	"if all_served then redis.call('DEL', KEYS[4]) end\n" \
	"return nil\n" \
	"end\n"

static const char lua_claim[] =
	LUA_CLAIM_FN
	"return claim(KEYS, ARGV)\n";

/* Berth, issue 12: the drain's second round trip (scripts.h
 * SCRIPT_COMPLETE): spec 5.5 step 4 as SCRIPT_FINISH, the end of the
 * observation, and the final status (spec 4.3). */
static const char lua_complete[] =
	LUA_CAS LUA_CLAIM_FN
	"local removed = redis.call('LREM', KEYS[1], 1, ARGV[2])\n"
	"if removed == 1 then\n"
	"  redis.call('DECR', KEYS[2])\n"
	"  redis.call('HINCRBY', KEYS[3], ARGV[1], -1)\n"
	"  if ARGV[9] and ARGV[9] ~= '' then\n"
	"    redis.call('ZADD', KEYS[7], ARGV[8], ARGV[9])\n"
	"  end\n"
	"end\n"
	"redis.call('DEL', KEYS[4])\n"
	"local code, stored = 'none', ''\n"
	"if ARGV[3] ~= '' and (removed == 1 or ARGV[7] == 'first') then\n"
	"  local ok, s = cas(KEYS[5], KEYS[6], ARGV[3], ARGV[4], ARGV[5],\n"
	"    ARGV[6])\n"
	"  if ok then code = 'ok' else code, stored = 'mismatch', s or '' end\n"
	"end\n"
	"if ARGV[10] == 'next' then\n"
	"  return {removed, code, stored, claim(\n"
	"    {KEYS[8], KEYS[9], KEYS[6], KEYS[10], KEYS[4]},\n"
	"    {unpack(ARGV, 11, 23)})}\n"
	"end\n"
	"return {removed, code, stored}\n";

/* Berth, the Operations API (scripts.h SCRIPT_SET_MOVE). */
static const char lua_set_move[] =
	"local n = 0\n"
	"for i = 2, #ARGV - 1, 2 do\n"
	"  if redis.call('ZREM', KEYS[1], ARGV[i]) == 1 then\n"
	"    n = n + 1\n"
	"    if ARGV[i + 1] ~= '' then\n"
	"      redis.call('ZADD', KEYS[2], ARGV[1], ARGV[i + 1])\n"
	"    end\n"
	"  end\n"
	"end\n"
	"return n\n";

struct script_def {
	const char *name;
	const char *src;
};

static const struct script_def script_defs[SCRIPT__COUNT] = {
	[SCRIPT_STATUS_CAS] = {"status_cas", lua_status_cas},
	[SCRIPT_RESET] = {"reset", lua_reset},
	[SCRIPT_ACK] = {"ack", lua_ack},
	[SCRIPT_REQUEUE] = {"requeue", lua_requeue},
	[SCRIPT_ENQUEUE_UNIQUE] = {"enqueue_unique", lua_enqueue_unique},
	[SCRIPT_ENQUEUE_UNIQUE_DELAYED] = {"enqueue_unique_delayed",
					   lua_enqueue_unique_delayed},
	[SCRIPT_REENQUEUE_POOL] = {"reenqueue_pool", lua_reenqueue_pool},
	[SCRIPT_STALE_LOCKS] = {"stale_locks", lua_stale_locks},
	[SCRIPT_ZREM_BY_ID] = {"zrem_by_id", lua_zrem_by_id},
	[SCRIPT_PERIOD_ADD_ONCE] = {"period_add_once", lua_period_add_once},
	[SCRIPT_PERIOD_TRIM] = {"period_trim", lua_period_trim},
	[SCRIPT_PERIOD_KNOWN] = {"period_known", lua_period_known},
	[SCRIPT_PERIOD_UNLOCK] = {"period_unlock", lua_period_unlock},
	[SCRIPT_FINISH] = {"finish", lua_finish},
	[SCRIPT_RECONCILE] = {"reconcile", lua_reconcile},
	[SCRIPT_CLAIM] = {"claim", lua_claim},
	[SCRIPT_COMPLETE] = {"complete", lua_complete},
	[SCRIPT_SET_MOVE] = {"set_move", lua_set_move},
};

#define SHA_HEX 40

static pthread_mutex_t sha_lock = PTHREAD_MUTEX_INITIALIZER;
static char sha_cache[SCRIPT__COUNT][SHA_HEX + 1];

static bool
script_id_valid(enum script_id id)
{
	return (int)id >= 0 && id < SCRIPT__COUNT;
}

const char *
script_source(enum script_id id)
{
	return script_id_valid(id) ? script_defs[id].src : NULL;
}

const char *
script_name(enum script_id id)
{
	return script_id_valid(id) ? script_defs[id].name : "unknown";
}

/* Copies the cached SHA into sha; false when none is cached yet. */
static bool
sha_get(enum script_id id, char sha[SHA_HEX + 1])
{
	pthread_mutex_lock(&sha_lock);
	memcpy(sha, sha_cache[id], SHA_HEX + 1);
	pthread_mutex_unlock(&sha_lock);
	return sha[0] != '\0';
}

static void
sha_put(enum script_id id, const char *sha)
{
	pthread_mutex_lock(&sha_lock);
	memcpy(sha_cache[id], sha, SHA_HEX);
	sha_cache[id][SHA_HEX] = '\0';
	pthread_mutex_unlock(&sha_lock);
}

/* SCRIPT LOAD. Returns NULL (sha filled in) on success. On failure returns
 * the error reply (caller frees; a compile error) or NULL with *failed set
 * and err filled in (connection error or an unexpected reply). */
static redisReply *
script_load(struct redis_pool *p, struct berr *err, enum script_id id,
	    char sha[SHA_HEX + 1], bool *failed)
{
	const char *argv[3] = {"SCRIPT", "LOAD", script_defs[id].src};
	*failed = false;
	redisReply *r = redis_command_argv(p, err, 3, argv, NULL);
	if (!r) {
		*failed = true;
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR)
		return r;
	if (r->type != REDIS_REPLY_STRING || r->len != SHA_HEX) {
		berr_set(err, "script %s: SCRIPT LOAD: unexpected reply (type %d)",
			 script_defs[id].name, r->type);
		freeReplyObject(r);
		*failed = true;
		return NULL;
	}
	memcpy(sha, r->str, SHA_HEX);
	sha[SHA_HEX] = '\0';
	freeReplyObject(r);
	sha_put(id, sha);
	return NULL;
}

static bool
reply_is_noscript(const redisReply *r)
{
	return r->type == REDIS_REPLY_ERROR && r->str && r->len >= 8 &&
	       strncmp(r->str, "NOSCRIPT", 8) == 0;
}

redisReply *
script_run_lens(struct redis_pool *p, struct berr *err, enum script_id id,
		int nkeys, const char **keys, const size_t *klens, int nargs,
		const char **args, const size_t *alens)
{
	if (!script_id_valid(id) || nkeys < 0 || nargs < 0 ||
	    (nkeys > 0 && !keys) || (nargs > 0 && !args)) {
		berr_set(err, "script_run: bad arguments");
		return NULL;
	}
	char sha[SHA_HEX + 1];
	bool failed;
	redisReply *r;
	if (!sha_get(id, sha)) {
		r = script_load(p, err, id, sha, &failed);
		if (r || failed)
			return r;
	}

	size_t argc = 3 + (size_t)nkeys + (size_t)nargs;
	const char **argv = xmalloc(argc * sizeof(*argv));
	size_t *lens = xmalloc(argc * sizeof(*lens));
	char numkeys[16];
	snprintf(numkeys, sizeof(numkeys), "%d", nkeys);
	argv[0] = "EVALSHA";
	argv[1] = sha;
	argv[2] = numkeys;
	size_t k = 3;
	for (int i = 0; i < nkeys; i++, k++) {
		argv[k] = keys[i];
		lens[k] = klens ? klens[i] : strlen(keys[i]);
	}
	for (int i = 0; i < nargs; i++, k++) {
		argv[k] = args[i];
		lens[k] = alens ? alens[i] : strlen(args[i]);
	}
	for (k = 0; k < 3; k++)
		lens[k] = strlen(argv[k]);

	r = redis_command_argv(p, err, (int)argc, argv, lens);
	if (r && reply_is_noscript(r)) {
		freeReplyObject(r);
		r = script_load(p, err, id, sha, &failed);
		if (!r && !failed)
			r = redis_command_argv(p, err, (int)argc, argv, lens);
	}
	free(lens);
	free(argv);
	return r;
}

redisReply *
script_run(struct redis_pool *p, struct berr *err, enum script_id id,
	   int nkeys, const char **keys, int nargs, const char **args)
{
	return script_run_lens(p, err, id, nkeys, keys, NULL, nargs, args,
			       NULL);
}

int
scripts_load_all(struct redis_pool *p, struct berr *err)
{
	for (int i = 0; i < SCRIPT__COUNT; i++) {
		char sha[SHA_HEX + 1];
		bool failed;
		redisReply *r = script_load(p, err, (enum script_id)i, sha,
					    &failed);
		if (failed)
			return -1;
		if (r) {
			berr_set(err, "script %s: SCRIPT LOAD: %.*s",
				 script_defs[i].name,
				 (int)(r->len > 500 ? 500 : r->len),
				 r->str ? r->str : "");
			freeReplyObject(r);
			return -1;
		}
	}
	return 0;
}
