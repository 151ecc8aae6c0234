#!/usr/bin/env bash
# The README's first command: installs what is needed, builds srdpr in release, converts the demo
# FAQ data (demo/data) to ByteDatasets, initialises the small demo BERT (demo/model: config and
# vocabulary only) with random weights, trains it with the pos+poshard+hard schedule, exports the
# encoders, and prints where the checkpoint and the logs are.
#   DEMO_OUT=DIR      output directory (default out/demo)
#   DEMO_UPDATES=N    optimizer updates (default 200)
#   DEMO_THREADS=N    threads (default: all cores)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
swift build -c release
bin=.build/release/srdpr
out=${DEMO_OUT:-out/demo}
updates=${DEMO_UPDATES:-200}
threads=${DEMO_THREADS:-$(nproc)}
mkdir -p "$out"

# 1. Data: every sample for pos, poshard and the random negatives; the hard pipeline's own dataset
#    holds only the samples that have hard negatives (its "positive" is one of them).
"$bin" create-dataset --input-jsonl-path demo/data/faq-train.jsonl --output-bytedataset-path "$out/faq-train.bytedataset"
grep -v '"hardneg_contexts": \[\]' demo/data/faq-train.jsonl > "$out/faq-train-hardneg.jsonl"
"$bin" create-dataset --input-jsonl-path "$out/faq-train-hardneg.jsonl" --output-bytedataset-path "$out/faq-hardneg.bytedataset"
echo "samples in $out/faq-train.bytedataset: $("$bin" inspect-dataset "$out/faq-train.bytedataset")"

# 2. Model: a randomly initialised BERT from demo/model/config.json (2 layers, hidden 128).
"$bin" init-model --config demo/model --output "$out/init-model" --seed 12345

# 3. Train (a fresh run: earlier checkpoints and logs of the demo are removed first).
rm -rf "$out/checkpoints" "$out/logs"
ds="$out/faq-train.bytedataset"
"$bin" train --threads "$threads" \
    train_mode=pos+poshard+hard \
    regulate_factor=2 \
    pretrained_model_cfg="$out/init-model" \
    bytedataset.pos="$ds" \
    bytedataset.poshard="$ds" \
    bytedataset.hard.hardneg="$out/faq-hardneg.bytedataset" \
    bytedataset.hard.randneg="$ds" \
    pipeline.pos.forward_batch_size=16 \
    pipeline.pos.contrastive_size=16 \
    pipeline.poshard.forward_batch_size=8 \
    pipeline.poshard.contrastive_size=4 \
    pipeline.hard.forward_batch_size=8 \
    pipeline.hard.contrastive_size=4 \
    max_length=96 \
    learning_rate=5e-4 \
    warmup_steps=20 \
    total_updates="$updates" \
    log_batch_step=20 \
    save_checkpoint_freq=100 \
    keep_checkpoint_max=2 \
    output_dir="$out/checkpoints" \
    log_dir="$out/logs"

# 4. Export the trained encoders as Hugging Face directories.
checkpoint="$out/checkpoints/dpr_biencoder.$updates"
"$bin" export --checkpoint "$checkpoint" --output "$out/export" >/dev/null

echo
echo "demo done:"
echo "  checkpoint:  $checkpoint   (resume with model_file=$checkpoint)"
echo "  logs:        $out/logs   (metrics.jsonl; TensorBoard: tensorboard --logdir $out/logs)"
echo "  encoders:    $out/export/question_encoder, $out/export/ctx_encoder   (transformers BertModel and sentence-transformers directories; --model $out/export for encode/evaluate)"
