#!/usr/bin/env bash
# Creates .venv/ and installs the software stack that fits this machine. Idempotent: a second run with
# nothing changed returns at once. Modes (TORCH=...):
#   auto    cuda when nvidia-smi lists a GPU, else cpu (default)
#   cpu     torch CPU build + fbgemm-gpu-cpu + torchrec (installed without its CUDA-only requirement)
#   cuda    torch + fbgemm-gpu + torchrec CUDA builds
#   system  keep the torch already installed for $PYTHON (venv with system site-packages), install
#           chipbench around it; nothing is downloaded when its dependencies are present
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${TORCH:-auto}
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
# shellcheck source=stack.env
source scripts/stack.env

die() { echo "setup: $*" >&2; exit 2; }

if [ "$MODE" = auto ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then MODE=cuda; else MODE=cpu; fi
fi
case "$MODE" in cpu|cuda|system) ;; *) die "unknown TORCH=$MODE; use auto, cpu, cuda or system" ;; esac

stamp="$MODE $(cat scripts/setup.sh scripts/stack.env pyproject.toml | sha256sum | cut -c1-16)"
if [ -f "$VENV/.chipbench-setup" ] && [ "$(cat "$VENV/.chipbench-setup")" = "$stamp" ] \
   && "$VENV/bin/python" -c "import torch, chipbench" >/dev/null 2>&1; then
  echo "setup: $VENV is up to date ($MODE)"
  exit 0
fi

echo "setup: creating $VENV for mode '$MODE' with $($PY --version 2>&1)"
rm -f "$VENV/.chipbench-setup"
if [ "$MODE" = system ]; then
  "$PY" -c "import torch" 2>/dev/null || die "TORCH=system needs torch installed for $PY; none found (use TORCH=cpu or TORCH=cuda)"
  [ -d "$VENV" ] || "$PY" -m venv --system-site-packages "$VENV"
else
  [ -d "$VENV" ] || "$PY" -m venv "$VENV"
fi
pip() {
  # Drop pip's notes about unreadable local index folders (a property of some machines' pip config).
  "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location '" >&2)
}
# Extra pip arguments, e.g. PIP_ARGS="--extra-index-url <PyTorch's CPU wheel index>" where the
# CPU build is not on the default index.
read -r -a extra <<< "${PIP_ARGS:-}"

case "$MODE" in
  cpu)
    pip install -q "${extra[@]}" setuptools numpy "torch==${TORCH_VERSION}+cpu" \
      || die "could not install torch==${TORCH_VERSION}+cpu; give PyTorch's CPU wheel index with PIP_ARGS=\"--extra-index-url URL\""
    ;;
  cuda)
    pip install -q "${extra[@]}" setuptools numpy "torch==${TORCH_VERSION}"
    ;;
esac

# Every later install is constrained to the torch now present, so nothing can upgrade or replace it.
constraints="$VENV/constraints.txt"
"$VENV/bin/python" -c "import torch; print('torch==' + torch.__version__)" > "$constraints"
echo "setup: using $(cat "$constraints")"

case "$MODE" in
  cpu)
    pip install -q "${extra[@]}" -c "$constraints" "fbgemm-gpu-cpu==${FBGEMM_VERSION}"
    # torchrec's metadata requires the CUDA package fbgemm-gpu: install it alone, then its real needs.
    pip install -q "${extra[@]}" -c "$constraints" --no-deps "torchrec==${TORCHREC_VERSION}"
    pip install -q "${extra[@]}" -c "$constraints" tensordict "torchmetrics==${TORCHMETRICS_VERSION}" tqdm pyre-extensions
    ;;
  cuda)
    pip install -q "${extra[@]}" -c "$constraints" "fbgemm-gpu==${FBGEMM_VERSION}" "torchrec==${TORCHREC_VERSION}" \
      "torchmetrics==${TORCHMETRICS_VERSION}"
    ;;
esac

if [ "$MODE" = system ]; then
  # No network is assumed: build with the setuptools already present and use installed dependencies.
  pip install -q --no-build-isolation -c "$constraints" -e ".[dev]" 2>/dev/null \
    || pip install -q --no-build-isolation --no-deps -c "$constraints" -e . \
    || die "could not install chipbench into $VENV"
else
  pip install -q "${extra[@]}" --no-build-isolation -c "$constraints" -e ".[dev]"
fi

if [ "$MODE" = cpu ] && pip list 2>/dev/null | grep -qiE '^nvidia-|^fbgemm[-_]gpu '; then
  die "a CUDA package was installed on a CPU-only setup: $(pip list 2>/dev/null | grep -iE '^nvidia-|^fbgemm[-_]gpu ' | tr '\n' ' ')"
fi

echo "$stamp" > "$VENV/.chipbench-setup"
echo "setup: done ($MODE); $("$VENV/bin/python" -c 'import torch; print("torch", torch.__version__)')"
