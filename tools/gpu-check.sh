#!/usr/bin/env bash
# One epoch of each model family's `full` model, bfloat16 mixed precision off
# and on: images/s and peak memory (on CUDA torch.cuda.max_memory_allocated,
# on a CPU the process's peak RSS), the device synchronised before every
# clock reading. On CUDA it then counts the host synchronisations in up to
# 150 more training steps (CUDA's sync debug mode): a handful means the loop
# never waits for the host between its reads every 50 steps.
# For a machine with a GPU; it runs on a CPU too:
#
#   tools/gpu-check.sh                          # on the best device: CUDA if there is one
#   AUTOENCODERS_DEVICE=cpu tools/gpu-check.sh  # on the CPU: 20 steps per run unless --steps
#   tools/gpu-check.sh --steps 0                # the whole epoch, whatever the device
#   tools/gpu-check.sh --out DIR                # where gpu-check.json and .md go (bench-results)
#
# Each run is a child process of `python -m autoencoders bench --gpu-check`;
# trains nothing into the model cache (the decoded CIFAR-10 tensor is cached
# under AUTOENCODERS_CACHE as usual). The output says what it measured.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD/code${PYTHONPATH:+:$PYTHONPATH}"  # this clone's package
exec "${PYTHON:-python3}" -m autoencoders bench --gpu-check "$@"
