-- bench_trivial.lua - the cheapest possible hook: hands every row back.
-- Used by bench/run.sh to measure the fixed cost of crossing into Lua.
return {
  transform = function(row, ctx)
    return row
  end,
}
