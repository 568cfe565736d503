-- nohooks.lua - defines no hook at all.
return { helper = function() end }
