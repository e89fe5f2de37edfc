#!lua name=@FUNCTION@
-- sharedfs: every operation on the shared state, one atomic Redis function call each (a
-- function library, loaded once: FCALL sets up nothing per call, EVALSHA ran this whole file
-- each time; @FUNCTION@ is replaced by a name derived from this text, store.py FUNCTION).
-- ARGV: op, key prefix, mount id, change-log length, deadline (Redis time in ns after which
-- a change must not be applied: its caller has given up; '' for none), then the operation's
-- arguments.
-- KEYS[1] is the change-log sequence key: it names the prefix's hash slot for a cluster.
-- Calls are not rolled back on error: every check comes before the first write.
-- Times are nanosecond strings (Lua numbers are doubles); sizes stay below 2^53.
-- The call being run (set by the function below, read by the helpers):
-- ARGV[3] is "MOUNT_ID/STORE_ID": the id this mount's store had at init ('' until then)
local KEYS, ARGV, op, P, maxlen, me, want
local PAGE = 4096
local MAX_SIZE = 1125899906842624  -- 2^50 bytes
local S_IFMT, S_IFDIR, S_IFREG, S_IFLNK = 61440, 16384, 32768, 40960
local S_ISUID, S_ISGID, S_IXGRP = 2048, 1024, 8

local function ik(i) return P .. ':i:' .. i end  -- inode: hash of attributes
local function dk(i) return P .. ':d:' .. i end  -- directory: name -> inode
local function ck(i) return P .. ':c:' .. i end  -- content: page index -> bytes (head)
local function tk(i) return P .. ':t:' .. i end  -- content: page index -> the page's tail
local function xk(i) return P .. ':x:' .. i end  -- extended attributes
local function hk(i) return P .. ':h:' .. i end  -- mounts holding the inode open

local function fail(e) error({err = e}) end
local function now()
  local t = redis.call('TIME')
  return t[1] .. string.format('%06d', tonumber(t[2])) .. '000'
end
local function num(v) return tonumber(v) or fail('EIO corrupt value') end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- whole numbers as exact decimal strings (tostring() and redis.call() keep 14 digits only)
local function fmt(n) return string.format('%d', n) end
local function bit(v, b) return math.floor(v / b) % 2 == 1 end
local function mode_in(m)  -- an inode's mode field (nil: no such inode)
  if not m then fail('ENOENT') end
  return num(m)
end
local function mode_of(i) return mode_in(redis.call('HGET', ik(i), 'mode')) end
-- an open file's inode number names the same file only while its creation time is the one
-- seen at open (a store restored from a backup may have given the number to a new file)
local function same_file(i, crtime)
  if crtime ~= '' and redis.call('HGET', ik(i), 'crtime') ~= crtime then fail('ESTALE') end
end
local function is_dir(m) return m - m % 4096 == S_IFDIR end
local function ftype(m) return math.floor(m / 4096) * 4096 end
local function dir_mode_in(m)  -- a directory's mode field
  m = mode_in(m)
  if ftype(m) ~= S_IFDIR then fail('ENOTDIR') end
  return m
end
local function dir_mode(i) return dir_mode_in(redis.call('HGET', ik(i), 'mode')) end
local function answer(a, i, pages)  -- an inode's fields as a reply: with blocks and ino
  table.insert(a, 'blocks')
  table.insert(a, fmt(pages * 8))
  table.insert(a, 'ino')
  table.insert(a, tostring(i))
  return a
end
local function attrs(i)
  local a = redis.call('HGETALL', ik(i))
  if #a == 0 then fail('ENOENT') end
  return answer(a, i, redis.call('HLEN', ck(i)))
end
-- A record of mount m's change; returns its sequence number. It rings the bell of every
-- other mount following the log (a list of at most one element, that mount's follower waits
-- on it), not m's: m's follower skips m's records, so they need not wake it. (pcall: a key
-- of another type there, written by hand, must not fail a change half made; an error reply
-- is a table ipairs() walks as empty. A follower replaces such a key.)
local function log_as(m, ...)
  local seq = redis.call('INCR', KEYS[1])
  redis.call('XADD', P .. ':log', 'MAXLEN', '~', maxlen, '*', 'm', m, 's', seq, ...)
  for _, f in ipairs(redis.pcall('SMEMBERS', P .. ':followers')) do
    if f ~= m and redis.pcall('LLEN', P .. ':bell:' .. f) == 0 then
      redis.pcall('RPUSH', P .. ':bell:' .. f, 1)
    end
  end
  return seq
end
local function log(...) return log_as(me, ...) end
-- mount m's heartbeat (:alive:MOUNT) expired: it crashed or was cut off
local function gone(m) return redis.call('EXISTS', P .. ':alive:' .. m) == 0 end
local function touch(i, t, data)  -- and count the change in the inode's version 'v'
  redis.call('HINCRBY', ik(i), 'v', 1)
  if data then
    redis.call('HSET', ik(i), 'mtime', t, 'ctime', t)
  else
    redis.call('HSET', ik(i), 'ctime', t)
  end
