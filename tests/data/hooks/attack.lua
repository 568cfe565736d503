-- attack.lua - test hook: each value of row.what tries to break out of or
-- exhaust the sandbox; any other value does normal work that would notice
-- a poisoned string library.
local A = {}

A.io_open = function() return io.open("/etc/passwd") end
A.os_execute = function() return os.execute("true") end
A.os_exit = function() os.exit(1) end
A.os_getenv = function() return os.getenv("HOME") end
A.os_write = function() os.execute = function() end end
A.require_os = function() return require "os" end
A.require_io = function() return require "io" end
A.require_debug = function() return require "debug" end
A.require_traverse = function() return require "../../etc/passwd" end
A.require_dots = function() return require "..secret" end
A.require_secret = function() return require "secret" end
A.load_dump = function() return load(string.dump(function() end)) end
A.load = function() return load("return 1") end
A.dofile = function() return dofile("/etc/passwd") end
A.loadfile = function() return loadfile("/etc/passwd") end
A.setmeta_G = function() setmetatable(_G, nil) end
A.poison_rep = function() string.rep = function() return "pwned" end end
A.poison_mt = function() getmetatable("").__index = {} end
A.poison_mt2 = function()
  getmetatable("").__index.upper = function() return "pwned" end
end
A.unlock_string = function() setmetatable(string, nil) end
A.rawset_string = function() rawset(string, "rep", print) end
A.rep_bomb = function() return string.rep("x", 1e9) end
A.rep_bomb_pcall = function()
  pcall(string.rep, "x", 1e9)
  return "survived"
end
A.concat_bomb = function()
  local s = "x"
  while true do s = s .. s end
end
A.table_bomb = function()
  local t = {}
  while true do t[#t + 1] = {} end
end
A.loop = function() while true do end end
A.loop_pcall = function()
  pcall(function() while true do end end)
  return "swallowed"
end
A.loop_pcall_many = function()
  for _ = 1, 100 do pcall(function() while true do end end) end
  return "swallowed"
end
A.loop_xpcall = function()
  xpcall(function() while true do end end, function() while true do end end)
  return "swallowed"
end
A.loop_tostring_error = function()
  error(setmetatable({}, { __tostring = function() while true do end end }))
end
A.loop_close = function()
  local guard <close> = setmetatable({}, {
    __close = function() while true do end end })
  while true do end
end
A.recurse = function()
  local function f(n) return 1 + f(n + 1) end
  return f(1)
end
-- C library calls the count hook never interrupts: each charges the
-- instruction budget for its work
A.find_bomb = function()
  return string.find(string.rep("a", 30), string.rep("a-", 15) .. "b")
end
A.find_bomb_method = function()
  return ("a"):rep(40):match(("a*"):rep(20) .. "b")
end
A.find_bomb_pcall = function()
  pcall(string.find, ("a"):rep(30), ("a-"):rep(15) .. "b")
  return "swallowed"
end
A.trim_bomb = function()
  return (string.rep(" ", 200000) .. "x"):gsub("%s+$", "")
end
A.gmatch_bomb = function()
  for _ in ("a"):rep(30):gmatch(("a?"):rep(30) .. "b") do end
end
A.balance_bomb = function() return ("("):rep(100000):find("%b()") end
A.rep_empty = function() return #string.rep("", 1e15) end
A.move_bomb = function() return table.move({}, 1, 1e15, 1) end
A.concat_bomb_index = function()
  return table.concat(setmetatable({}, { __index = table.concat }), "", 1, 1e15)
end
A.remove_bomb = function()
  return table.remove(setmetatable({}, { __len = function() return 1e15 end }), 1)
end
A.insert_bomb = function()
  table.insert(setmetatable({}, { __len = function() return 1e15 end }), 1, "x")
end
A.sort_bomb = function()
  table.sort(setmetatable({}, { __len = function() return 2 ^ 31 - 2 end,
    __index = function() return "" end, __newindex = rawequal }))
end
-- a __len that answers 1, then a huge number: read once, so these end
A.lying_len = function()
  local function liar()
    local calls = 0
    return setmetatable({}, { __len = function()
      calls = calls + 1
      return calls == 1 and 1 or math.maxinteger - 1
    end, __index = rawlen, __newindex = rawequal })
  end
  table.insert(liar(), 1, "x")
  table.remove(liar(), 1)
  table.sort(liar())
  return "ok"
end
A.insert_oob = function() table.insert({}, 5, 1) end
A.concat_catchable = function()
  local ok, e = pcall(table.concat, {}, "", 1, 1e8)
  return ok and "not an error" or e
end
A.plain_find_loop = function()
  local s, p = ("a"):rep(1 << 20), ("a"):rep(15) .. "b"
  while true do s:find(p, 1, true) end
end
A.string_eq_loop = function()
  local a, b = ("x"):rep(1 << 20), ("x"):rep(1 << 20)
  while true do local _ = a == b end
end
A.gc_bomb = function()
  local keep = {}
  for i = 1, 20000 do keep[i] = { i } end
  while true do collectgarbage() end
end
A.gc_stop = function() collectgarbage("stop") end
A.gc_finalizer = function()
  setmetatable({}, { __gc = function() while true do end end })
end
A.debug_sethook = function() return debug.sethook end
A.coroutine = function() return coroutine.create(print) end
A.package = function() return package.loadlib end

local M = {}

function M.transform(row, ctx)
  local f = A[row.what]
  if f then
    row.out = tostring(f())
    return row
  end
  row.out = string.rep("ab", 2) .. ("x"):upper() .. #string.format("%d", 7)
  return row
end

return M
