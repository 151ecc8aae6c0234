// Coordinator users also see the worker-side checkpoint types (TrainerState, TrainingCheckpoint,
// ModelFiles), which moved to Worker because rank 0 writes the checkpoints of a multi-node job.
@_exported import Worker
