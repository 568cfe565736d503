-- 0002_unique_indexes_for_upsert: the partial unique indexes that
-- INSERT .. ON CONFLICT (key) WHERE deleted_at IS NULL needs.
--
-- The seed called this its highest-risk migration: a unique index cannot be
-- built over live duplicates, and PostgreSQL's "could not create unique
-- index" names only one of them. So each index is preceded by a check that
-- lists every duplicated key among live rows (up to 50, with their ids) and
-- says how to fix it, and the whole migration rolls back if any is found.
-- The check is a function, ingot_assert_unique(table, columns, index name),
-- that stays in the database so later migrations adding a master table can
-- call it before their own unique indexes (examples/new-master-table).

-- ingot:up
CREATE FUNCTION ingot_assert_unique(tbl regclass, cols text[], idx text)
RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    collist text := (SELECT string_agg(format('%I', c), ', ') FROM unnest(cols) c);
    dups    text;
    ndup    bigint;
BEGIN
    EXECUTE format(
        'SELECT count(*), string_agg(line, E''\n'') FROM ('
        '  SELECT format(''  (%%s) x%%s: ids %%s'', concat_ws('', '', %1$s), n, ids) AS line'
        '  FROM (SELECT %1$s, count(*) AS n, string_agg(id::text, '','' ORDER BY id) AS ids'
        '        FROM %2$s WHERE deleted_at IS NULL GROUP BY %1$s HAVING count(*) > 1'
        '        ORDER BY %1$s) d'
        '  LIMIT 50) l', collist, tbl)
    INTO ndup, dups;
    IF ndup > 0 THEN
        RAISE EXCEPTION 'cannot create unique index %: % has duplicate live rows on (%)',
            idx, tbl, collist
            USING DETAIL = E'duplicates (key, count, ids):\n' || dups,
                  HINT = 'merge the duplicates or soft-delete all but one '
                         '(UPDATE ... SET deleted_at = now()), then run '
                         '"ingot migrate up" again';
    END IF;
END
$fn$;

SELECT ingot_assert_unique('item_master', ARRAY['name'], 'item_master_name_live_key');
CREATE UNIQUE INDEX item_master_name_live_key
    ON item_master (name) WHERE deleted_at IS NULL;

SELECT ingot_assert_unique('color_master', ARRAY['color_name'], 'color_master_color_name_live_key');
CREATE UNIQUE INDEX color_master_color_name_live_key
    ON color_master (color_name) WHERE deleted_at IS NULL;

SELECT ingot_assert_unique('size_master', ARRAY['size_name'], 'size_master_size_name_live_key');
CREATE UNIQUE INDEX size_master_size_name_live_key
    ON size_master (size_name) WHERE deleted_at IS NULL;

SELECT ingot_assert_unique('item_variant', ARRAY['item_id', 'color_id', 'size_id'], 'item_variant_natural_live_key');
CREATE UNIQUE INDEX item_variant_natural_live_key
    ON item_variant (item_id, color_id, size_id) WHERE deleted_at IS NULL;

SELECT ingot_assert_unique('item_variant', ARRAY['sku'], 'item_variant_sku_live_key');
CREATE UNIQUE INDEX item_variant_sku_live_key
    ON item_variant (sku) WHERE deleted_at IS NULL;

-- ingot:down
DROP INDEX item_variant_sku_live_key;
DROP INDEX item_variant_natural_live_key;
DROP INDEX size_master_size_name_live_key;
DROP INDEX color_master_color_name_live_key;
DROP INDEX item_master_name_live_key;
DROP FUNCTION ingot_assert_unique(regclass, text[], text);