end
local function free_if_unused(i)
  local n = num(redis.call('HGET', ik(i), 'nlink'))
  if n > 0 then return end
  if redis.call('SCARD', hk(i)) > 0 then
    redis.call('SADD', P .. ':orphans', i)  -- freed when the last mount holding it closes it
    return
  end
  -- UNLINK: a large file's pages are freed by Redis in the background, not in this script
  redis.call('UNLINK', ik(i), dk(i), ck(i), tk(i), xk(i), hk(i))
  redis.call('SREM', P .. ':orphans', i)
  redis.call('HDEL', P .. ':dropping', i)
  redis.call('DECR', P .. ':count')
end

-- Pages: a page's first HEAD bytes are a value of ck(i), any rest one of tk(i). 4096 bytes
-- in one value take 5 KiB of Redis's memory (jemalloc rounds the 4102 bytes it allocates up to
-- its 5 KiB class); 4090 bytes fill a 4 KiB allocation exactly, and the 6-byte tail costs ~64.
local HEAD = PAGE - 6
local function page_of(head, tail)  -- a page from its two parts (nil: a hole)
  if not head then return nil end
  if tail then return head .. tail end
  return head
end
local function get_page(i, f)
  return page_of(redis.call('HGET', ck(i), f), redis.call('HGET', tk(i), f))
end
local function set_page(i, f, data)
  if #data > HEAD then
    redis.call('HSET', ck(i), f, string.sub(data, 1, HEAD))
    redis.call('HSET', tk(i), f, string.sub(data, HEAD + 1))
  else
    redis.call('HSET', ck(i), f, data)
    redis.call('HDEL', tk(i), f)
  end
end
local function drop_page(i, f)
  redis.call('HDEL', ck(i), f)
  redis.call('HDEL', tk(i), f)
end

-- page helpers: bytes [a, b) of a file inside page p
local function put(i, off, data)
  local pos, n = 1, #data
  local heads, tails = {}, {}  -- whole pages: set in one HSET per hash
  while pos <= n do
    local o = off + pos - 1
    local p = math.floor(o / PAGE)
    local within = o - p * PAGE
    local take = math.min(PAGE - within, n - pos + 1)
    local piece = string.sub(data, pos, pos + take - 1)
    if within == 0 and take == PAGE then
      local f = fmt(p)
      table.insert(heads, f)
      table.insert(heads, string.sub(piece, 1, HEAD))
      table.insert(tails, f)
      table.insert(tails, string.sub(piece, HEAD + 1))
      if #heads >= 2000 then  -- (unpack() takes at most ~8,000 values)
        redis.call('HSET', ck(i), unpack(heads))
        redis.call('HSET', tk(i), unpack(tails))
        heads, tails = {}, {}
      end
    else
      local old = get_page(i, fmt(p)) or ''
      if #old < within then old = old .. string.rep('\0', within - #old) end
      set_page(i, fmt(p), string.sub(old, 1, within) .. piece .. string.sub(old, within + take + 1))
    end
    pos = pos + take
  end
  if #heads > 0 then
    redis.call('HSET', ck(i), unpack(heads))
    redis.call('HSET', tk(i), unpack(tails))
  end
end
-- The pages [first, last] of a file may hold: the range itself when shorter than the list of
-- pages the file has (so a small range of a large file costs the range, not the file).
local function pages_in(i, first, last)
  if last - first + 1 <= redis.call('HLEN', ck(i)) then
    local out = {}
    for p = first, last do table.insert(out, fmt(p)) end
    return out
  end
  return redis.call('HKEYS', ck(i))
