-- libs.lua - test hook: ingot's Lua library works inside the sandbox.
local decimal = require "ingot.decimal"
local slug = require "ingot.slug"
local check = require "ingot.check"
local text = require "ingot.text"

return {
  transform = function(row)
    row.name = slug.slugify(row.name)
    row.color = decimal.round(decimal.parse(row.color, { thousands = "," }), 1)
    row.qty = tostring(check.email(row.qty)) .. "/" .. tostring(check.url(row.note))
    row.note = text.title(ingot.version and "ok" or "no version")
    return row
  end,
}
