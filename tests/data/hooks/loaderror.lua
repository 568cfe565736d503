-- loaderror.lua - fails while loading.
local x = nil
return { transform = x.y }
