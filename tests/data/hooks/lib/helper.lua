-- helper.lua - a module that a test hook requires from the pipeline path.
return {
  shout = function(s) return s:upper() .. "!" end,
}
