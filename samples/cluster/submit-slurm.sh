#!/bin/sh
# Submits the array, then `sd batch merge` as a dependent job: afterany, so that it also runs (and names the shard
# to run again) when a task failed. The merge is given the job file and the flags the array ran with.
set -e
cd "$(dirname "$0")"
jid=$(sbatch --parsable slurm-array.sbatch)
sbatch --dependency=afterany:"$jid" --job-name=sd-merge --output=sd-merge-%j.log \
    --wrap "sd batch merge /shared/out/run1 /shared/jobs/jobs.jsonl -m /shared/models/model.safetensors --contact-sheet /shared/out/run1/sheet.png"
# A shard the merge names (exit 1: "shard 3/16 must run again"): scontrol requeue <jobid>_3, or sbatch --array=3 slurm-array.sbatch
