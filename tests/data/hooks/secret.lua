-- secret.lua - lies outside the test hook's Lua path: require must not
-- find it.
return { secret = true }
