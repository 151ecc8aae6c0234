import Data
import Model
import Collectives
import JobContracts

/// Every fuzz target, by the name `run.sh TARGET` takes. Adding one is one line here (and a
/// folder of seed inputs under seeds/NAME); a decoder with the usual shape
/// `static func decode(_ bytes: [UInt8]) throws -> Self` needs no other code:
///
///     .decoding("control", "coordinator<->worker control messages", ControlMessage.decode),
let fuzzTargets: [FuzzTarget] = [
    FuzzTarget("pickle", "pickle reader (both policies) and the two sample decoders, cross-checked", PickleTarget.run),
    FuzzTarget("jsonl", "JSON-lines samples: parser, validation, pickle round trip", JSONLinesTarget.run),
    FuzzTarget("hydra", "key=value overrides (one per line) into TrainingConfig", HydraTarget.run),
    FuzzTarget("safetensors", "safetensors header and tensor reads", SafeTensorsTarget.run),
    FuzzTarget("bert-config", "Hugging Face BERT config.json", BertConfigTarget.run),
    FuzzTarget("torch", "pytorch_model.bin: zip directory, torch pickle, strided tensor reads", TorchTarget.run),
    FuzzTarget("wire", "ZeroMQ ring messages: header frame, checks, payload frames", WireTarget.run),
    FuzzTarget("checkpoint", "srdpr checkpoint files: trailer, index, sections", CheckpointTarget.run),
    .decoding("control", "coordinator<->worker control messages", ControlMessage.decode),
]
