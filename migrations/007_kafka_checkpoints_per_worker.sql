-- Kafka checkpoints one row per (partition, flush worker) instead of one per (partition, shard).
-- A flush worker owns the buffer shards s with s % FLUSH_WORKERS = its index, drains them all
-- under one lock and records one position for all of them; written per shard, that was
-- partitions x 256 / FLUSH_WORKERS rows in every flush transaction (8,192 with 64 partitions and
-- 2 workers: about 88 ms of PostgreSQL CPU per flush, whatever the flush carried).
-- A row now says: for every shard s with s % shard_modulus = shard, the partition's events below
-- next_offset are in committed rows. Rows written per shard before this migration are the case
-- shard_modulus = 256. A shard's position is the greatest of the rows that cover it (each was true
-- when it committed), so a change of FLUSH_WORKERS keeps every position exact: the view
-- kafka_shard_positions gives them per shard (256: the buffer's shard count).
ALTER TABLE kafka_checkpoints ADD COLUMN IF NOT EXISTS shard_modulus SMALLINT NOT NULL DEFAULT 256;

ALTER TABLE kafka_checkpoints DROP CONSTRAINT IF EXISTS kafka_checkpoints_pkey;
ALTER TABLE kafka_checkpoints
    ADD CONSTRAINT kafka_checkpoints_pkey PRIMARY KEY (consumer_group, topic, kafka_partition, shard_modulus, shard);

ALTER TABLE kafka_checkpoints DROP CONSTRAINT IF EXISTS check_shard_in_modulus;
ALTER TABLE kafka_checkpoints
    ADD CONSTRAINT check_shard_in_modulus CHECK (shard_modulus BETWEEN 1 AND 256 AND shard >= 0 AND shard < shard_modulus);

CREATE OR REPLACE VIEW kafka_shard_positions AS
SELECT c.consumer_group, c.topic, c.kafka_partition, s.shard::SMALLINT AS shard, max(c.next_offset) AS next_offset
FROM kafka_checkpoints AS c
CROSS JOIN LATERAL generate_series(c.shard::INT, 255, c.shard_modulus::INT) AS s(shard)
GROUP BY c.consumer_group, c.topic, c.kafka_partition, s.shard;
