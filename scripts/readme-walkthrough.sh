#!/usr/bin/env bash
# Runs the README's "Your first model, step by step" commands as written, in the order written,
# in a scratch directory that looks like a fresh clone (scripts/, demo/ and .venv of this checkout,
# no data/ or outputs/), with $HOME pointing into it (so `scripts/install.sh` installs into
# scratch/home/.local/bin and the README's PATH line is what finds srdpr). Two changes keep it
# small, both applied to the extracted text and checked to apply:
#   - `STEPS=160` becomes `STEPS=4`;
#   - `srdpr train` gets appended KEY=VALUE overrides (later ones win): a tiny randomly initialised
#     BERT from demo/model instead of MiniLM, small batches, max_length 32.
# Then it checks what the steps should have produced. CI runs it (scripts/test.sh without arguments, which .ci/run calls, before the XCTests).
#   KEEP=1   keep the scratch directory
set -euo pipefail
repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/srdpr-walkthrough.XXXXXX")
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
checkout="$work/checkout"
mkdir -p "$checkout" "$work/home"
for entry in scripts demo .venv; do ln -s "$repo/$entry" "$checkout/$entry"; done

# The fenced sh blocks between <!-- walkthrough --> and <!-- /walkthrough -->.
steps=$(awk '/^<!-- walkthrough -->$/{on=1; next} /^<!-- \/walkthrough -->$/{on=0} on && /^```/{fence=!fence; next} on && fence' "$repo/README.md")
[ -n "$steps" ] || { echo "readme-walkthrough: no walkthrough block found in README.md" >&2; exit 1; }
grep -qx 'STEPS=160' <<<"$steps" || { echo "readme-walkthrough: the README no longer sets STEPS=160; update this script" >&2; exit 1; }
steps=$(sed 's/^STEPS=160$/STEPS=4/' <<<"$steps")

# The tiny model: demo/model's config and vocabulary with random weights (2 layers, hidden 128).
"$repo/.build/release/srdpr" init-model --config "$repo/demo/model" --output "$work/tiny-model" --seed 7 >/dev/null \
    || { echo "readme-walkthrough: build srdpr first (swift build -c release)" >&2; exit 1; }

cat > "$work/walkthrough.sh" <<SCRIPT
set -euo pipefail
cd "$checkout"
# Small sizes: appended to every \`srdpr train\` (KEY=VALUE arguments given later win).
srdpr() {
    if [ "\$1" = train ]; then
        command srdpr "\$@" pretrained_model_cfg="$work/tiny-model" max_length=32 \\
            pipeline.pos.forward_batch_size=4 pipeline.pos.contrastive_size=4 \\
            pipeline.poshard.forward_batch_size=2 pipeline.poshard.contrastive_size=2 \\
            pipeline.hard.forward_batch_size=2 pipeline.hard.contrastive_size=2 \\
            warmup_steps=1 save_checkpoint_freq=2 --threads 2
    else
        command srdpr "\$@"
    fi
}
set -x
$steps
SCRIPT

start=$(date +%s)
HOME="$work/home" PATH="/usr/local/bin:/usr/bin:/bin:$(dirname "$(command -v swift)")" \
    bash "$work/walkthrough.sh" > "$work/output.txt" 2>&1 || {
    cat "$work/output.txt"
    echo "readme-walkthrough: FAILED (the commands above are the README's)" >&2
    exit 1
}
cat "$work/output.txt"

# What the steps must have produced.
fail() { echo "readme-walkthrough: FAILED: $*" >&2; exit 1; }
[ -x "$work/home/.local/bin/srdpr" ] || fail "scripts/install.sh did not install ~/.local/bin/srdpr"
grep -q "^+ command srdpr train " "$work/output.txt" || fail "srdpr train was not run"
out="$checkout/outputs"
[ -f "$out/checkpoints/dpr_biencoder.4" ] || fail "no checkpoint dpr_biencoder.4"
for side in question_encoder ctx_encoder; do
    for f in config.json vocab.txt model.safetensors modules.json sentence_bert_config.json 1_Pooling/config.json srdpr_settings.json; do
        [ -f "$out/hf/$side/$f" ] || fail "export wrote no $side/$f"
    done
done
[ -f "$out/hf/srdpr_settings.json" ] || fail "export wrote no srdpr_settings.json in its root"
# evaluate on the export used the run's settings (the README trains with cosine x 20).
grep -q '"sim_func":"cosine"' "$work/output.txt" && grep -q '"sim_scale":20' "$work/output.txt" \
    || fail "evaluate --model outputs/hf did not use the run's sim_func=cosine sim_scale=20"
questions=$(grep -c . "$repo/demo/data/faq-qrels.jsonl")
[ "$(grep -c '"embedding"' "$out/questions.emb.jsonl")" = "$questions" ] || fail "encode did not embed the $questions questions"
grep -q '"top_k_accuracy"' "$work/output.txt" || fail "evaluate printed no top-k accuracy"
[ -f "$out/logs/config.yaml" ] && [ -f "$out/logs/metrics.jsonl" ] || fail "log_dir lacks config.yaml or metrics.jsonl"
echo "readme-walkthrough: OK in $(( $(date +%s) - start )) s (install, data, train, export, encode, evaluate as the README writes them)"
