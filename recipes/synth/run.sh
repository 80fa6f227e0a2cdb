#!/usr/bin/env bash
# Synthetic speech recipe: text -> synthesized audio -> manifests -> train -> evaluate -> transcribe.
# Every stage is skipped when done (done-markers); delete the marker (or the folder) to redo it.
#
#   bash recipes/synth/run.sh [--corpus commands|prose|people] [--lang en|es] [--stage N] [--stop-stage N]
#                             [--conf configs/X.yaml] [--exp DIR] [--avg N] [train overrides...]
#
# --lang es: the commands in Spanish (asr/synth/commands_es.py), read by espeak-ng's Spanish voices
# (recipes/synth/conf/commands_es.yaml -> data/synth/commands_es, exp/synth/commands_es); the
# tokenizer keeps accents (tokenizer.language=es) and the manifests say "language": "es".
#
# Stages: 0 text + audio + manifests, 1 tokenizer, 2 train, 3 average (--avg N, off by default),
# 4 evaluate, 5 transcribe a sample file. Stages 1-5 are recipes/common_stages.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."

corpus=commands
lang=en
stage=0
stop_stage=5
conf=""
data=""
exp=""
avg=0  # the demo exports its best (or final) weights; averaging is a step you can add
avg_by=best
test_sets="test test-unseen-voice"
eval_models="model model_avg"
# shellcheck source=recipes/common_stages.sh
source recipes/common_stages.sh options "$@"
if [ "$lang" != en ]; then
  [ "$corpus" = commands ] || { echo "--lang $lang: only the commands corpus is in other languages" >&2; exit 2; }
  corpus=commands_$lang
  [ -f "recipes/synth/conf/$corpus.yaml" ] || { echo "--lang $lang: no recipes/synth/conf/$corpus.yaml" >&2; exit 2; }
  overrides=(tokenizer.language="$lang" "${overrides[@]}")
fi
case "$corpus" in
  prose|people) conf=${conf:-configs/base.yaml} ;;
  *) conf=${conf:-configs/small.yaml} ;;
esac
data=${data:-data/synth/$corpus}
exp=${exp:-exp/synth/$corpus}
mkdir -p "$data" "$exp"

if step 0; then
  echo "$(elapsed) stage 0: corpus $corpus -> $data (text, audio, manifests; each part skipped when done)"
  python -m asr.synth --config "recipes/synth/conf/$corpus.yaml" --out "$data" --stage all
fi

source recipes/common_stages.sh stages
