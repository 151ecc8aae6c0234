# shellcheck shell=bash
# The FAQ study's data and pipelines, shared by scripts/faq-study.sh and Benchmarks/bench-train-real.sh
# (source it from the repository root; it defines functions only).
#   faq_prepare_data BIN OUT   split ../shared/data/faq (of every 20 consecutive samples the first 3 are
#                              held out: 15%, spread over all sources) into OUT and build the ByteDatasets
#                              OUT/train.bytedataset (every training sample) and OUT/train-hardneg.bytedataset
#                              (those with hard negatives); kept when already there
#   faq_inbatch_args SAMPLES   the DPR-style baseline: train_mode=inbatch, 16 questions, 1 hard negative each
#   faq_srdpr_args SAMPLES HARDNEG_SAMPLES
#                              SR-DPR: train_mode=pos+poshard+hard, regulate_factor 2 (pos, pos, poshard, hard)
faq_data=../shared/data/faq

faq_prepare_data() {  # BIN OUT
    local bin=$1 out=$2 name
    mkdir -p "$out"
    python3 scripts/faq-split.py "$faq_data" "$out"
    echo "train: $(wc -l < "$out/train.jsonl") samples ($(wc -l < "$out/train-hardneg.jsonl") with hard negatives), dev: $(wc -l < "$out/dev_qrels.jsonl") questions" >&2
    for name in train train-hardneg; do
        [[ -d "$out/$name.bytedataset" ]] || "$bin" create-dataset --input-jsonl-path "$out/$name.jsonl" --output-bytedataset-path "$out/$name.bytedataset" >&2
    done
}

faq_inbatch_args() {  # SAMPLES
    echo train_mode=inbatch bytedataset.inbatch="$1" \
        pipeline.inbatch.forward_batch_size=16 pipeline.inbatch.use_hardneg=true pipeline.inbatch.use_num_hardnegs=1
}

faq_srdpr_args() {  # SAMPLES HARDNEG_SAMPLES
    echo train_mode=pos+poshard+hard regulate_factor=2 \
        bytedataset.pos="$1" bytedataset.poshard="$2" bytedataset.hard.hardneg="$2" bytedataset.hard.randneg="$1" \
        pipeline.pos.forward_batch_size=16 pipeline.pos.contrastive_size=16 \
        pipeline.poshard.forward_batch_size=8 pipeline.poshard.contrastive_size=4 \
        pipeline.hard.forward_batch_size=8 pipeline.hard.contrastive_size=4
}
