/// A topic and one of its partitions.
public struct TopicPartition: Hashable, Sendable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32

    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// One consumed record, copied out of librdkafka's buffers.
public struct KafkaRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var key: [UInt8]?
    public var value: [UInt8]
    /// The record's `content-type` header, when it has one.
    public var contentType: String?

    public init(topic: String, partition: Int32, offset: Int64, key: [UInt8]?, value: [UInt8], contentType: String?) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.key = key
        self.value = value
        self.contentType = contentType
    }

    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }
}
