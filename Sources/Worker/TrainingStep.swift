/// The Worker module runs one training step (DESIGN.md): read shard, encode, all-gather,
/// loss, backward, all-reduce, clip, AdamW. Single-node `srdpr train` uses it with the
/// in-process communicator, so there is one code path for every world size.
public enum WorkerModule {}