end
local function zero(i, a, b)  -- make [a, b) a hole (whole pages dropped, partial ones zeroed)
  if b <= a then return end
  local first, last = math.floor(a / PAGE), math.floor((b - 1) / PAGE)
  for _, f in ipairs(pages_in(i, first, last)) do
    local p = tonumber(f)
    if p and p >= first and p <= last then
      local s, e = math.max(a, p * PAGE) - p * PAGE, math.min(b, (p + 1) * PAGE) - p * PAGE
      if s == 0 and e == PAGE then
        drop_page(i, f)
      else
        local old = get_page(i, f)
        if old and #old > s then
          local new = string.sub(old, 1, s) .. string.rep('\0', math.min(e, #old) - s) .. string.sub(old, e + 1)
          if string.find(new, '[^%z]') then set_page(i, f, new) else drop_page(i, f) end
        end
      end
    end
  end
end
local function trim_at(i, size)  -- the page holding size keeps the bytes before it only
  if size % PAGE == 0 then return end
  local f = fmt(math.floor(size / PAGE))
  local page = get_page(i, f)
  if page then set_page(i, f, string.sub(page, 1, size % PAGE)) end
end
-- Work of cut(): pages copied or dropped, whichever is fewer (at most the pages stored).
local function cut_work(i, size, old)
  if size == 0 then return 0 end
  local last_kept, last = math.floor((size - 1) / PAGE), math.floor((old - 1) / PAGE)
  return math.min(last_kept + 1, last - last_kept, redis.call('HLEN', ck(i)))
end
-- A truncate with too much to drop in one call sets the size and marks the pages from 'g' on
-- as dropped ('drop' removes them in parts). While marked, nothing may grow the file over
-- them: what would (a write, a truncate or fallocate up, a copy into it) fails with EAGAIN,
-- and the caller drops them first. Each mark is new ('gn' counts them), so a dropper still at
-- work on an earlier one starts again. :dropping holds 'MOUNT MS' per marked inode: the mount
-- that made the mark and when a part was last dropped, so that if that mount dies, or its
-- truncate stops halfway (interrupted, Redis unreachable), another's sweep finishes the drop.
local function growing(i) if redis.call('HEXISTS', ik(i), 'g') == 1 then fail('EAGAIN') end end
local function dropping(i, by) redis.call('HSET', P .. ':dropping', i, by .. ' ' .. now_ms()) end
local function marked_by(i)
  return string.match(redis.call('HGET', P .. ':dropping', i) or '', '^(%S+)')
end
local function unmark(i)
  redis.call('HDEL', ik(i), 'g', 'ge')
  redis.call('HDEL', P .. ':dropping', i)
end
local function cut(i, size, old)  -- drop everything at and after size (old: the size before)
  if size == 0 then  -- all of it: freed in the background however large
    redis.call('UNLINK', ck(i), tk(i))
    unmark(i)
    return
  end
  local last_kept, last = math.floor((size - 1) / PAGE), math.floor((old - 1) / PAGE)
  if last_kept + 1 < last - last_kept and last_kept + 1 < redis.call('HLEN', ck(i)) then
    -- fewer pages kept than dropped: keep those, free the rest in the background
    local kept = {}
    for p = 0, last_kept do kept[p] = get_page(i, fmt(p)) end
    redis.call('UNLINK', ck(i), tk(i))
    for p = 0, last_kept do
      if kept[p] then set_page(i, fmt(p), string.sub(kept[p], 1, size - p * PAGE)) end
    end
    return
  end
  for _, f in ipairs(pages_in(i, math.floor(size / PAGE), last)) do
    local p = tonumber(f)
    if p and p * PAGE >= size then
      drop_page(i, f)
    elseif p and (p + 1) * PAGE > size then
      local page = get_page(i, f)
      if page then set_page(i, f, string.sub(page, 1, size - p * PAGE)) end
    end
  end
end
local function regular(i)
  local m = mode_of(i)
  if is_dir(m) then fail('EISDIR') end
  if ftype(m) ~= S_IFREG then fail('EINVAL') end
  return m
end

-- The call: the rest of the file up to register_function (not indented, one function body)
local function run()
-- init() marks a prefix with an id; a Redis that restarted empty (or lost the keys) has none,
-- which must not look like a file system whose files were all deleted; another file system
-- made under the same prefix (behind the same URL) has another id, whose inode numbers name
-- other files
if op ~= 'init' then
  local id = redis.call('GET', P .. ':id')
  if not id then fail('ENOMEDIUM') end
  if want ~= '' and id ~= want then fail('EXDEV another store') end
end

-- ---------------------------------------------------------------- reads
if op == 'getattr' then
  return attrs(ARGV[6])
elseif op == 'lookup' then
  local parent, name = ARGV[6], ARGV[7]
  dir_mode(parent)
  if name == '.' then return attrs(parent) end
  if name == '..' then return attrs(redis.call('HGET', ik(parent), 'parent')) end
  local child = redis.call('HGET', dk(parent), name)
  if not child then return false end  -- no such name: a nil reply, not an error (cheaper)
  return attrs(child)
elseif op == 'listdir' then  -- directory, cursor ('0' first), count: one page of entries
  -- {next cursor ('0': the last page), the directory's attributes, its parent's, then name,
  -- attributes, ...}: HSCAN, so one call never holds Redis for a whole large directory
  local d = ARGV[6]
  dir_mode(d)
  local page = redis.call('HSCAN', dk(d), ARGV[7], 'COUNT', ARGV[8])
  local out = {page[1], attrs(d), attrs(redis.call('HGET', ik(d), 'parent'))}
  local entries = page[2]
  for k = 1, #entries, 2 do
    table.insert(out, entries[k])
    table.insert(out, attrs(entries[k + 1]))
  end
  return out
elseif op == 'read' then  -- {size, page, page, ...} (false for a hole)
  local i, off, size = ARGV[6], num(ARGV[7]), num(ARGV[8])
  same_file(i, ARGV[9] or '')
  local fsize = num(redis.call('HGET', ik(i), 'size') or fail('ENOENT'))
  local e = math.min(off + size, fsize)
  if e <= off then return {fmt(fsize)} end
  local pages = {}
  for p = math.floor(off / PAGE), math.floor((e - 1) / PAGE) do table.insert(pages, fmt(p)) end
  local heads = redis.call('HMGET', ck(i), unpack(pages))
  local tails = redis.call('HMGET', tk(i), unpack(pages))
  local got = {fmt(fsize)}
  for k = 1, #pages do got[k + 1] = page_of(heads[k], tails[k]) or false end
  return got
elseif op == 'readlink' then
  return redis.call('HGET', ik(ARGV[6]), 'target') or fail('EINVAL')
elseif op == 'getxattr' then
  mode_of(ARGV[6])
  return redis.call('HGET', xk(ARGV[6]), ARGV[7]) or fail('ENODATA')
elseif op == 'listxattr' then
  mode_of(ARGV[6])
  return redis.call('HKEYS', xk(ARGV[6]))
elseif op == 'seek' then  -- SEEK_DATA (3) / SEEK_HOLE (4) by pages
  -- ARGV[9]: the page to go on from ('' at first), ARGV[10]: pages per call. A file of up to
  -- 4 x that many pages: its page list at once; more: page by page from the offset, that
  -- many per call (so none holds Redis long). Returns {offset}, or {'more', the page to go on
  -- from}.
  local i, off, whence, at, n = ARGV[6], num(ARGV[7]), num(ARGV[8]), ARGV[9], num(ARGV[10])
  local fsize = num(redis.call('HGET', ik(i), 'size') or fail('ENOENT'))
  if off >= fsize then fail('ENXIO') end
  local p = math.floor(off / PAGE)
  if at == '' and redis.call('HLEN', ck(i)) <= 4 * n then
    local have = {}
    for _, f in ipairs(redis.call('HKEYS', ck(i))) do have[tonumber(f)] = true end
    if whence == 3 then
      local best
      for q in pairs(have) do if q >= p and (not best or q < best) then best = q end end
      if not best or best * PAGE >= fsize then fail('ENXIO') end
      return {fmt(math.max(off, best * PAGE))}
    end
    while have[p] and p * PAGE < fsize do p = p + 1 end
    return {fmt(math.min(math.max(off, p * PAGE), fsize))}
  end
  local from, last = at == '' and p or num(at), math.floor((fsize - 1) / PAGE)
  local want = whence == 3 and 1 or 0  -- SEEK_DATA: the first page there; SEEK_HOLE: missing
  for q = from, math.min(from + n - 1, last) do
    if redis.call('HEXISTS', ck(i), fmt(q)) == want then return {fmt(math.max(off, q * PAGE))} end
  end
  if from + n - 1 < last then return {'more', fmt(from + n)} end
  if whence == 3 then fail('ENXIO') end
  return {fmt(fsize)}
elseif op == 'seekscan' then  -- SEEK_DATA in a file of many pages, by its stored pages:
  -- ARGV[7] the offset, ARGV[8] an HSCAN cursor ('0' at first), ARGV[9] pages per call
  -- (HSCAN returns the pages' bytes too: fewer than a walk's).
  -- Returns {the next cursor ('0': done), the size, the first page at or after the offset's
  -- among this call's ('' if none)}: as many calls as pages stored / that many, however long
  -- the hole (looking page by page, a 1 TiB hole took 65,536 calls).
  local i, off, n = ARGV[6], num(ARGV[7]), ARGV[9]
  local fsize = redis.call('HGET', ik(i), 'size') or fail('ENOENT')
  local p, best = math.floor(off / PAGE), nil
  local got = redis.call('HSCAN', ck(i), ARGV[8], 'COUNT', n)
  local fields = got[2]
  for k = 1, #fields, 2 do
    local q = tonumber(fields[k])
    if q and q >= p and (not best or q < best) then best = q end
  end
  return {got[1], fsize, best and fmt(best) or ''}
elseif op == 'statfs' then
  return {redis.call('GET', P .. ':count') or '0'}
end

-- ---------------------------------------------------------------- changes
local t = now()
if ARGV[5] ~= '' and tonumber(t) > num(ARGV[5]) then fail('ETIMEDOUT') end  -- too late
if op == 'init' then  -- the root directory, once per prefix
  if redis.call('EXISTS', ik(1)) == 0 then
    redis.call('HSET', ik(1), 'mode', S_IFDIR + 493, 'nlink', 2, 'uid', ARGV[6], 'gid', ARGV[7],
               'rdev', 0, 'size', 0, 'atime', t, 'mtime', t, 'ctime', t, 'parent', 1, 'x', 0,
               'crtime', t)
    redis.call('SET', P .. ':ino', 1)
    redis.call('SET', P .. ':count', 1)
  end
  redis.call('SET', P .. ':id', ARGV[8], 'NX')  -- (also on a store made before ids)
  return redis.call('GET', P .. ':id')
elseif op == 'mknod' then  -- parent, name, mode, rdev, uid, gid, target ('' unless a symlink), hold
  local parent, name, mode, rdev, uid, gid, target = ARGV[6], ARGV[7], num(ARGV[8]), ARGV[9], ARGV[10], ARGV[11], ARGV[12]
  -- The directory, read once: checked, changed in one HSET and answered from what was read
  -- (a command each, not five: its mode, the version, the link count, its attributes after)
  local pa = redis.call('HGETALL', ik(parent))
  local at = {}  -- field -> where its value is in pa
  for k = 1, #pa, 2 do at[pa[k]] = k + 1 end
  local pmode = dir_mode_in(at.mode and pa[at.mode])
  if redis.call('HEXISTS', dk(parent), name) == 1 then fail('EEXIST') end
  if bit(pmode, S_ISGID) then  -- BSD group semantics in setgid directories
    gid = at.gid and pa[at.gid] or gid
    if is_dir(mode) and not bit(mode, S_ISGID) then mode = mode + S_ISGID end
  end
  local dir = is_dir(mode)
  local change = {'v', fmt((tonumber(at.v and pa[at.v]) or 0) + 1), 'mtime', t, 'ctime', t}
  if dir then  -- the new directory's '..'
    table.insert(change, 'nlink')
    table.insert(change, fmt(num(at.nlink and pa[at.nlink]) + 1))
  end
  local i = redis.call('INCR', P .. ':ino')
  local a = {'mode', fmt(mode), 'nlink', dir and '2' or '1', 'uid', uid, 'gid', gid,
             'rdev', rdev, 'size', fmt(ftype(mode) == S_IFLNK and #target or 0), 'atime', t,
             'mtime', t, 'ctime', t, 'parent', parent, 'x', '0',  -- x: how many xattrs
             'crtime', t}  -- the generation: never the same for a reused inode number
  if ftype(mode) == S_IFLNK then
    table.insert(a, 'target')
    table.insert(a, target)
  end
  redis.call('HSET', ik(i), unpack(a))
  if ARGV[13] == '1' then redis.call('SADD', hk(i), me) end
  redis.call('HSET', dk(parent), name, i)
  redis.call('HSET', ik(parent), unpack(change))
  for k = 1, #change, 2 do
    if at[change[k]] then
      pa[at[change[k]]] = change[k + 1]
    else
      table.insert(pa, change[k])
      table.insert(pa, change[k + 1])
    end
  end
  redis.call('INCR', P .. ':count')
  local seq = log('k', 'c', 'p', parent, 'n', name, 'i', i)
  -- the new inode's attributes are those set above, the directory's as changed above (a
  -- directory has no pages): no HGETALL; the directory's as of seq
  return {answer(a, i, 0), answer(pa, parent, 0), seq}
elseif op == 'link' then
  local i, parent, name = ARGV[6], ARGV[7], ARGV[8]
  if is_dir(mode_of(i)) then fail('EPERM') end
  dir_mode(parent)
  if redis.call('HEXISTS', dk(parent), name) == 1 then fail('EEXIST') end
  redis.call('HINCRBY', ik(i), 'nlink', 1)
  touch(i, t, false)
  redis.call('HSET', dk(parent), name, i)
  touch(parent, t, true)
  log('k', 'c', 'p', parent, 'n', name, 'i', i)
  return attrs(i)
elseif op == 'unlink' or op == 'rmdir' then
  local parent, name = ARGV[6], ARGV[7]
  dir_mode(parent)
  local i = redis.call('HGET', dk(parent), name)
  if not i then fail('ENOENT') end
  -- a corrupt record stays removable: a mode that does not parse is a directory only if it
  -- has entries, a link count that does not parse counts one name
  local m = tonumber(redis.call('HGET', ik(i), 'mode'))
  local dir
  if m then dir = is_dir(m) else dir = redis.call('EXISTS', dk(i)) == 1 end
  if op == 'rmdir' and not dir then fail('ENOTDIR') end
  if op == 'unlink' and dir then fail('EISDIR') end
  if dir and redis.call('HLEN', dk(i)) > 0 then fail('ENOTEMPTY') end
  redis.call('HDEL', dk(parent), name)
  local links = tonumber(redis.call('HGET', ik(i), 'nlink')) or (dir and 2 or 1)
  redis.call('HSET', ik(i), 'nlink', fmt(links - (dir and 2 or 1)))
  if dir then redis.call('HINCRBY', ik(parent), 'nlink', -1) end
  touch(i, t, false)
  touch(parent, t, true)
  free_if_unused(i)
  local seq = log('k', 'u', 'p', parent, 'n', name, 'i', i)
  return {i, attrs(parent), seq}
elseif op == 'rename' then  -- p1, n1, p2, n2, flags (1 NOREPLACE, 2 EXCHANGE)
  local p1, n1, p2, n2, flags = ARGV[6], ARGV[7], ARGV[8], ARGV[9], num(ARGV[10])
  dir_mode(p1)
  dir_mode(p2)
  local src = redis.call('HGET', dk(p1), n1)
  if not src then fail('ENOENT') end
  local dst = redis.call('HGET', dk(p2), n2)
  local sdir = is_dir(mode_of(src))
  local function below(d, ancestor)  -- whether directory d is ancestor or inside it
    local seen = 0
    while true do
      if d == ancestor then return true end
      if d == '1' or seen > 10000 then return false end
      d = redis.call('HGET', ik(d), 'parent')
      seen = seen + 1
    end
  end
  if sdir and p1 ~= p2 and below(p2, src) then fail('EINVAL') end
  local function reparent(i, from, to)
    if is_dir(mode_of(i)) and from ~= to then
      redis.call('HINCRBY', ik(from), 'nlink', -1)
      redis.call('HINCRBY', ik(to), 'nlink', 1)
      redis.call('HSET', ik(i), 'parent', to)
    end
  end
  if flags == 2 then
    if not dst then fail('ENOENT') end
    if is_dir(mode_of(dst)) and p1 ~= p2 and below(p1, dst) then fail('EINVAL') end
    redis.call('HSET', dk(p1), n1, dst)
    redis.call('HSET', dk(p2), n2, src)
    reparent(src, p1, p2)
    reparent(dst, p2, p1)
    touch(src, t, false); touch(dst, t, false); touch(p1, t, true); touch(p2, t, true)
    log('k', 'r', 'p', p1, 'n', n1, 'q', p2, 'o', n2, 'i', src, 'd', dst, 'x', '1')
    return {src, dst}
  end
  if dst then
    if flags == 1 then fail('EEXIST') end
    if dst == src then return {src, 0} end
    local ddir = is_dir(mode_of(dst))
    if ddir and not sdir then fail('EISDIR') end
    if sdir and not ddir then fail('ENOTDIR') end
    if ddir and redis.call('HLEN', dk(dst)) > 0 then fail('ENOTEMPTY') end
    redis.call('HINCRBY', ik(dst), 'nlink', ddir and -2 or -1)
    if ddir then redis.call('HINCRBY', ik(p2), 'nlink', -1) end
    touch(dst, t, false)
  end
  redis.call('HDEL', dk(p1), n1)
  redis.call('HSET', dk(p2), n2, src)
  reparent(src, p1, p2)
  touch(src, t, false); touch(p1, t, true); touch(p2, t, true)
  if dst then free_if_unused(dst) end
  log('k', 'r', 'p', p1, 'n', n1, 'q', p2, 'o', n2, 'i', src, 'd', dst or '', 'x', '0')
  return {src, dst or 0}
elseif op == 'write' then  -- inode, offset (-1: at the end), data: returns the new size
  local i, off, data = ARGV[6], num(ARGV[7]), ARGV[8]
  same_file(i, ARGV[9] or '')
  regular(i)
  local was = num(redis.call('HGET', ik(i), 'size'))
  if off < 0 then off = was end
  if off + #data > MAX_SIZE then fail('EFBIG') end
  if off + #data > was then growing(i) end
  put(i, off, data)
  local size = math.max(was, off + #data)
  redis.call('HSET', ik(i), 'size', fmt(size))
  touch(i, t, true)
  log('k', 'w', 'i', i, 'o', fmt(off), 'l', #data)
  return fmt(size)
elseif op == 'setattr' then  -- inode, then name/value pairs: mode uid gid size atime mtime
  local i = ARGV[6]
  local m = mode_of(i)
  local set = {}
  for k = 7, #ARGV, 2 do set[ARGV[k]] = ARGV[k + 1] end
  local old = num(redis.call('HGET', ik(i), 'size'))
  if set.size then
    regular(i)
    if num(set.size) > MAX_SIZE then fail('EFBIG') end
  end
  if set.size then
    local size = num(set.size)
    if size > old then growing(i) end
    if size < old and set.split and cut_work(i, size, old) > num(set.split) then
      -- too much to drop in one call: the pages past the size are marked, dropped in parts
      trim_at(i, size)
      local g, ge = math.floor((size - 1) / PAGE) + 1, math.floor((old - 1) / PAGE)
      local was = redis.call('HMGET', ik(i), 'g', 'ge')  -- an earlier mark: the union
      g, ge = math.min(g, tonumber(was[1]) or g), math.max(ge, tonumber(was[2]) or ge)
      redis.call('HSET', ik(i), 'g', fmt(g), 'ge', fmt(ge))
      redis.call('HINCRBY', ik(i), 'gn', 1)
      dropping(i, me)
    elseif size < old then
      cut(i, size, old)
    end
    redis.call('HSET', ik(i), 'size', set.size)
    touch(i, t, true)
  end
  if set.mode then m = ftype(m) + num(set.mode) % 4096 end
  local owner = (set.uid and set.uid ~= redis.call('HGET', ik(i), 'uid'))
             or (set.gid and set.gid ~= redis.call('HGET', ik(i), 'gid'))
  if owner and not is_dir(m) then  -- Linux drops set-id bits when a file changes owner
    if bit(m, S_ISUID) then m = m - S_ISUID end
    if bit(m, S_ISGID) and bit(m, S_IXGRP) then m = m - S_ISGID end
  end
  redis.call('HSET', ik(i), 'mode', m)
  for _, f in ipairs({'uid', 'gid', 'atime', 'mtime'}) do
    if set[f] then redis.call('HSET', ik(i), f, set[f]) end
  end
  touch(i, t, false)
  if set.size then
    log('k', 't', 'i', i, 'o', fmt(math.min(old, num(set.size))))
  else
    log('k', 'a', 'i', i)
  end
  return attrs(i)
elseif op == 'drop' then  -- inode, cursor, pages per call, the mark ('' first), pages per
  -- scan: drop part of the pages a large truncate marked (pages g to ge). Returns {the next
  -- cursor, the mark}, or {'0', ''} once none is left (the mark cleared); a mark other than
  -- the one given starts again. Page by page ('r' cursors) while the range is no longer than
  -- the pages stored, else by HSCAN (which returns the pages' bytes too: fewer per call).
  -- Nothing anyone can see changes but st_blocks.
  local i, n = ARGV[6], num(ARGV[8])
  local g, ge, gn = unpack(redis.call('HMGET', ik(i), 'g', 'ge', 'gn'))
  if not g or not ge then
    unmark(i)
    return {'0', ''}
  end
  local mark, from, last = g .. '-' .. ge .. '-' .. (gn or '0'), num(g), num(ge)
  local cursor = ARGV[9] == mark and ARGV[7] or ''
  if cursor == '' then
    cursor = (last - from + 1 <= redis.call('HLEN', ck(i))) and ('r' .. g) or '0'
  end
  local done
  if string.sub(cursor, 1, 1) == 'r' then
    local p = num(string.sub(cursor, 2))
    local to = math.min(p + n - 1, last)
    local fs = {}
    for q = p, to do
      table.insert(fs, fmt(q))
      if #fs >= 2000 or q == to then  -- (unpack() takes at most ~8,000 values)
        redis.call('HDEL', ck(i), unpack(fs))
        redis.call('HDEL', tk(i), unpack(fs))
        fs = {}
      end
    end
    done = to >= last
    cursor = 'r' .. fmt(to + 1)
  else
    local got = redis.call('HSCAN', ck(i), cursor, 'COUNT', ARGV[10])
    local fields = got[2]
    for k = 1, #fields, 2 do
      local p = tonumber(fields[k])
      if p and p >= from then drop_page(i, fields[k]) end
    end
    done = got[1] == '0'
    cursor = got[1]
  end
  if done then
    -- st_blocks: the other mounts cached it with the pages counted. The record is the
    -- truncating mount's (whose reply waits for the drop), also when another finished it
    local by = marked_by(i) or me
    unmark(i)
    log_as(by, 'k', 'a', 'i', i)
    return {'0', ''}
  end
  dropping(i, marked_by(i) or me)
  return {cursor, mark}
elseif op == 'fallocate' then  -- inode, mode (1 KEEP_SIZE, 2 PUNCH_HOLE, 16 ZERO_RANGE), off, len
  local i, mode, off, len = ARGV[6], num(ARGV[7]), num(ARGV[8]), num(ARGV[9])
  regular(i)
  if off + len > MAX_SIZE then fail('EFBIG') end
  local size = num(redis.call('HGET', ik(i), 'size'))
  if not bit(mode, 1) and off + len > size then growing(i) end
  if bit(mode, 2) or bit(mode, 16) then zero(i, off, off + len) end
  if not bit(mode, 1) and off + len > size then
    size = off + len
    redis.call('HSET', ik(i), 'size', fmt(size))
  end
  touch(i, t, true)
  log('k', 'w', 'i', i, 'o', fmt(off), 'l', len)
  return 1
elseif op == 'copy' then  -- src, off_in, dst, off_out, len: holes stay holes; returns bytes copied
  local src, oi, dst, oo, len = ARGV[6], num(ARGV[7]), ARGV[8], num(ARGV[9]), num(ARGV[10])
  regular(src)
  regular(dst)
  local ssize = num(redis.call('HGET', ik(src), 'size'))
  len = math.max(0, math.min(len, ssize - oi))
  if oo + len > MAX_SIZE then fail('EFBIG') end
  if len == 0 then return 0 end
  local dsize = num(redis.call('HGET', ik(dst), 'size'))  -- (pages change below, not sizes)
  if oo + len > dsize then growing(dst) end
  local pages = {}
  for p = math.floor(oi / PAGE), math.floor((oi + len - 1) / PAGE) do
    pages[p] = get_page(src, fmt(p))
  end
  zero(dst, oo, oo + len)
  for p = math.floor(oi / PAGE), math.floor((oi + len - 1) / PAGE) do
    local data = pages[p]
    if data then
      local s, e = math.max(oi, p * PAGE), math.min(oi + len, p * PAGE + #data)
      if e > s then put(dst, oo + s - oi, string.sub(data, s - p * PAGE + 1, e - p * PAGE)) end
    end
  end
  if oo + len > dsize then redis.call('HSET', ik(dst), 'size', fmt(oo + len)) end
  touch(dst, t, true)
  log('k', 'w', 'i', dst, 'o', fmt(oo), 'l', len)
  return len
elseif op == 'setxattr' or op == 'removexattr' then
  local i, name = ARGV[6], ARGV[7]
  mode_of(i)
  if op == 'setxattr' then
    redis.call('HSET', xk(i), name, ARGV[8])
  elseif redis.call('HDEL', xk(i), name) == 0 then
    fail('ENODATA')
  end
  redis.call('HSET', ik(i), 'x', redis.call('HLEN', xk(i)))
  touch(i, t, false)
  log('k', 'a', 'i', i)
  return 1
elseif op == 'open' then  -- inode, truncate ('1'), hold ('1'): the first open of a mount holds;
  -- then the names (parent, name, ...) by which the kernel may have reached the inode: one
  -- that names another inode now, or nothing, went stale (ESTALE, listing which by their
  -- places, 0 first, and nothing done: the kernel looks the path up again)
  local i = ARGV[6]
  local m = mode_of(i)
  local stale = {}
  for k = 9, #ARGV - 1, 2 do
    if redis.call('HGET', dk(ARGV[k]), ARGV[k + 1]) ~= i then table.insert(stale, (k - 9) / 2) end
  end
  if #stale > 0 then fail('ESTALE ' .. table.concat(stale, ' ')) end
  if ARGV[7] == '1' and ftype(m) == S_IFREG and num(redis.call('HGET', ik(i), 'size')) > 0 then
    cut(i, 0)
    redis.call('HSET', ik(i), 'size', 0)
    touch(i, t, true)
    log('k', 't', 'i', i, 'o', '0')
  end
  if ARGV[8] == '1' then redis.call('SADD', hk(i), me) end
  return attrs(i)
elseif op == 'unhold' then  -- inodes whose last open of this mount closed
  for k = 6, #ARGV do
    local i = ARGV[k]
    redis.call('SREM', hk(i), me)
    if redis.call('EXISTS', ik(i)) == 1 then free_if_unused(i) end
  end
  return 1
elseif op == 'sweep' then  -- ms: free orphans whose holders are gone (crashed mounts), forget
  -- such mounts' followers; returns {the number freed, then the inodes of large truncates left
  -- half-dropped: by such a mount, or with no part dropped for ms}
  local freed, stale = 0, num(ARGV[6])
  for _, i in ipairs(redis.call('SMEMBERS', P .. ':orphans')) do
    for _, m in ipairs(redis.call('SMEMBERS', hk(i))) do
      if gone(m) then redis.call('SREM', hk(i), m) end
    end
    if redis.call('EXISTS', ik(i)) == 0 then
      redis.call('SREM', P .. ':orphans', i)
    elseif redis.call('SCARD', hk(i)) == 0 then
      free_if_unused(i)
      freed = freed + 1
    end
  end
  for _, f in ipairs(redis.pcall('SMEMBERS', P .. ':followers')) do  -- mounts gone
    if gone(f) then
      redis.call('SREM', P .. ':followers', f)
      redis.call('DEL', P .. ':bell:' .. f)
    end
  end
  local out, t = {freed}, now_ms()
  local marks = redis.call('HGETALL', P .. ':dropping')
  for k = 1, #marks, 2 do
    local i = marks[k]
    local by, last = string.match(marks[k + 1], '^(%S*) ?(%d*)$')
    if redis.call('HEXISTS', ik(i), 'g') == 0 then
      redis.call('HDEL', P .. ':dropping', i)
    elseif gone(by or '')
        or t - (tonumber(last) or 0) > stale then
      table.insert(out, i)
    end
  end
  return out
end
fail('EINVAL unknown operation ' .. op)
end

redis.register_function('@FUNCTION@', function(keys, args)
  KEYS, ARGV = keys, args
  op, P, maxlen = ARGV[1], ARGV[2], ARGV[4]
  me, want = string.match(ARGV[3], '^([^/]*)/?(.*)$')
  return run()
end)
