-- brands.lua - the hook for examples/new-master-table (brand_master.yaml;
-- CSV: name,country,website).
--
-- transform runs before the pipeline's own transforms and rules, so the
-- values it leaves are what the rules then check:
--   slug     derived from the name: "Maison Léa" -> "maison-lea"
--   country  trimmed and upper-cased: " de" -> "DE" (the enum checks it)
--   website  trimmed, then refused with a reason unless it is an absolute
--            http(s) URL without credentials (ingot.check.url)
-- A name that yields no slug ("!!!") is refused on the slug column. SQL
-- NULLs (ingot.null) pass through untouched.
local slug = require "ingot.slug"
local check = require "ingot.check"
local text = require "ingot.text"

local M = {}

--- slug_of(name) -> "maison-lea", or nil, why. NULL in, NULL out.
function M.slug_of(name)
  if type(name) ~= "string" then return name end
  local s, why = slug.slugify(name)
  if not s then return nil, why end
  if s == "" then return nil, "the name has no letter or digit to build a slug from" end
  return s
end

--- country_code(s) -> "DE": trimmed, upper case. NULL in, NULL out.
function M.country_code(s)
  if type(s) ~= "string" then return s end
  return text.trim(s):upper()
end

function M.transform(row, ctx)
  local s, why = M.slug_of(row.name)
  if s then row.slug = s else ctx:reject("slug", why) end

  row.country = M.country_code(row.country)

  local site = text.trim(row.website)
  if type(site) == "string" and site ~= "" then
    local ok, reason = check.url(site)
    if not ok then ctx:reject("website", reason) end
  end
  row.website = site
  return row
end

return M
