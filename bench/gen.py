#!/usr/bin/env python3
"""gen.py - deterministic CSV generator for the benchmarks.

  gen.py items N OUT      item_master rows: name,description,category,brand,is_active
  gen.py variants N OUT   items.yaml rows (one per variant):
                          item_name,description,category,brand,color,color_code,size,sku,price,stock
  gen.py items-half N OUT every other row of `items N`, with other descriptions
"""
import random
import sys

CATS = ["Tops", "Bottoms", "Outerwear", "Accessories", "Footwear"]
BRANDS = ["Northwind", "Harbor & Pine", "Fjell", "Maison Léa", "Kite"]
COLORS = [("Red", "#CC0000"), ("Navy Blue", "#1F2A44"), ("Gray", "#8A8D91"),
          ("White", "#FFFFFF"), ("Forest Green", "#2E5E3A"), ("Black", "#111111"),
          ("Mustard", "#D4A017"), ("Sky", "#87CEEB")]
SIZES = ["XS", "S", "M", "L", "XL", "XXL"]


def items(n, out, half=False):
    rnd = random.Random(42)
    with open(out, "w", encoding="utf-8") as f:
        f.write("name,description,category,brand,is_active\n")
        for i in range(n):
            desc = "Item %d, %s" % (i, "v2" if half else "first edition")
            if half and i % 2:
                continue
            f.write('Item %07d,"%s",%s,%s,%s\n' % (
                i, desc, rnd.choice(CATS), rnd.choice(BRANDS),
                "true" if i % 7 else "false"))


def variants(n, out):
    rnd = random.Random(43)
    per_item = len(COLORS) * len(SIZES)
    with open(out, "w", encoding="utf-8") as f:
        f.write("item_name,description,category,brand,color,color_code,size,sku,price,stock\n")
        for i in range(n):
            item, v = divmod(i, per_item)
            color, code = COLORS[v // len(SIZES)]
            size = SIZES[v % len(SIZES)]
            f.write('Item %07d,"Item %d",%s,%s,%s,%s,%s,SKU-%07d-%02d,%d.%02d,%d\n' % (
                item, item, CATS[item % 5], BRANDS[item % 5], color, code, size,
                item, v, rnd.randint(5, 300), rnd.randint(0, 99), rnd.randint(0, 500)))


if __name__ == "__main__":
    kind, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    if kind == "items":
        items(n, out)
    elif kind == "items-half":
        items(n, out, half=True)
    elif kind == "variants":
        variants(n, out)
    else:
        sys.exit("unknown kind " + kind)
