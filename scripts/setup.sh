#!/usr/bin/env bash
# Creates .venv/ and installs the software stack that fits this machine. Idempotent: a second run with
# nothing changed returns at once. Modes (TORCH=...):
#   auto    cuda when nvidia-smi lists a GPU, else cpu (default)
#   cpu     torch CPU build + fbgemm-gpu-cpu + torchrec (installed without its CUDA-only requirement)
#   cuda    torch + fbgemm-gpu + torchrec CUDA builds
#   system  keep the torch already installed for $PYTHON, even when $PYTHON is itself a virtual
#           environment's (the new .venv sees that interpreter's site-packages through a .pth file);
#           chipbench is linked in without a build step; its run-time needs must be present or
#           installable (with PIP_NO_INDEX=1 nothing is downloaded); the missing ones are listed.
# auto keeps an existing system set-up. DEV=1 (make test) also needs the test and lint tools.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${TORCH:-auto}
PY=${PYTHON:-python3}
VENV=${VENV:-.venv}
# shellcheck source=stack.env
source scripts/stack.env

die() { echo "setup: $*" >&2; exit 2; }

if [ "$MODE" = auto ]; then
  if [ -f "$VENV/.chipbench-system" ]; then  # a system set-up, even one that did not finish
    MODE=system  # keep the torch a system set-up chose: never download another over it
    PY=$(sed -n 's/^python=//p' "$VENV/.chipbench-system" 2>/dev/null || echo "$PY")
  elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then MODE=cuda; else MODE=cpu; fi
fi
case "$MODE" in cpu|cuda|system) ;; *) die "unknown TORCH=$MODE; use auto, cpu, cuda or system" ;; esac

RUNTIME_MODULES="numpy scipy rich psutil typing_extensions torch chipbench"
# `chipbench report` and `history` only: required where pip installs the project, optional under TORCH=system
# (an offline GPU image runs benchmarks; the page and the history can be made on any other machine).
VIEW_MODULES="plotly jinja2 ruptures"
# The results store (`chipbench ingest`, `--store`): the same, and psycopg for a PostgreSQL store (the extra
# `postgres`, installed wherever pip installs the project).
STORE_MODULES="sqlalchemy psycopg"
DEV_MODULES="pytest pytest_benchmark xdist mypy importlinter hypothesis yaml check_jsonschema"
DEV=${DEV:-0}
stamp="$MODE $(cat scripts/setup.sh scripts/stack.env pyproject.toml | sha256sum | cut -c1-16)"
[ "$MODE" = system ] && stamp="$stamp $(command -v "$PY" || echo "$PY")"  # another interpreter: set up again
# lacks MODULE...: those the venv cannot import, each followed by a space (all of them where the venv has no
# python). One interpreter for all: torch alone takes seconds to import, once per process.
lacks() {
  "$VENV/bin/python" - "$@" 2>/dev/null <<'PY' || printf '%s ' "$@"
import importlib, sys
bad = []
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except Exception:
        bad.append(name)
print("".join(f"{name} " for name in bad))
PY
}
need=$RUNTIME_MODULES
[ "$DEV" = 1 ] && need="$need $DEV_MODULES"
# shellcheck disable=SC2086
if [ -f "$VENV/.chipbench-setup" ] && [ "$(cat "$VENV/.chipbench-setup")" = "$stamp" ] \
   && [ -z "$(lacks $need)" ] && { [ "$DEV" != 1 ] || [ -x "$VENV/bin/ruff" ]; }; then
  echo "setup: $VENV is up to date ($MODE)"
  exit 0
fi

echo "setup: creating $VENV for mode '$MODE' with $($PY --version 2>&1) ($(command -v "$PY" || echo "$PY"))"
if [ "$MODE" = system ]; then
  # find_spec, not an import (seconds of torch): a torch that is there but does not import is in `lacks` below
  "$PY" -c "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)" 2>/dev/null || die "TORCH=system needs torch installed for $PY; none found (give PYTHON=/path/to/python, or use TORCH=cpu or TORCH=cuda)"
fi
# A venv of another mode is emptied first: its own torch would shadow the system's, or the system's
# packages would leak into a cpu/cuda venv through the .pth files.
if [ -d "$VENV" ] && { { [ "$MODE" = system ] && [ ! -f "$VENV/.chipbench-system" ]; } \
                       || { [ "$MODE" != system ] && [ -f "$VENV/.chipbench-system" ]; }; }; then
  echo "setup: $VENV was set up for another mode; emptying it"
  "$PY" -m venv --clear "$VENV"
