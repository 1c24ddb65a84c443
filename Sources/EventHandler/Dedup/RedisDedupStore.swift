import Redis

/// The deduplication protocol's storage in Redis: its keys, the values it writes and reads (the
/// codec), its scripts, and the client that carries them. `EventDeduplicator` decides (with
/// `DedupPolicy`); this builds the commands and decodes the replies.
///
/// Keys (namespace `ns` = `AB_NAMESPACE`):
/// - `eh:dedup:{ns}:{event id}`: `p\t{instance}[\t{topic}\t{partition}\t{offset}]` (claimed,
///   with a lease), `k\t{instance}\t{flush}` (marked as committing in that flush, `DEDUP_TTL`),
///   or `c` (committed, `DEDUP_TTL`);
/// - `eh:flush:{ns}:{instance}:{flush}` = `c`: that flush committed (its marks mean committed);
/// - `eh:live:{ns}:{instance}`: present while the instance runs (renewed with the leases).
struct RedisDedupStore: Sendable {
    let client: RedisClient
    /// Names this process in claim values.
    let instance: String
    private let keyPrefix: String
    private let flushPrefix: String
    private let livePrefix: String
    /// `DEDUP_TTL` and `DEDUP_LEASE` in milliseconds, as command arguments.
    private let ttlArgument: String
    private let leaseArgument: String

    init(client: RedisClient, namespace: String, instance: String, ttl: Duration, lease: Duration) {
        self.client = client
        self.instance = instance
        keyPrefix = "eh:dedup:\(namespace):"
        flushPrefix = "eh:flush:\(namespace):"
        livePrefix = "eh:live:\(namespace):"
        ttlArgument = "\(ttl.milliseconds)"
        leaseArgument = "\(lease.milliseconds)"
    }

    // MARK: - Commands

    /// Claims `id` for this process unless a value is there, and reads what was there.
    func claim(_ id: String, kafka: DedupPolicy.KafkaCoordinate?) -> RedisCommand {
        var command = RedisCommand("SET")
        command.append(keyPrefix, id)
        command.append(claimValue(kafka))
        command.append("NX")
        command.append("PX")
        command.append(leaseArgument)
        command.append("GET")
        return command
    }

    /// Claims `id` whatever is there (a takeover the caller has established is safe).
    func overwriteClaim(_ id: String, kafka: DedupPolicy.KafkaCoordinate) -> RedisCommand {
        var command = RedisCommand("SET")
        command.append(keyPrefix, id)
        command.append(claimValue(kafka))
        command.append("PX")
        command.append(leaseArgument)
        return command
    }

    /// Replaces `mark` by our claim, only if the mark is still there (compare-and-set: one
    /// replica wins a takeover). Answers 1 when it did.
    func takeOver(_ id: String, from mark: DedupPolicy.CommittingMark, kafka: DedupPolicy.KafkaCoordinate?) -> RedisCommand {
        var command = RedisCommand("EVAL")
        command.append(
            "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 end return 0")
        command.append("1")
        command.append(keyPrefix, id)
        command.append(mark.value)
        command.append(claimValue(kafka))
        command.append(leaseArgument)
        return command
    }

    /// Deletes our own claim of `id` (compare-and-delete: only ours goes).
    func release(_ id: String) -> RedisCommand {
        var command = RedisCommand("EVAL")
        command.append("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")
        command.append("1")
        command.append(keyPrefix, id)
        command.append(claimValue(nil))
        return command
    }

    /// Marks each id as committing in flush `flush`, with `DEDUP_TTL`.
    func markCommitting(_ ids: [String], flush: Int64) -> [RedisCommand] {
        let value = "k\t\(instance)\t\(flush)"
        return ids.map { id in
            var command = RedisCommand("SET")
            command.append(keyPrefix, id)
            command.append(value)
            command.append("PX")
            command.append(ttlArgument)
            return command
        }
    }

    /// Records that flush `flush` of this process committed: its marks mean committed.
    func flushCommitted(_ flush: Int64) -> RedisCommand {
        var command = RedisCommand("SET")
        command.append(flushPrefix, "\(instance):\(flush)")
        command.append("c")
        command.append("PX")
        command.append(ttlArgument)
        return command
    }

    /// `GET` of the flush key of the flush a mark names.
    func flushKey(of mark: DedupPolicy.CommittingMark) -> RedisCommand {
        var command = RedisCommand("GET")
        command.append(flushPrefix, "\(mark.instance):\(mark.flush)")
        return command
    }

    /// Each id recorded as committed (`c`), with `DEDUP_TTL`: for ids whose mark was not written.
    func record(_ ids: [String]) -> [RedisCommand] {
        ids.map { id in
            var command = RedisCommand("SET")
            command.append(keyPrefix, id)
            command.append("c")
            command.append("PX")
            command.append(ttlArgument)
            return command
        }
    }

