-- ingot - stand-in for the host's "ingot" module when hooks run under
-- plain Lua (busted specs, experiments). Inside ingot's sandbox
-- require "ingot" returns the host's own table and this file is never
-- loaded; both offer the same null sentinel shape.
local null = setmetatable({}, {
  __name = "ingot.null",
  __tostring = function() return "ingot.null" end,
  __newindex = function() error("ingot.null is read-only", 2) end,
  __metatable = false,
})

return { null = null, version = "dev" }
