-- notable.lua - does not return a table.
return 42