    /// A resolved mark becomes `c`, so the next repeat needs no lookup (only if a value is there).
    func upgradeToCommitted(_ id: String) -> RedisCommand {
        var command = RedisCommand("SET")
        command.append(keyPrefix, id)
        command.append("c")
        command.append("PX")
        command.append(ttlArgument)
        command.append("XX")
        return command
    }

    /// Whether `instance` is alive (its live key exists): answers 1 or 0.
    func isAlive(_ instance: String) -> RedisCommand {
        var command = RedisCommand("EXISTS")
        command.append(livePrefix + instance)
        return command
    }

    /// This process's live key, with the lease.
    func live() -> RedisCommand {
        var command = RedisCommand("SET")
        command.append(livePrefix + instance)
        command.append("1")
        command.append("PX")
        command.append(leaseArgument)
        return command
    }

    /// Deletes this process's live key (at shutdown).
    func gone() -> RedisCommand {
        var command = RedisCommand("DEL")
        command.append(livePrefix + instance)
        return command
    }

    /// KEYS: claims to renew; ARGV[1]: our claim value, ARGV[2]: the lease in milliseconds.
    /// Extends our claims and re-creates one that expired while Redis was away. Only a claim
    /// (`p`) is touched: the id's flush may have committed since the list was taken, and its `c`
    /// (or `k`) must keep its own TTL, not be cut to the lease (found by the Redis fault
    /// scenario: a `c` cut to 30 s let a late repeat be applied again).
    static let renewScript = """
        for _, key in ipairs(KEYS) do
          local value = redis.call('GET', key)
          if not value then redis.call('SET', key, ARGV[1], 'PX', ARGV[2])
          elseif string.sub(value, 1, 1) == 'p' then redis.call('PEXPIRE', key, ARGV[2]) end
        end
        return #KEYS
        """

    /// The live key, then the claims of `ids` renewed, 500 keys per script call.
    func renew(_ ids: [String]) -> [RedisCommand] {
        var commands = [live()]
        commands.reserveCapacity(ids.count / 500 + 2)
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = ids[start..<min(start + 500, ids.count)]
            var renew = RedisCommand("EVAL")
            renew.append(Self.renewScript)
            renew.append("\(chunk.count)")
            for id in chunk { renew.append(keyPrefix, id) }
            renew.append(claimValue(nil))
            renew.append(leaseArgument)
            commands.append(renew)
        }
        return commands
    }

    // MARK: - Values

    /// `p`, tab, instance; for a Kafka record also tab, topic, tab, partition, tab, offset.
    func claimValue(_ kafka: DedupPolicy.KafkaCoordinate?) -> String {
        guard let kafka else { return "p\t\(instance)" }
        return "p\t\(instance)\t\(kafka.topic)\t\(kafka.partition)\t\(kafka.offset)"
    }

    /// What a claim's reply says was under the key.
    static func claimReply(_ reply: RedisReply?) -> DedupPolicy.ClaimReply {
        switch reply {
        case .null?:
            return .free
        case .string(let bytes)?:
            let value = String(decoding: bytes, as: UTF8.self)
            if value == "c" { return .committed }
            if let mark = committingMark(from: value) { return .committing(mark) }
            return .claimed(holder(from: value))
        default:
            return .unanswered
        }
    }

    static func committingMark(from value: String) -> DedupPolicy.CommittingMark? {
        let fields = value.split(separator: "\t", omittingEmptySubsequences: false)
        guard fields.count == 3, fields[0] == "k", let flush = Int64(fields[2]) else { return nil }
        return DedupPolicy.CommittingMark(value: value, instance: String(fields[1]), flush: flush)
    }

    static func holder(from value: String) -> DedupPolicy.Holder {
        let fields = value.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
        let instance = fields.count > 1 ? fields[1] : ""
        if fields.count == 5, let partition = Int32(fields[3]), let offset = Int64(fields[4]) {
            return DedupPolicy.Holder(
                instance: instance, kafka: DedupPolicy.KafkaCoordinate(topic: fields[2], partition: partition, offset: offset))
        }
        return DedupPolicy.Holder(instance: instance, kafka: nil)
    }

    /// A flush key's reply: `c` means that flush committed.
    static func saysCommitted(_ reply: RedisReply?) -> Bool {
        if case .string(let bytes)? = reply { return bytes == [UInt8(ascii: "c")] }
        return false
    }

    /// A reply of `SET` (without GET): `OK`.
    static func wrote(_ reply: RedisReply?) -> Bool {
        if case .status? = reply { return true }
        return false
    }
}
