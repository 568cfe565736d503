-- badfield.lua - transform is not a function.
return { transform = "upper" }
