import CRdKafka

/// librdkafka's partition lists, to and from `TopicPartition`s, and the group's committed offsets.
extension KafkaConsumer {
    static func makeList(_ partitions: [TopicPartition]) -> UnsafeMutablePointer<rd_kafka_topic_partition_list_t> {
        let list = rd_kafka_topic_partition_list_new(Int32(partitions.count))!
        for partition in partitions {
            rd_kafka_topic_partition_list_add(list, partition.topic, partition.partition)
        }
        return list
    }

    /// The offsets the group committed in Kafka for `partitions` (only those it committed), or
    /// nil if the coordinator did not answer in 10 s.
    static func committedOffsets(rk: OpaquePointer, _ partitions: [TopicPartition]) -> [TopicPartition: Int64]? {
        let list = makeList(partitions)
        defer { rd_kafka_topic_partition_list_destroy(list) }
        guard rd_kafka_committed(rk, list, 10_000) == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        var offsets: [TopicPartition: Int64] = [:]
        for i in 0..<Int(list.pointee.cnt) {
            let element = list.pointee.elems[i]
            guard element.err == RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
            if element.offset >= 0 {
                offsets[TopicPartition(topic: String(cString: element.topic), partition: element.partition)] = element.offset
            }
        }
        return offsets
    }

    static func partitions(of list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
        (0..<Int(list.pointee.cnt)).map { i in
            let element = list.pointee.elems[i]
            return TopicPartition(topic: String(cString: element.topic), partition: element.partition)
        }
    }
}
