local check = require("ingot.check")

describe("ingot.check", function()
  it("accepts ordinary e-mail addresses", function()
    for _, s in ipairs({ "a@example.com", "first.last+tag@mail.example.co.uk",
                         "x_y-z@sub-domain.example.org" }) do
      assert.is_true(check.email(s), s)
    end
  end)
  it("rejects malformed e-mail addresses with a reason", function()
    for _, s in ipairs({ "", "plain", "a@b", "a@@b.com", "a..b@x.com", ".a@x.com",
                         "a@-x.com", "a b@x.com", "a@x.c0m", "a@x..com" }) do
      local ok, why = check.email(s)
      assert.is_nil(ok, s)
      assert.is_string(why)
    end
  end)
  it("accepts http and https URLs", function()
    for _, s in ipairs({ "http://example.com", "https://example.com:8443/a/b?c=d#e",
                         "HTTPS://Example.COM/", "http://localhost:3000",
                         "http://127.0.0.1/x", "http://[::1]/" }) do
      assert.is_true(check.url(s), s)
    end
  end)
  it("rejects other schemes and malformed URLs", function()
    for _, s in ipairs({ "ftp://example.com", "javascript:alert(1)", "example.com",
                         "http://", "http://exa mple.com", "http://user:pw@example.com",
                         "http://example.com:99999", "http://-bad-.com", "file:///etc/passwd" }) do
      local ok, why = check.url(s)
      assert.is_nil(ok, s)
      assert.is_string(why)
    end
    local _, why = check.url("ftp://example.com")
    assert.are.equal("only http and https URLs are allowed", why)
  end)
end)
