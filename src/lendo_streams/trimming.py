"""Bounding a stream's length by removing the entries every group is done with.

An entry may go once every consumer group on the stream has acknowledged it:
it is older than the group's oldest pending entry and not newer than the
last entry the group delivered. Trimming to the smallest such bound over all
groups (XTRIM MINID) never removes an entry that a reader still needs: not
one in flight, not one waiting to be read. MAXLEN, by contrast, counts
entries without looking at the groups and can drop unread ones.

The bound is computed and applied in one Lua script, so no read or
acknowledgement can slip in between. A stream without a group is left alone:
nobody has read it yet, so every entry is still unread.
"""

from redis.asyncio import Redis

_TRIM_ACKNOWLEDGED = """
local function parse(id)
  local dash = string.find(id, '-', 1, true)
  return tonumber(string.sub(id, 1, dash - 1)), tonumber(string.sub(id, dash + 1))
end
local function older(a, b)
  local a_ms, a_seq = parse(a)
  local b_ms, b_seq = parse(b)
  return a_ms < b_ms or (a_ms == b_ms and a_seq < b_seq)
end
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local bound = nil
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local fields = {}
  for i = 1, #group, 2 do
    fields[group[i]] = group[i + 1]
  end
  local keep = fields['last-delivered-id']
  if fields['pending'] > 0 then
    keep = redis.call('XPENDING', KEYS[1], fields['name'])[2]
  end
  if bound == nil or older(keep, bound) then
    bound = keep
  end
end
if bound == nil then
  return 0
end
return redis.call('XTRIM', KEYS[1], 'MINID', bound)
"""


async def trim_acknowledged(redis: "Redis", stream: str) -> int:
    """Remove the entries of ``stream`` that every group has acknowledged; return how many."""
    removed = await redis.eval(_TRIM_ACKNOWLEDGED, 1, stream)
    return int(removed)
