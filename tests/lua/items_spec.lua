local items = require("hooks.items")
local ingot = require("ingot")

-- A ctx like the host's: records ctx:reject calls.
local function fake_ctx()
  local ctx = { row = 1, line = 2, pipeline = "items", rejects = {} }
  function ctx:reject(column, message)
    self.rejects[#self.rejects + 1] = { column = column, message = message }
  end
  function ctx:log() end
  return ctx
end

local function row(t)
  local r = { item_name = "Tee", description = "", category = "Shirts",
              brand = "Acme", color = "red", color_code = "#FF0000",
              size = "M", sku = "TEE-1", price = "9.99", stock = "3" }
  for k, v in pairs(t or {}) do r[k] = v end
  return r
end

describe("hooks.items", function()
  it("normalises colour names", function()
    assert.are.equal("Navy Blue", items.color_name("  navy "))
    assert.are.equal("Gray", items.color_name("GREY"))
    assert.are.equal("Forest Green", items.color_name("forest   GREEN"))
  end)
  it("normalises size labels and keeps numeric sizes", function()
    assert.are.equal("S", items.size_label("small"))
    assert.are.equal("M", items.size_label(" Medium "))
    assert.are.equal("L", items.size_label("large"))
    assert.are.equal("XL", items.size_label("x-large"))
    assert.are.equal("XL", items.size_label("Extra  Large"))
    assert.are.equal("XS", items.size_label("xs"))
    assert.are.equal("42", items.size_label("42"))
    assert.are.equal("10.5", items.size_label("10.5"))
  end)
  it("upper-cases colour codes and adds the '#'", function()
    assert.are.equal("#FF00AA", items.color_code("ff00aa"))
    assert.are.equal("#ABC", items.color_code(" #abc "))
    assert.are.equal("", items.color_code(""))
  end)
  it("reads a decimal comma and refuses an ambiguous one", function()
    assert.are.equal("12.50", items.price("12,50"))
    assert.are.equal("1234.50", items.price("1,234.50"))
    assert.are.equal("9.99", items.price(" 9.99 "))
    local p, why = items.price("1,234")
    assert.is_nil(p)
    assert.matches("ambiguous", why)
  end)
  it("transforms a whole row and returns it", function()
    local ctx = fake_ctx()
    local r = row({ color = "grey", size = "small", color_code = "ff0000", price = "12,50" })
    local out = items.transform(r, ctx)
    assert.are.equal(r, out)
    assert.are.equal("Gray", out.color)
    assert.are.equal("S", out.size)
    assert.are.equal("#FF0000", out.color_code)
    assert.are.equal("12.50", out.price)
    assert.are.equal(0, #ctx.rejects)
  end)
  it("leaves NULLs alone", function()
    local ctx = fake_ctx()
    local out = items.transform(row({ color = ingot.null, size = ingot.null,
                                      price = ingot.null }), ctx)
    assert.are.equal(ingot.null, out.color)
    assert.are.equal(ingot.null, out.size)
    assert.are.equal(ingot.null, out.price)
    assert.are.equal(0, #ctx.rejects)
  end)
  it("rejects an ambiguous price on its column", function()
    local ctx = fake_ctx()
    items.transform(row({ price = "1,234" }), ctx)
    assert.are.equal(1, #ctx.rejects)
    assert.are.equal("price", ctx.rejects[1].column)
  end)
  it("validates the sku's first character", function()
    local ctx = fake_ctx()
    assert.is_true(items.validate(row(), ctx))
    assert.are.equal(0, #ctx.rejects)
    items.validate(row({ sku = "tee-1" }), ctx)
    assert.are.equal(1, #ctx.rejects)
    assert.are.equal("sku", ctx.rejects[1].column)
  end)
end)
