-- ingot.check - pragmatic checks of common text formats. Each returns
-- true, or nil and a reason fit for a reject file. Pure functions: no
-- globals, no I/O; runs under plain Lua 5.4 and inside ingot's hook
-- sandbox. The checks are deliberately strict about shape and lenient
-- about rare RFC corners (quoted local parts, IP literals in e-mail).
local M = {}

local function hostname(host)
  if #host > 253 then return nil, "host name too long" end
  local labels = 0
  for label in (host .. "."):gmatch("(.-)%.") do
    labels = labels + 1
    if label == "" then return nil, "empty label in host name" end
    if #label > 63 then return nil, "host label longer than 63 characters" end
    if not label:match("^[%w%-]+$") then
      return nil, "invalid character in host name"
    end
    if label:sub(1, 1) == "-" or label:sub(-1) == "-" then
      return nil, "host label starts or ends with '-'"
    end
  end
  return labels
end

--- email(s) -> true | nil, why
function M.email(s)
  if type(s) ~= "string" then return nil, "not a string" end
  if #s > 254 then return nil, "address too long" end
  local loc, domain = s:match("^([^@]+)@([^@]+)$")
  if not loc then return nil, "expected one '@' between a name and a domain" end
  if #loc > 64 then return nil, "local part longer than 64 characters" end
  if not loc:match("^[%w!#$%%&'*+/=?^_`{|}~.%-]+$") then
    return nil, "invalid character before '@'"
  end
  if loc:sub(1, 1) == "." or loc:sub(-1) == "." or loc:find("..", 1, true) then
    return nil, "misplaced '.' before '@'"
  end
  local labels, why = hostname(domain)
  if not labels then return nil, why end
  if labels < 2 then return nil, "domain needs a dot" end
  if not domain:match("%.%a%a+$") then return nil, "invalid top-level domain" end
  return true
end

local function ipv4(host)
  local a, b, c, d = host:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return false end
  for _, n in ipairs({ a, b, c, d }) do
    if #n > 3 or tonumber(n) > 255 then return false end
  end
  return true
end

--- url(s) -> true | nil, why. Absolute http or https URLs only.
function M.url(s)
  if type(s) ~= "string" then return nil, "not a string" end
  if #s > 2048 then return nil, "URL too long" end
  if s:find("[%c%s]") then return nil, "URL contains spaces or control characters" end
  local scheme, rest = s:match("^(%a[%w+.%-]*)://(.*)$")
  if not scheme then return nil, "expected scheme://host" end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "only http and https URLs are allowed"
  end
  local authority = rest:match("^[^/?#]*")
  if authority:find("@", 1, true) then return nil, "credentials in URL" end
  local host, port = authority:match("^(.-):(%d*)$")
  if not host then host = authority end
  if port then
    local p = tonumber(port)
    if not p or p < 1 or p > 65535 then return nil, "invalid port" end
  end
  if host == "" then return nil, "missing host" end
  if host:match("^%[[%x:.]+%]$") or ipv4(host) or host:lower() == "localhost" then
    return true
  end
  local labels, why = hostname(host)
  if not labels then return nil, why end
  if labels < 2 then return nil, "host needs a dot" end
  return true
end

return M
