-- Fencing for the Kafka checkpoints: which member of a consumer group owns each partition, as an
-- epoch that grows by one every time a member is assigned the partition. The assignee bumps it in
-- the transaction that reads the partition's checkpoints; every flush transaction that records a
-- checkpoint first takes a share lock on the rows of its partitions and checks that their epochs
-- are still its own. A member that lost a partition without committing what it had read from it
-- (a revocation during a database outage, a session that timed out while it was stalled) is
-- therefore refused: its late commit would re-apply events the new owner has read again from the
-- stored positions. The share lock orders the two: either the old member commits first and the
-- new one reads its checkpoint, or the new one claims first and the old one is fenced.
CREATE TABLE IF NOT EXISTS kafka_partition_owners (
    consumer_group  VARCHAR(255) NOT NULL,
    topic           VARCHAR(255) NOT NULL,
    kafka_partition INT          NOT NULL,
    epoch           BIGINT       NOT NULL,
    owner           VARCHAR(255) NOT NULL,
    claimed_at      TIMESTAMP    NOT NULL DEFAULT (NOW() AT TIME ZONE 'UTC'),
    PRIMARY KEY (consumer_group, topic, kafka_partition),
    CONSTRAINT check_epoch_positive CHECK (epoch > 0)
);
