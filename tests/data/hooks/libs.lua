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
    -- long runs of spaces cost linear work, well within the budget
    local long = "x" .. (" "):rep(100000) .. "y"
    assert(text.trim("  " .. long .. "  ") == long, "trim")
    assert(decimal.parse((" "):rep(100000) .. "1" .. (" "):rep(100000) .. "2") == nil)
    -- the guarded library functions behave as Lua's
    local t = { 3, 1, 2 }
    table.sort(t)
    table.insert(t, 1, 0)
    table.insert(t, 9)
    assert(table.remove(t, 2) == 1 and table.remove(t) == 9)
    assert(table.concat(t, ",") == "0,2,3" and table.concat(t, "", 2) == "23")
    assert(table.concat(table.move(t, 1, 3, 2, {}), "-", 2, 4) == "0-2-3")
    assert(("ab"):rep(2, "|") == "ab|ab" and ("x"):rep(0) == "" and string.rep("", 5) == "")
    assert(select(2, ("a b c"):gsub("%s", "")) == 2 and ("k=v"):match("(%w)=(%w)") == "k")
    return row
  end,
}
