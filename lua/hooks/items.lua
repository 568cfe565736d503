-- hooks/items.lua - PLACEHOLDER so pipelines/items.yaml loads in the
-- pipeline branch (a missing hook module is a load error). The real hook
-- (colour-name and size-label normalisation) is written in another branch;
-- on merge, that file replaces this one.
return {
  transform = function(row, ctx) -- luacheck: ignore ctx
    return row
  end,
}
