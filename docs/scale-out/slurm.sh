#!/usr/bin/env bash
# One infoplane plan on a Slurm cluster: a job array with one task per unit, then one merge job
# that starts when every task has succeeded. Slurm sets SLURM_ARRAY_TASK_ID in each task; that
# is the unit index `infoplane run` reads when no --unit/--index is given.
#
#   infoplane plan --manifest sweep.toml --corpus c4.jsonl --shards 8 --device cuda:0 --output plan
#   bash slurm.sh plan results
#
# A task that fails or is preempted leaves its unit unfinished (nothing that merge accepts);
# resubmitting the same array index resumes it, and a finished unit is a no-op.
set -euo pipefail
plan=${1:?plan directory}
out=${2:?output directory}
units=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]+"/plan.json"))["units"]))' "$plan")

array=$(sbatch --parsable \
  --job-name=infoplane-units \
  --array=0-$((units - 1))%64 \
  --cpus-per-task=8 --mem=32G --time=04:00:00 \
  --gres=gpu:1 \
  --requeue \
  --output="$plan/logs/%A_%a.out" \
  --wrap="infoplane run '$plan'")
echo "submitted array $array ($units units)"

sbatch --dependency=afterok:"$array" --job-name=infoplane-merge \
  --cpus-per-task=4 --mem=32G --time=01:00:00 \
  --output="$plan/logs/merge_%j.out" \
  --wrap="infoplane status '$plan' && infoplane merge '$plan' --output '$out'"
