-- batch.lua - test hook: before_batch/after_batch leave a trace that
-- transform reports in row.note.
local trace = {}

return {
  before_batch = function(ctx)
    trace[#trace + 1] = "before:" .. ctx.pipeline
  end,
  after_batch = function(ctx, s)
    if s.failed > 100 then error("too many failures") end
    trace[#trace + 1] = ("after:%d:%d:%d:%d:%d:%d:%d"):format(s.batch, s.rows,
      s.inserted, s.updated, s.unchanged, s.skipped, s.failed)
  end,
  transform = function(row)
    row.note = table.concat(trace, ",")
    return row
  end,
}
