-- ingot.text - string helpers for hook authors (UTF-8 aware where it
-- matters). Pure functions: no globals, no I/O.
local M = {}

--- Remove leading and trailing whitespace. Non-strings pass through.
--- Linear in the length: a pattern such as "%s+$" retries from every
--- space of a long run (quadratic), which the hook sandbox's instruction
--- budget would stop.
function M.trim(s)
  if type(s) ~= "string" then return s end
  local first = s:find("%S")
  if first == nil then return "" end
  return s:sub(first, #s + 1 - s:reverse():find("%S"))
end

--- Trim and collapse every run of whitespace to one space.
function M.squish(s)
  if type(s) ~= "string" then return s end
  return (M.trim(s):gsub("%s+", " "))
end

--- Length in characters (UTF-8 code points); nil, "invalid UTF-8" if the
--- string is not valid UTF-8.
function M.len(s)
  local n = utf8.len(s)
  if n == nil then return nil, "invalid UTF-8" end
  return n
end

--- Title-case ASCII words: "navy blue" -> "Navy Blue".
function M.title(s)
  if type(s) ~= "string" then return s end
  return (s:lower():gsub("(%a)([%w']*)", function(a, b) return a:upper() .. b end))
end

return M