fi
rm -f "$VENV/.chipbench-setup"
# uv (pinned), kept beside the caches' wheels, makes the venv in half a second (`python -m venv` spends
# seven in ensurepip) with a pip of its own; installed once a machine, into a folder made whole or not at all.
uv_home="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/chipbench/uv-${UV_VERSION}"
uv_venv() {
  [ "${CHIPBENCH_NO_UV:-}" != 1 ] || return 1
  if [ ! -x "$uv_home/bin/uv" ]; then
    mkdir -p "$(dirname "$uv_home")" && local tmp && tmp=$(mktemp -d "$uv_home.XXXXXX") || return 1
    "$PY" -m pip install -q --disable-pip-version-check --target "$tmp" "uv==${UV_VERSION}" >/dev/null 2>&1 \
      && mv -T "$tmp" "$uv_home" 2>/dev/null
    rm -rf "$tmp"
    [ -x "$uv_home/bin/uv" ] || return 1
  fi
  "$uv_home/bin/uv" venv -q --seed --python "$(command -v "$PY" || echo "$PY")" "$VENV" >/dev/null 2>&1 \
    || { rm -rf "$VENV"; return 1; }
  ln -sf "$uv_home/bin/uv" "$VENV/bin/uv"
}
if [ "$MODE" = system ]; then
  # No pip of its own (seconds saved): the interpreter's, through the .pth below, where it has one.
  [ -d "$VENV" ] || "$PY" -m venv --without-pip "$VENV"
  # `venv --system-site-packages` run from a virtual environment's python links the base interpreter's
  # packages, not that environment's: list the interpreter's own import path in a .pth instead.
  site=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
  # Its whole import path but the standard library: site-packages and what their own .pth files add.
  "$PY" -c "import os, sys, sysconfig
std = {sysconfig.get_paths()[k] for k in ('stdlib', 'platstdlib')}
print('\n'.join(p for p in sys.path if p and os.path.isdir(p) and p not in std and 'lib-dynload' not in p))" \
    > "$site/chipbench-system-site.pth"
  printf 'python=%s\n' "$(command -v "$PY" || echo "$PY")" > "$VENV/.chipbench-system"
else
  [ -d "$VENV" ] || uv_venv || "$PY" -m venv "$VENV"
fi
pip_only() {
  # Drop pip's notes about unreadable local index folders (a property of some machines' pip config).
  "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2> >(grep -v "^WARNING: Location '" >&2)
}
# uv (pinned in stack.env) installs the same pins as pip, unzipping and byte-compiling on every core:
# torch's install drops from ~2 min to well under one. Where uv cannot be had (no index) or fails,
# pip does the install; system mode never downloads it.
uv_bin=""
if [ "$MODE" != system ] && [ "${CHIPBENCH_NO_UV:-}" != 1 ]; then
  [ -x "$VENV/bin/uv" ] || pip_only install -q "uv==${UV_VERSION}" >/dev/null 2>&1 || true
  [ -x "$VENV/bin/uv" ] && uv_bin="$VENV/bin/uv"
fi
# pip's own find-links (this machine keeps its torch wheel on disk) reach uv too.
uv_links=()
for d in ${PIP_FIND_LINKS:-} $("$VENV/bin/python" -m pip config get global.find-links 2>/dev/null || true); do
  [ -e "$d" ] && uv_links+=(--find-links "$d")
done
pip() {  # pip() install ARGS...: through uv where it is there, else (or when it fails) through pip
  if [ -n "$uv_bin" ] && [ "$1" = install ]; then
    shift
    "$uv_bin" pip install --python "$VENV/bin/python" --compile-bytecode --index-strategy unsafe-best-match \
      ${uv_links[@]+"${uv_links[@]}"} "$@" && return 0
    echo "setup: uv could not install $*; trying pip" >&2
    pip_only install "$@"
  else
    pip_only "$@"
  fi
}
# Extra pip arguments, e.g. PIP_ARGS="--extra-index-url <PyTorch's CPU wheel index>" where the
# CPU build is not on the default index.
read -r -a extra <<< "${PIP_ARGS:-}"

case "$MODE" in
  cpu)
    pip install -q ${extra[@]+"${extra[@]}"} setuptools numpy "torch==${TORCH_VERSION}+cpu" \
      || die "could not install torch==${TORCH_VERSION}+cpu; give PyTorch's CPU wheel index with PIP_ARGS=\"--extra-index-url URL\""
    ;;
  cuda)
    pip install -q ${extra[@]+"${extra[@]}"} setuptools numpy "torch==${TORCH_VERSION}"
    ;;
esac

