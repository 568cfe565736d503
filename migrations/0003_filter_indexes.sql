-- 0003_filter_indexes: indexes for the columns the application filters on.
--
-- Built with CREATE INDEX CONCURRENTLY so a live application keeps writing
-- to the tables while they build; that cannot run inside a transaction, so
-- this file is marked no-transaction and its statements run one by one.
-- IF NOT EXISTS / IF EXISTS make a re-run after a partial failure safe.

-- ingot:no-transaction
-- ingot:up
CREATE INDEX CONCURRENTLY IF NOT EXISTS item_master_category_idx
    ON item_master (category) WHERE deleted_at IS NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS item_master_brand_idx
    ON item_master (brand) WHERE deleted_at IS NULL;
CREATE INDEX CONCURRENTLY IF NOT EXISTS item_master_updated_at_idx
    ON item_master (updated_at);
CREATE INDEX CONCURRENTLY IF NOT EXISTS item_variant_updated_at_idx
    ON item_variant (updated_at);

-- ingot:down
DROP INDEX CONCURRENTLY IF EXISTS item_variant_updated_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS item_master_updated_at_idx;
DROP INDEX CONCURRENTLY IF EXISTS item_master_brand_idx;
DROP INDEX CONCURRENTLY IF EXISTS item_master_category_idx;
