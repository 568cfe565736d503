-- luapat_diff.lua - run by tests/unit/test_luapat.c: compares ingot's
-- budgeted find/match/gmatch/gsub (the global table `pat`) with the string
-- library's on fixed and generated cases. Returns the number of cases and
-- a list of mismatches (at most 20 described).
local sf, sm, sgm, sgs = string.find, string.match, string.gmatch, string.gsub
local pf, pm, pgm, pgs = pat.find, pat.match, pat.gmatch, pat.gsub

local function norm(ok, ...)
  local r = table.pack(ok, ...)
  if not ok then
    -- only the name a 'bad argument' message gives the function differs
    r[2] = tostring(r[2]):gsub("to '[^']*'", "to 'F'")
  end
  for i = 1, r.n do r[i] = tostring(r[i]) end
  return table.concat(r, "\1", 1, r.n)
end

local function iter(gm, s, p, init)
  local ok, it = pcall(gm, s, p, init)
  if not ok then return norm(false, it) end
  local out = {}
  for _ = 1, 50 do
    local r = table.pack(pcall(it))
    out[#out + 1] = norm(table.unpack(r, 1, r.n))
    if not r[1] or r[2] == nil then break end
  end
  return table.concat(out, "\2")
end

local cases, bad = 0, {}
local function same(what, a, b, ...)
  cases = cases + 1
  if a ~= b and #bad < 20 then
    local args = table.pack(...)
    for i = 1, args.n do args[i] = string.format("%q", tostring(args[i])) end
    bad[#bad + 1] = string.format("%s(%s): library %q, ingot %q", what,
      table.concat(args, ", ", 1, args.n), a, b)
  end
end

local function check(s, p, init, repl, n)
  same("find", norm(pcall(sf, s, p, init)), norm(pcall(pf, s, p, init)), s, p, init)
  same("find plain", norm(pcall(sf, s, p, init, true)), norm(pcall(pf, s, p, init, true)), s, p, init)
  same("match", norm(pcall(sm, s, p, init)), norm(pcall(pm, s, p, init)), s, p, init)
  same("gmatch", iter(sgm, s, p, init), iter(pgm, s, p, init), s, p, init)
  same("gsub", norm(pcall(sgs, s, p, repl, n)), norm(pcall(pgs, s, p, repl, n)), s, p, repl, n)
end

-- Fixed cases: the manual's examples, edge positions and every error.
local fixed = {
  {"hello world", "o w"}, {"hello world", "l+"}, {"hello", ""}, {"", ""},
  {"", "^$"}, {"abc", "^"}, {"abc", "$"}, {"a$b", "$b"}, {"a^b", "a^b"},
  {"hello world from Lua", "%a+"}, {"from=world, to=Lua", "(%w+)=(%w+)"},
  {"THE (quick) fox", "%f[%a]%a+"}, {"THE (quick) fox", "%((%a+)%)"},
  {"x = (a(b)c)", "%b()"}, {"[[x]]", "%b[]"}, {"abc", "%bac"},
  {"  trim me  ", "^%s*(.-)%s*$"}, {"key = value", "(%w+)%s*=%s*(%w+)"},
  {"hello hello", "(h%a+) %1"}, {"abcabc", "()(abc)()"}, {"abc", "()"},
  {"aaa", "a-b"}, {"aaab", "a-b"}, {"aaa", "^a-$"}, {"abc", "[a-]"},
  {"a-c", "[a-]"}, {"]", "[]]"}, {"^", "[^^]"}, {"x^", "[%^x]+"},
  {"a.b", "%."}, {"10.5kg", "%d+%.?%d*"}, {"\0a\0", "%z"}, {"\0a\0", "\0a"},
  {"a\0b", "[\0]"}, {"abc", "%"}, {"abc", "[a"}, {"abc", "[^"},
  {"abc", "(a"}, {"abc", "a)"}, {"abc", "%1"}, {"abc", "(a)%2"},
  {"abc", "(a%1)"}, {"abc", "%f"}, {"abc", "%fa"}, {"abc", "%b"},
  {"abc", "%ba"}, {"abc", "(()"}, {"aaa", string.rep("(a)", 33)},
  {"abc", string.rep("a?", 210)}, {"abc", string.rep("(", 40)},
  {"hello", "l", 4}, {"hello", "l", -2}, {"hello", "l", -100},
  {"hello", "l", 10}, {"hello", "", 6}, {"hello", "", 7}, {"hello", "^h", 0},
  {"one two  three", "%s*"}, {"abc", ".-"}, {"abc", "x*"},
  {"ÀÉ", "[\128-\255]+"}, {"tab\tnl\n", "%c"}, {"A1_b", "[%w_]+"},
  {"A1_b", "[%W]"}, {"a1", "%D"}, {"aB", "%u%l"}, {"x1f", "%x+"},
  {"!?", "%p+"}, {"a b", "%g+"}, {"12", 5}, {12345, "3"}, {"a", "(.)()%1"},
}
for _, c in ipairs(fixed) do
  for _, repl in ipairs({"<%0>", "%1-%1", "%%", "x%", "%2", "%a",
                         function(a, b) return b or a end,
                         {hello = "HI", a = false, l = 7, b = {}}, 42}) do
    for _, n in ipairs({false, 1, 0, -1}) do
      check(c[1], c[2], c[3], repl, n or nil)
    end
  end
end
-- argument errors
for _, args in ipairs({{}, {"a"}, {nil, "a"}, {{}, "a"}, {"a", {}},
                       {"a", "a", "x"}, {"a", "a", 1.5}}) do
  same("find args", norm(pcall(sf, table.unpack(args, 1, 3))),
       norm(pcall(pf, table.unpack(args, 1, 3))), "args")
  same("gsub args", norm(pcall(sgs, table.unpack(args, 1, 3))),
       norm(pcall(pgs, table.unpack(args, 1, 3))), "args")
  same("gmatch args", norm(pcall(sgm, table.unpack(args, 1, 3))),
       norm(pcall(pgm, table.unpack(args, 1, 3))), "args")
end
same("gsub repl type", norm(pcall(sgs, "a", "a", true)),
     norm(pcall(pgs, "a", "a", true)), "a", "a", true)
same("gsub bad value", norm(pcall(sgs, "a", "a", function() return {} end)),
     norm(pcall(pgs, "a", "a", function() return {} end)), "a", "a", "fn")

-- Generated cases: short subjects over a small alphabet, patterns built
-- from every kind of item, quantifier, anchor, capture and error.
math.randomseed(20261204)
local chars = {"a", "b", "c", " ", "(", ")", "%", ".", "1", "-", "\0", "\200"}
local items = {"a", "b", ".", "%a", "%d", "%s", "%w", "%A", "%S", "%%",
               "%.", "[ab]", "[^a]", "[a-c]", "[%s%d]", "[%]]", "[]a]",
               "[b-]", "%b()", "%bab", "%f[%a]", "%f[%A]", "%1", "%2", "(",
               ")", "()", "\0", "[\0-a]", " ", "-", "%z", "[", "%"}
local quants = {"", "", "", "*", "+", "-", "?"}
local function subject()
  local t = {}
  for i = 1, math.random(0, 10) do t[i] = chars[math.random(#chars)] end
  return table.concat(t)
end
local function pattern()
  local t = {}
  if math.random(4) == 1 then t[#t + 1] = "^" end
  for _ = 1, math.random(0, 6) do
    t[#t + 1] = items[math.random(#items)] .. quants[math.random(#quants)]
  end
  if math.random(4) == 1 then t[#t + 1] = "$" end
  return table.concat(t)
end
local repls = {"<%0>", "[%1]", "%2%1", "", "%%", "%", "%x", "-"}
for _ = 1, 12000 do
  local s, p = subject(), pattern()
  local init = math.random(5) == 1 and math.random(-12, 12) or nil
  local repl = repls[math.random(#repls)]
  if math.random(6) == 1 then repl = function(a) return a and (a .. "!") end end
  check(s, p, init, repl, math.random(5) == 1 and math.random(0, 3) or nil)
end
return cases, bad
