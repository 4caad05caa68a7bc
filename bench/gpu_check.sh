#!/usr/bin/env bash
# One device-machine session's checks for the `cuda` build (see README, "GPU"):
# throughput of relatent and of the PyTorch reference on the same GPU, then the baseline sweep
# and the default AbsAE run, timed. Usage: bench/gpu_check.sh RELATENT_BINARY OUT_DIR
# Every step has its own time limit so one failure leaves the rest measured.
set -u
bin=$1; out=$2; mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/summary.txt"
# NVRTC (run-time compilation of the kernels) and the driver are loaded dynamically.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib $(python3 -c 'import nvidia, os; print(" ".join(os.path.join(p, q, "lib") for p in nvidia.__path__ for q in os.listdir(p)))' 2>/dev/null); do
  [ -d "$d" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"
done
step() { local name=$1 limit=$2; shift 2; local t0=$SECONDS
  timeout "$limit" "$@" > "$out/$name.log" 2>&1; local rc=$?
  echo "$name: rc $rc, $((SECONDS - t0)) s" | tee -a "$out/summary.txt"; }
step bench64 120 "$bin" bench --batch 64 --repeats 20 --json
step torch64 60 python3 bench/pytorch_reference.py --device cuda --batch 64 --repeats 50
step torch256 60 python3 bench/pytorch_reference.py --device cuda --batch 256 --repeats 50
step bench256 120 "$bin" bench --batch 256 --repeats 20 --json
step sweep "${SWEEP_LIMIT:-270}" "$bin" sweep --models beta-vae,factor-vae --out "$out/sweep" --quiet
step absae "${RUN_LIMIT:-120}" /usr/bin/time -v "$bin" run --out "$out/absae" --quiet
tar czf "$out/runs.tgz" -C "$out" sweep absae 2>/dev/null; rm -rf "$out/sweep" "$out/absae"
for f in bench64 torch64 torch256 bench256; do echo "== $f"; grep -E '"(train_images_per_s|train_default_images_per_s|train_step_ms|encode_images_per_s|eval_images_per_s|rel_updates_per_s|backend|device)"' "$out/$f.log"; done
tail -5 "$out/sweep.log"; grep -E "Elapsed|Maximum resident" "$out/absae.log"; cat "$out/summary.txt"
