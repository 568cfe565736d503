-- items.lua - the shipped hook for the items pipeline (examples/items.csv:
-- item_name,description,category,brand,color,color_code,size,sku,price,
-- stock).
--
-- transform normalises what people type differently: colour names
-- ("  navy " -> "Navy Blue", "grey" -> "Gray"), size labels ("small" ->
-- "S", "x-large" -> "XL"), colour codes ("ff0000" -> "#FF0000") and prices
-- with a decimal comma ("12,50" -> "12.50"). validate then refuses a SKU
-- the YAML rules cannot judge, with ctx:reject on its column.
-- SQL NULLs (ingot.null) pass through untouched.
local text = require "ingot.text"
local decimal = require "ingot.decimal"

local M = {}

-- Lower-case, squished spelling -> canonical colour name.
local COLOR_ALIASES = {
  grey = "Gray",
  gray = "Gray",
  navy = "Navy Blue",
  ["navy blue"] = "Navy Blue",
  ["dark grey"] = "Dark Gray",
  ["light grey"] = "Light Gray",
  offwhite = "Off White",
  ["off-white"] = "Off White",
}

-- Lower-case, squished label -> canonical size.
local SIZE_ALIASES = {
  ["extra small"] = "XS",
  ["x-small"] = "XS",
  small = "S",
  medium = "M",
  med = "M",
  large = "L",
  ["x-large"] = "XL",
  ["extra large"] = "XL",
  ["xx-large"] = "XXL",
  ["2xl"] = "XXL",
  ["one size"] = "ONE SIZE",
}

--- color_name(s) -> "Navy Blue" style name (squished, title case,
--- aliases applied). Non-strings pass through.
function M.color_name(s)
  if type(s) ~= "string" then return s end
  local key = text.squish(s):lower()
  return COLOR_ALIASES[key] or text.title(key)
end

--- size_label(s) -> "S", "M", "XL", "42", ... (aliases applied, upper
--- case; numeric sizes such as "42" or "10.5" kept as they are).
function M.size_label(s)
  if type(s) ~= "string" then return s end
  local key = text.squish(s):lower()
  return SIZE_ALIASES[key] or key:upper()
end

--- color_code(s) -> "#RRGGBB" style: spaces removed, upper case, a
--- leading '#' added when missing. Whether it is valid hex is validate's
--- business.
function M.color_code(s)
  if type(s) ~= "string" then return s end
  s = s:gsub("%s+", ""):upper()
  if s == "" then return s end
  if s:sub(1, 1) ~= "#" then s = "#" .. s end
  return s
end

--- price(s) -> canonical decimal string, or nil, why. "12,50" (one comma,
--- no dot, one or two digits after it) is a decimal comma; "1,234.50"
--- uses commas for thousands; "1,234" alone is ambiguous and refused.
function M.price(s)
  if type(s) ~= "string" then return s end
  s = text.trim(s)
  if s == "" then return s end
  local _, commas = s:gsub(",", "")
  if commas == 1 and not s:find(".", 1, true) then
    if s:match(",%d%d?$") then return decimal.parse(s, { decimal = "," }) end
    return nil, "ambiguous price '" .. s .. "': write decimals with a dot"
  end
  local p, why = decimal.parse(s, { thousands = "," })
  if not p then return nil, "price '" .. s .. "': " .. why end
  return p
end

function M.transform(row, ctx)
  row.color = M.color_name(row.color)
  row.size = M.size_label(row.size)
  row.color_code = M.color_code(row.color_code)
  local price, why = M.price(row.price)
  if price then
    row.price = price
  else
    ctx:reject("price", why)
  end
  return row
end

-- validate runs after the pipeline's own rules (items.yaml already checks
-- the colour code pattern, the price's type and minimum), so it only adds
-- what YAML cannot say: a SKU must start with an upper-case letter or a
-- digit (the pattern rule allows lower case for other pipelines' SKUs).
function M.validate(row, ctx)
  local sku = row.sku
  if type(sku) == "string" and not sku:match("^[%u%d]") then
    ctx:reject("sku", "must start with an upper-case letter or a digit")
  end
  return true
end

return M
