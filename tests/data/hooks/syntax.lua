local M = {}
function M.transform(row)
  return row +
end
return M
