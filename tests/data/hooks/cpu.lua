-- cpu.lua - test hook: each value of row.what loops for ever on an
-- instruction that does C work in proportion to a string of megabytes,
-- which the instruction budget cannot see; the CPU time limit must stop
-- each soon after it is spent. Any other value returns the row.
local A = {}

-- n MiB of c, made quickly: string.rep loops once per piece
local function big(c, n) return string.rep(string.rep(c, 64 * 1024), 16 * n) end

A.utf8_len = function()
  local a = big("a", 4)
  while true do utf8.len(a) end
end
A.upper = function()
  local a = big("a", 4)
  while true do string.upper(a) end
end
A.less_than = function()
  local a, b = big("a", 16), big("a", 16)
  while true do if a < b then end end
end
A.concat = function()
  local a, b = big("a", 8), big("b", 8)
  while true do local _ = a .. b end
end

-- ordinary work while long strings come and go: many of them at once,
-- dropped out of order, collected; the row passes
A.many_long = function()
  local t, n = {}, 0
  for round = 1, 3 do
    for i = 1, 1500 do t[i] = string.rep(string.char(65 + round), 4096 + i) end
    for i = round, 1500, 2 do t[i] = nil end
    collectgarbage()
    for i = 1, 1500 do if t[i] then n = n + #t[i] // 4096 end end
  end
  t = nil
  collectgarbage()
  return n
end
-- with an 8 MiB string alive the count hook ticks on every instruction;
-- the budget still counts them
A.loop_long = function()
  local a = big("a", 8)
  while true do end
  return a
end

local M = {}

function M.transform(row)
  local f = A[row.what]
  if f then row.out = tostring(f()) end
  return row
end

return M
