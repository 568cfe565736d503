-- brands_spec.lua - the hook of examples/new-master-table
-- (examples/new-master-table/lua/hooks/brands.lua) under plain Lua 5.4.
-- busted puts ingot's lua/ on the path; the example's own lua/ is added
-- here, as the pipeline loader does for <pipeline dir>/../lua/.
package.path = "examples/new-master-table/lua/?.lua;" .. package.path

local brands = require("hooks.brands")
local ingot = require("ingot")

-- A ctx like the host's: records ctx:reject calls.
local function fake_ctx()
  local ctx = { row = 1, line = 2, pipeline = "brand_master", rejects = {} }
  function ctx:reject(column, message)
    self.rejects[#self.rejects + 1] = { column = column, message = message }
  end
  function ctx:log() end
  return ctx
end

-- A row as the host builds it: the CSV's fields plus slug (read by the
-- pipeline, absent from the file, so NULL).
local function row(t)
  local r = { name = "Northwind", country = "us",
              website = "https://northwind.example.com", slug = ingot.null }
  for k, v in pairs(t or {}) do r[k] = v end
  return r
end

describe("hooks.brands", function()
  it("builds the slug from the name, folding accents", function()
    local ctx = fake_ctx()
    local r = brands.transform(row({ name = "Maison Léa" }), ctx)
    assert.are.equal("maison-lea", r.slug)
    assert.are.equal("strasse-sohne", brands.slug_of("Straße & Söhne"))
    assert.are.equal("lodz-textiles", brands.slug_of("Łódź Textiles"))
    assert.are.equal("bianchi-rossi-co", brands.slug_of("Bianchi, Rossi & Co."))
    assert.are.same({}, ctx.rejects)
  end)

  it("ignores surrounding and repeated spaces in the name", function()
    assert.are.equal("urban-thread", brands.slug_of("  Urban   Thread  "))
  end)

  it("rejects a name without a letter or digit on the slug column", function()
    local ctx = fake_ctx()
    brands.transform(row({ name = "!!! ---" }), ctx)
    assert.are.equal(1, #ctx.rejects)
    assert.are.equal("slug", ctx.rejects[1].column)
    assert.matches("no letter or digit", ctx.rejects[1].message)
  end)

  it("leaves the slug NULL when the name is NULL (the required rule reports it)", function()
    local ctx = fake_ctx()
    local r = brands.transform(row({ name = ingot.null }), ctx)
    assert.are.equal(ingot.null, r.slug)
    assert.are.same({}, ctx.rejects)
  end)

  it("upper-cases and trims the country", function()
    local r = brands.transform(row({ country = " de " }), fake_ctx())
    assert.are.equal("DE", r.country)
    assert.are.equal("NO", brands.country_code("no"))
    assert.are.equal(ingot.null, brands.country_code(ingot.null))
  end)

  it("keeps a good website, trimmed", function()
    local ctx = fake_ctx()
    local r = brands.transform(row({ website = " https://urbanthread.example.ca " }), ctx)
    assert.are.equal("https://urbanthread.example.ca", r.website)
    assert.are.same({}, ctx.rejects)
  end)

  it("rejects a website without a scheme on the website column", function()
    local ctx = fake_ctx()
    brands.transform(row({ website = "www.tatra-trail.example.sk" }), ctx)
    assert.are.same({ { column = "website", message = "expected scheme://host" } },
                    ctx.rejects)
  end)

  it("rejects other schemes and credentials", function()
    for site, why in pairs({
      ["ftp://files.example.com"] = "only http and https URLs are allowed",
      ["https://user:pw@example.com"] = "credentials in URL",
    }) do
      local ctx = fake_ctx()
      brands.transform(row({ website = site }), ctx)
      assert.are.equal("website", ctx.rejects[1].column)
      assert.are.equal(why, ctx.rejects[1].message)
    end
  end)

  it("accepts a NULL website", function()
    local ctx = fake_ctx()
    local r = brands.transform(row({ website = ingot.null }), ctx)
    assert.are.equal(ingot.null, r.website)
    assert.are.same({}, ctx.rejects)
  end)

  it("reports a bad slug and a bad website of the same row together", function()
    local ctx = fake_ctx()
    brands.transform(row({ name = "???", website = "example.com" }), ctx)
    assert.are.equal(2, #ctx.rejects)
    assert.are.equal("slug", ctx.rejects[1].column)
    assert.are.equal("website", ctx.rejects[2].column)
  end)
end)
