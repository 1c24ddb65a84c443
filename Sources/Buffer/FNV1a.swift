/// 32-bit FNV-1a over the UTF-8 bytes of a string: cheap, stable across runs and processes
/// (unlike `Hasher`, which is seeded per process), so a user always maps to the same shard.
@inlinable
public func fnv1a32(_ string: String) -> UInt32 {
    var hash: UInt32 = 0x811C_9DC5
    for byte in string.utf8 {
        hash ^= UInt32(byte)
        hash &*= 0x0100_0193
    }
    return hash
}
