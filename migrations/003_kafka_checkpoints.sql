-- Where each Kafka partition's events have been applied, written in the same transaction as the
-- rows they produced (exactly-once effect: a crash at any instant neither loses nor re-applies an
-- event). One row per (consumer group, topic, partition, buffer shard): a flush worker records,
-- for each shard it owns, the partition's consumed position at the moment it drained that shard;
-- every event of that partition below it whose user lives in the shard is in the committed rows.
-- Keyed by shard, not by worker, so a change of FLUSH_WORKERS keeps every position exact.
-- On assignment a consumer starts the partition at the smallest of its shards' positions and
-- skips, per shard, the events below that shard's own.
CREATE TABLE IF NOT EXISTS kafka_checkpoints (
    consumer_group  VARCHAR(255) NOT NULL,
    topic           VARCHAR(255) NOT NULL,
    kafka_partition INT          NOT NULL,
    shard           SMALLINT     NOT NULL,
    next_offset     BIGINT       NOT NULL,
    updated_at      TIMESTAMP    NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC'),
    PRIMARY KEY (consumer_group, topic, kafka_partition, shard),
    CONSTRAINT check_next_offset_non_negative CHECK (next_offset >= 0)
);