# Every later install is constrained to the torch now present, so nothing can upgrade or replace it.
constraints="$VENV/constraints.txt"
# Its version: from the metadata of the torch pip just installed (importing torch costs seconds); a system
# torch's from torch itself (an image's may have no metadata, or stale metadata beside it).
{ { [ "$MODE" != system ] && "$VENV/bin/python" -c "from importlib.metadata import version; print('torch==' + version('torch'))" 2>/dev/null; } \
  || "$VENV/bin/python" -c "import torch; print('torch==' + torch.__version__)"; } > "$constraints"
echo "setup: using $(cat "$constraints")"

case "$MODE" in
  cpu)
    pip install -q ${extra[@]+"${extra[@]}"} -c "$constraints" "fbgemm-gpu-cpu==${FBGEMM_VERSION}"
    # torchrec's metadata requires the CUDA package fbgemm-gpu: install it alone, then its real needs.
    pip install -q ${extra[@]+"${extra[@]}"} -c "$constraints" --no-deps "torchrec==${TORCHREC_VERSION}"
    pip install -q ${extra[@]+"${extra[@]}"} -c "$constraints" tensordict "torchmetrics==${TORCHMETRICS_VERSION}" tqdm pyre-extensions
    ;;
  cuda)
    pip install -q ${extra[@]+"${extra[@]}"} -c "$constraints" "fbgemm-gpu==${FBGEMM_VERSION}" "torchrec==${TORCHREC_VERSION}" \
      "torchmetrics==${TORCHMETRICS_VERSION}" "nvidia-ml-py==${NVML_PY_VERSION}"
    ;;
esac

if [ "$MODE" = system ]; then
  # No build step (a fresh venv may lack setuptools, and the machine the network): the source folder on
  # the path and the console script, as an editable install would make them.
  echo "$(pwd)/src" > "$site/chipbench-src.pth"
  printf '#!%s\nimport sys\nfrom chipbench.cli import main\nsys.exit(main())\n' "$(cd "$VENV" && pwd)/bin/python" \
    > "$VENV/bin/chipbench"
  chmod +x "$VENV/bin/chipbench"
  # shellcheck disable=SC2086
  missing=$(lacks $need)
  if [ -n "$missing" ] && [ "${PIP_NO_INDEX:-}" != 1 ]; then
    # What is missing, from the index, never replacing the torch that is there.
    pip install -q ${extra[@]+"${extra[@]}"} -c "$constraints" numpy scipy rich psutil typing_extensions ruptures \
      plotly==7.1.0 jinja2==3.1.6 $([ "$DEV" = 1 ] && echo "sqlalchemy==2.1.9 psycopg[binary]==3.3.9 pytest pytest-benchmark pytest-xdist ruff mypy pyyaml import-linter==2.16 hypothesis==6.170.17 check-jsonschema==0.39.0") \
      || true
    # shellcheck disable=SC2086
    missing=$(lacks $need)
  fi
  if [ "$DEV" = 1 ] && [ ! -x "$VENV/bin/ruff" ]; then
    # make lint runs .venv/bin/ruff: the interpreter's own, where it has one
    pyruff="$(dirname "$(command -v "$PY" || echo "$PY")")/ruff"
    if [ -x "$pyruff" ]; then ln -sf "$pyruff" "$VENV/bin/ruff"; else missing="${missing}ruff "; fi
  fi
  [ -z "$missing" ] || die "TORCH=system: $PY's environment lacks $missing(install them there, or give wheels with PIP_ARGS=\"--find-links DIR\"); nothing was marked set up"
else
  pip install -q ${extra[@]+"${extra[@]}"} --no-build-isolation -c "$constraints" -e ".[dev,postgres]"
fi

# grep reads all of pip's list (-q would stop early, and pipefail would then see pip killed by SIGPIPE)
if [ "$MODE" = cpu ] && pip list 2>/dev/null | grep -iE '^nvidia-|^fbgemm[-_]gpu ' >/dev/null; then
  die "a CUDA package was installed on a CPU-only setup: $(pip list 2>/dev/null | grep -iE '^nvidia-|^fbgemm[-_]gpu ' | tr '\n' ' ')"
fi

if [ "$MODE" != system ]; then  # system mode checked the same list above (each check imports torch: seconds)
  need="$need $VIEW_MODULES $STORE_MODULES"
  # shellcheck disable=SC2086
  missing=$(lacks $need)
  [ -z "$missing" ] || die "$VENV cannot import $missing(see the pip messages above); nothing was marked set up"
fi
echo "$stamp" > "$VENV/.chipbench-setup"
echo "setup: done ($MODE); torch $(sed -n 's/^torch==//p' "$constraints")"  # the version found above
