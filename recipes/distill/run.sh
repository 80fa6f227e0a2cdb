#!/usr/bin/env bash
# Whisper tiny.en on any input length, taught by itself (issue 31): audio -> the teacher's targets ->
# students -> the ablation table on real speech. Every stage is skipped when its output exists.
#
#   bash recipes/distill/run.sh [--stage N] [--stop-stage N] [--steps 400]
#
# Stages: 0 the audio (recipes/distill/corpus.py; the synthetic corpora from recipes/synth/run.sh and the
# real dev set from recipes/real/make_devset.py must exist), 1 the teacher (whisper-tiny.en, padded to
# 30 s, `asr teach`), 2 the students (configs/distill_whisper.yaml), 3 the table (recipes/distill/ablation.py).
# Students, each from whisper-tiny.en's weights, fed unpadded audio (configs/distill_whisper.yaml):
#   kd-more        the decoder blocks learn the teacher's distributions (KL) and transcripts, 800 steps
#   kd-min15       the same, 400 steps, every clip padded to at least 15 s (features.min_seconds; shipped)
#   kd-memory      every block learns, the encoder also the teacher's encoder output (distill.memory), L2-SP
# and on the shipped student (whisper-tiny.en-any), a CTC head that spells (configs/distill_whisper_ctc.yaml):
#   ctc            one block and 29 letters on the frozen encoder, the teacher's non-empty transcripts, 25 min
set -euo pipefail
cd "$(dirname "$0")/../.."

stage=0
stop_stage=3
steps=400
while [ $# -gt 0 ]; do
  case "$1" in
    --stage) stage=$2; shift 2 ;;
    --stop-stage) stop_stage=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
asr=${ASR:-asr}
data=data/distill
exp=exp/distill
mkdir -p "$exp"
run() { [ "$stage" -le "$1" ] && [ "$1" -le "$stop_stage" ]; }

if run 0 && [ ! -f $data/audio.jsonl ]; then
  python recipes/distill/corpus.py --out $data/audio.jsonl
fi
if run 1; then  # (resumable: what $data/taught holds is not taught again)
  nice $asr teach $data/audio.jsonl -m whisper-tiny.en -o $data/taught --memory --threads 2 --batch-size 16
fi
if run 2; then
  train() { local name=$1; shift; [ -f $exp/$name/model.pt ] || nice $asr train --init whisper-tiny.en \
    -c configs/distill_whisper.yaml --exp $exp/$name max_steps="$steps" "$@"; }
  train kd-more max_steps=800 distill.memory= optim.l2sp=0.0 "freeze=[encoder,decoder.token_embedding]"
  train kd-min15 distill.memory= optim.l2sp=0.0 "freeze=[encoder,decoder.token_embedding]" features.min_seconds=15
  train kd-memory
  # the CTC head learns from the transcripts the teacher wrote something for
  python -c "import json,sys; [print(l, end='') for l in open(sys.argv[1]) if json.loads(l).get('text')]" \
    $data/taught/train.jsonl > $data/taught/train_text.jsonl
  [ -f $exp/ctc/model.pt ] || nice $asr train -c configs/distill_whisper_ctc.yaml --exp $exp/ctc
fi
if run 3; then
  rows=(padded unpadded)
  for m in kd-more kd-min15 kd-memory ctc; do [ -f $exp/$m/model.pt ] && rows+=($exp/$m); done
  [ -f $exp/ctc/model.pt ] && rows+=("$exp/ctc:beam_size=4,ctc_weight=0.3" "$exp/kd-more:beam_size=4")
  [ -f $exp/kd-min15/model.pt ] && rows+=("$exp/kd-min15:beam_size=4")
  python recipes/distill/ablation.py --manifest data/real/heldout.jsonl --rows "${rows[@]}" --fw \
    --json $exp/ablation.json | tee $exp/ablation.txt
fi
