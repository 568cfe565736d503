-- ingot.decimal - exact decimal numbers as strings, for prices and
-- quantities: parse with locale separators, compare, round half away from
-- zero. No floating point anywhere, so "0.1" stays 0.1 and 19.99 never
-- becomes 19.989999. Pure functions: no globals, no I/O; runs under plain
-- Lua 5.4 and inside ingot's hook sandbox.
--
-- A canonical decimal is "-?D+(.D+)?": no "+", no separators, no leading
-- zeros in the integer part (but "0.5"), no exponent, and no "-0".
local text = require "ingot.text"

local M = {}

local function canonical(neg, int, frac)
  int = int:gsub("^0+", "")
  if int == "" then int = "0" end
  local zero = int == "0" and not frac:find("[1-9]")
  local s = int
  if frac ~= "" then s = s .. "." .. frac end
  if neg and not zero then s = "-" .. s end
  return s
end

-- Split a canonical decimal into sign, integer and fraction digits.
local function split(s)
  local sign, int, frac = s:match("^(%-?)(%d+)%.?(%d*)$")
  return sign == "-", int, frac
end

--- parse(s [, opts]) -> canonical string | nil, why
--- opts.decimal: the decimal mark (default "."); opts.thousands: a
--- grouping separator to accept (default none), only between groups of
--- three digits. Surrounding whitespace is ignored.
function M.parse(s, opts)
  if type(s) ~= "string" then return nil, "not a string" end
  opts = opts or {}
  local dec = opts.decimal or "."
  local th = opts.thousands
  if #dec ~= 1 or (th and #th ~= 1) or th == dec then
    error("ingot.decimal.parse: separators must be distinct single characters", 2)
  end
  s = text.trim(s)
  local sign, body = s:match("^([+-]?)(.*)$")
  if body == "" then return nil, "empty number" end
  local int, frac = body, ""
  local at = body:find(dec, 1, true)
  if at then
    int, frac = body:sub(1, at - 1), body:sub(at + 1)
    if frac == "" or frac:find("%D") then
      return nil, "invalid digits after the decimal mark"
    end
  end
  if th and int:find(th, 1, true) then
    local groups = {}
    for g in (int .. th):gmatch("(.-)" .. th:gsub("%p", "%%%0")) do
      groups[#groups + 1] = g
    end
    if not groups[1]:match("^%d%d?%d?$") then
      return nil, "misplaced thousands separator"
    end
    for i = 2, #groups do
      if not groups[i]:match("^%d%d%d$") then
        return nil, "misplaced thousands separator"
      end
    end
    int = table.concat(groups)
  end
  if int == "" and frac ~= "" then int = "0" end
  if int == "" or int:find("%D") then return nil, "not a decimal number" end
  return canonical(sign == "-", int, frac)
end

local function check(s, what)
  local c, why = M.parse(s)
  if not c then error(("ingot.decimal: %s: %s"):format(what, why), 3) end
  return c
end

--- compare(a, b) -> -1, 0 or 1. a and b are decimal strings ("1.50" and
--- "1.5" are equal); raises on anything that is not a decimal.
function M.compare(a, b)
  local na, ia, fa = split(check(a, "first argument"))
  local nb, ib, fb = split(check(b, "second argument"))
  if na ~= nb then return na and -1 or 1 end
  local w = math.max(#fa, #fb)
  fa, fb = fa .. ("0"):rep(w - #fa), fb .. ("0"):rep(w - #fb)
  local r
  if #ia ~= #ib then
    r = #ia < #ib and -1 or 1
  elseif ia ~= ib then
    r = ia < ib and -1 or 1
  elseif fa ~= fb then
    r = fa < fb and -1 or 1
  else
    return 0
  end
  return na and -r or r
end

-- Add one to a string of digits ("199" -> "200").
local function increment(digits)
  local i = #digits
  while i > 0 and digits:sub(i, i) == "9" do i = i - 1 end
  if i == 0 then return "1" .. ("0"):rep(#digits) end
  return digits:sub(1, i - 1) .. string.char(digits:byte(i) + 1)
    .. ("0"):rep(#digits - i)
end

--- round(s, scale) -> string with exactly scale fraction digits, rounded
--- half away from zero ("2.5" -> "3", "-2.5" -> "-3", "1.005" at 2 ->
--- "1.01"). Raises on a bad decimal or scale.
function M.round(s, scale)
  if math.type(scale) ~= "integer" or scale < 0 then
    error("ingot.decimal.round: scale must be a non-negative integer", 2)
  end
  local neg, int, frac = split(check(s, "round"))
  if #frac <= scale then
    frac = frac .. ("0"):rep(scale - #frac)
  else
    local up = frac:byte(scale + 1) >= ("5"):byte()
    local digits = int .. frac:sub(1, scale)
    if up then digits = increment(digits) end
    int, frac = digits:sub(1, #digits - scale), digits:sub(#digits - scale + 1)
    if scale == 0 then int, frac = digits, "" end
  end
  return canonical(neg, int, frac)
end

--- scale(s) -> number of fraction digits of a decimal, or nil, why.
function M.scale(s)
  local c, why = M.parse(s)
  if not c then return nil, why end
  local _, _, frac = split(c)
  return #frac
end

return M
