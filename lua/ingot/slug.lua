-- ingot.slug - URL-safe slugs from UTF-8 text: "Crème Brûlée (Large)" ->
-- "creme-brulee-large". Latin-1 and a few common Latin Extended-A letters
-- are folded to ASCII; any other character separates words. Pure
-- functions: no globals, no I/O; runs under plain Lua 5.4 and inside
-- ingot's hook sandbox.
local M = {}

-- code point -> ASCII replacement
local FOLD = {}
local function map(chars, ascii)
  for _, c in utf8.codes(chars) do FOLD[c] = ascii end
end
map("ÀÁÂÃÄÅ", "A") map("àáâãäå", "a") map("Æ", "AE") map("æ", "ae")
map("Ç", "C") map("ç", "c") map("ÈÉÊË", "E") map("èéêë", "e")
map("ÌÍÎÏ", "I") map("ìíîï", "i") map("Ð", "D") map("ð", "d")
map("Ñ", "N") map("ñ", "n") map("ÒÓÔÕÖØ", "O") map("òóôõöø", "o")
map("ÙÚÛÜ", "U") map("ùúûü", "u") map("Ý", "Y") map("ýÿ", "y")
map("Þ", "TH") map("þ", "th") map("ß", "ss") map("Œ", "OE") map("œ", "oe")
map("Š", "S") map("š", "s") map("Ž", "Z") map("ž", "z") map("Ÿ", "Y")
map("Ł", "L") map("ł", "l")
-- Central European letters that turn up in brand and place names:
-- upper, lower, ASCII
for up, low, ascii in ("ĄąAĆćCĘęEŃńNŚśSŹźZŻżZČčCĎďDĚěEŇňNŘřRŤťTŮůU"):gmatch(
    "(" .. utf8.charpattern .. ")(" .. utf8.charpattern .. ")(%a)") do
  map(up, ascii)
  map(low, ascii:lower())
end

--- fold(s) -> s with accented letters replaced by ASCII ones (other
--- characters kept), or nil, "invalid UTF-8".
function M.fold(s)
  if type(s) ~= "string" then return nil, "not a string" end
  if not utf8.len(s) then return nil, "invalid UTF-8" end
  local out = {}
  for _, c in utf8.codes(s) do
    out[#out + 1] = FOLD[c] or utf8.char(c)
  end
  return table.concat(out)
end

--- slugify(s [, sep]) -> lower-case ASCII words joined by sep (default
--- "-"), or nil, why. An input without any letter or digit gives "".
function M.slugify(s, sep)
  sep = sep or "-"
  local folded, why = M.fold(s)
  if not folded then return nil, why end
  local words = {}
  for w in folded:lower():gmatch("[%w]+") do words[#words + 1] = w end
  return table.concat(words, sep)
end

return M
