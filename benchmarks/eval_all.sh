#!/usr/bin/env bash
# Answer quality of the offline default (embedded policy, no web search) on the public datasets.
#
#   benchmarks/eval_all.sh [SOURCE] [OUT] [SPLIT]
#
# SOURCE: the datasets folder (default ../shared/datasets beside the checkout, see its README.md);
# OUT:    where converted files, JSON and HTML reports go (default /tmp/supportdesk-eval);
# SPLIT:  test (report figures; the default) or validation (tune on this only).
# Every run is a stratified sample of LIMIT cases (default 600) with SEED (default 0); the flow stage,
# which calls the embedded model on escalations, runs on FLOW_LIMIT cases (default 40).
# Each command below is the exact one behind a reported figure.
set -euo pipefail

SOURCE=${1:-$(dirname "$0")/../../shared/datasets}
OUT=${2:-/tmp/supportdesk-eval}
SPLIT=${3:-test}
LIMIT=${LIMIT:-400}
SEED=${SEED:-7}
FLOW_LIMIT=${FLOW_LIMIT:-40}
SD=${SUPPORTDESK:-supportdesk}
DATA="$OUT/data"
mkdir -p "$DATA" "$OUT/reports"

run() { echo; echo "\$ $*"; "$@"; }

# 1. Convert (stackfaq: the KB gets the validation rephrasings as paraphrases, never the test ones).
for dataset in clinc150 banking77 bitext tickets; do
  run "$SD" eval-data "$dataset" --source "$SOURCE" --out "$DATA" --split "$SPLIT"
done
if [ "$SPLIT" = test ]; then
  run "$SD" eval-data stackfaq --source "$SOURCE" --out "$DATA" --split test --kb-paraphrases
else
  run "$SD" eval-data stackfaq --source "$SOURCE" --out "$DATA" --split validation
fi

report() { echo "--json $OUT/reports/$1.json --report $OUT/reports/$1.html"; }

# 2. FAQ stage (answer or escalate; hit@1, answered from the right entry, out-of-scope escalated, latency).
#    clinc150: its training examples labelled unknown (oos_train) are the FAQ's escalation examples.
run "$SD" eval --stage rag --kb "$DATA/clinc150.kb.jsonl" --examples "$DATA/clinc150.train.examples.jsonl" \
  --cases "$DATA/clinc150.$SPLIT.cases.jsonl" --limit "$LIMIT" --seed "$SEED" $(report "clinc150-rag-$SPLIT")
run "$SD" eval --stage rag --kb "$DATA/stackfaq.kb.jsonl" --cases "$DATA/stackfaq.$SPLIT.cases.jsonl" \
  --limit "$LIMIT" --seed "$SEED" $(report "stackfaq-rag-$SPLIT")
#    FAQ mode: half the intents are entries, the other half's queries must escalate (near out of scope).
for dataset in banking77 bitext; do
  run "$SD" eval --stage rag --kb "$DATA/$dataset.kb.jsonl" --cases "$DATA/$dataset.$SPLIT.faq.cases.jsonl" \
    --limit "$LIMIT" --seed "$SEED" $(report "$dataset-rag-$SPLIT")
done

# 3. Triage: the shipped classifier the flow uses (config/triage_examples.yaml + rules): category, priority.
for dataset in banking77 bitext tickets; do
  run "$SD" eval --stage triage --cases "$DATA/$dataset.$SPLIT.cases.jsonl" --limit "$LIMIT" --seed "$SEED" \
    $(report "$dataset-triage-$SPLIT")
done

# 4. The whole flow with the embedded model (FAQ, then triage crew and a ticket in a scratch home).
run "$SD" eval --stage flow --kb "$DATA/clinc150.kb.jsonl" --examples "$DATA/clinc150.train.examples.jsonl" \
  --cases "$DATA/clinc150.$SPLIT.cases.jsonl" --limit "$FLOW_LIMIT" --seed "$SEED" $(report "clinc150-flow-$SPLIT")
