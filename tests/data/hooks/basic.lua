-- basic.lua - test hook: one behaviour per value of row.note.
local text = require "ingot.text"
local helper = require "helper"

local M = {}

local modes = {}

function modes.reject(row) return nil, "note says reject" end
function modes.reject_noreason(row) return nil end
function modes.ctxreject(row, ctx)
  ctx:reject("color", "bad color")
  ctx:reject("whole row looks odd")
  return row
end
function modes.numbers(row)
  row.qty = 42
  row.color = 1.5
  row.name = 2^53
  return row
end
function modes.float(row) row.qty = 0.1; row.color = 1e308 * 10; return row end
function modes.tenth(row) row.qty = 0.1; row.color = -12.0; return row end
function modes.bools(row) row.color = true; row.qty = false; return row end
function modes.nullout(row) row.color = ingot.null; row.qty = nil; return row end
function modes.isnull(row)
  row.note = (row.color == ingot.null) and "was null" or "not null"
  return row
end
function modes.newtable(row) return { name = "fresh" } end
function modes.ctx(row, ctx)
  row.note = ("%s/%d/%d/%s"):format(ctx.pipeline, ctx.row, ctx.line,
                                    tostring(ctx.target))
  ctx:log("hello from the hook\nforged line")
  return row
end
function modes.ctxwrite(row, ctx) ctx.row = 5; return row end
function modes.badret(row) return "oops" end
function modes.badkey(row) row[1] = "x"; return row end
function modes.unknowncol(row) row.colour = "x"; return row end
function modes.tablevalue(row) row.color = {}; return row end
function modes.nul(row) row.color = "a\0b"; return row end
function modes.badutf8(row) row.color = "\xff"; return row end
function modes.nothing(row) return end
function modes.error(row) error("boom") end
function modes.error0(row) error("bare", 0) end
function modes.errortable(row) error({}) end
function modes.nilindex(row) local x; return x.y end
function modes.concatnull(row) return row.color .. "!" end
function modes.helper(row) row.name = helper.shout(row.name); return row end
function modes.print(row) print("debug", 1, nil); return row end
function modes.gccount(row) row.qty = collectgarbage("count") > 0; return row end
function modes.unchanged(row) return row end
function modes.bignum(row)
  row.qty = 1e15
  row.color = 1e-320
  row.name = 123456789012.0
  return row
end

-- reasons cut in the middle of a character, or holding a bad byte or a NUL
function modes.reject_cut(row) return nil, "too long: " .. ("Cr\u{e8}me"):sub(1, 3) end
function modes.ctxreject_bad(row, ctx)
  ctx:reject("col\xff", "a\xffb")
  ctx:reject("x\0y")
  return row
end
function modes.error_cut(row) error("bad " .. ("\u{e8}"):sub(1, 1)) end
function modes.reject_long(row) return nil, ("\u{e8}"):rep(600) end
function modes.reject_bad_long(row) return nil, ("\xff"):rep(900) end

function M.transform(row, ctx)
  local f = modes[row.note]
  if f then return f(row, ctx) end
  row.name = text.title(text.squish(row.name))
  return row
end

function M.validate(row, ctx)
  if row.name == "bad" then return nil, "name must not be bad" end
  if row.name == "false" then return false end
  if row.name == "col" then ctx:reject("name", "not this one"); return true end
  if row.name == "none" then return end
  if row.name == "err" then error("validate failed") end
  return true
end

return M
