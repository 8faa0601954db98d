#!/usr/bin/env bash
# pyrt on riscv64 without a board: cross toolchain, QEMU, a riscv64 Python userland.
#
#   tools/riscv64.sh setup                 # once (idempotent, cached; seconds when cached)
#   tools/riscv64.sh build [--board]       # cross-compile libpyrt_kernels.so
#   tools/riscv64.sh run [--board] [--installed] CMD...
#                                          # run CMD (python3 ...) under QEMU, pyrt from this
#                                          # checkout (--installed: as the Python finds it)
#   tools/riscv64.sh wheel [--board]       # dist/pyrt-*-linux_riscv64.whl
#   tools/riscv64.sh test-kernels [--board] # tests/riscv/kernel_check.c at VLEN 128, 256, 512
#   tools/riscv64.sh env                   # print the paths the other commands use
#
# The baseline build targets RVV 1.0 + Zba/Zbb/Zbs at any VLEN and runs under Debian
# bookworm's QEMU 7.2 (-cpu rv64,v=true,vlen=$PYRT_RVV_VLEN), which also loads the
# instruction-counting plugin. --board builds for the SpacemiT X60 (K1; VLEN 256, Zicond)
# and runs under Debian trixie's QEMU 10 (-cpu max), which 7.2 cannot emulate and which
# has no plugin support.
#
# Environment: PYRT_RISCV_CACHE (default ~/.cache/pyrt-riscv64), PYRT_RVV_VLEN (256),
# PYRT_RISCV_KERNELS (a riscv64 library for `run` instead of build-riscv64/; the host's
# PYRT_KERNELS is not passed on), PYRT_RISCV_PYTHONPATH (more guest import paths),
# PYRT_ISA and QEMU_* pass through to the emulated process and QEMU, PYTHON (host
# python3 used to find or install zig; default python3).
set -euo pipefail
shopt -s inherit_errexit

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${PYRT_RISCV_CACHE:-$HOME/.cache/pyrt-riscv64}"
HOST_PYTHON="${PYTHON:-python3}"
SYSROOT="$CACHE/sysroot"
QEMU7=/usr/bin/qemu-riscv64
QEMU10="$CACHE/qemu10/usr/bin/qemu-riscv64"
PLUGIN="$CACHE/plugin/libinsn_count.so"
ZIGCC="$CACHE/bin/zigcc"
BUILD="$ROOT/build-riscv64"
# Bump when the set of packages or the layout changes: setup then redoes that part.
USERLAND_PACKAGES="python3 python3-numpy python3-cffi python3-onnx python3-pip"
STAMP_VERSION=1

die() {
  echo "riscv64.sh: $*" >&2
  exit 1
}
log() { echo "riscv64.sh: $*" >&2; }

# apt-get/apt-cache against a private state folder: its own sources, lists, cache and an
# empty dpkg status, so nothing of the host's apt setup is read or changed.
private_apt() {
  local dir="$1" arch="$2" sources="$3"
  mkdir -p "$dir"/etc/apt.conf.d "$dir"/etc/preferences.d "$dir"/etc/sources.list.d \
    "$dir"/state/lists/partial "$dir"/cache/archives/partial
  touch "$dir/state/status"
  printf '%s\n' "$sources" >"$dir/etc/sources.list"
  cat >"$dir/apt.conf" <<EOF
Dir::Etc "$dir/etc";
Dir::State "$dir/state";
Dir::State::status "$dir/state/status";
Dir::Cache "$dir/cache";
APT::Architecture "$arch";
APT::Architectures { "$arch"; };
APT::Sandbox::User "root";
APT::Install-Recommends "false";
Debug::NoLocking "true";
Acquire::Languages "none";
EOF
}
apt_in() {
  local dir="$1"
  shift
  APT_CONFIG="$dir/apt.conf" "$@"
}

setup_zig() {
  local zig
  zig="$("$HOST_PYTHON" - "$CACHE/zig" <<'EOF' 2>/dev/null || true
import sys, pathlib
sys.path.append(sys.argv[1])
import ziglang
print(pathlib.Path(ziglang.__file__).parent / "zig")
EOF
)"
  if [ -z "$zig" ] || [ ! -x "$zig" ]; then
    log "installing zig (PyPI ziglang) into $CACHE/zig"
    "$HOST_PYTHON" -m pip install --quiet --target "$CACHE/zig" ziglang
    zig="$(find "$CACHE/zig/ziglang" -maxdepth 1 -name zig -type f)"
  fi
  mkdir -p "$CACHE/bin"
  printf '#!/bin/sh\nexec "%s" cc "$@"\n' "$zig" >"$ZIGCC.tmp"
  chmod +x "$ZIGCC.tmp"
  mv "$ZIGCC.tmp" "$ZIGCC"
}

setup_qemu7() {
  if [ -x "$QEMU7" ] && "$QEMU7" -version | grep -q 'version 7\.'; then return; fi
  log "installing Debian's qemu-user (7.2) with apt-get"
  if [ ! -d /var/lib/apt/lists ] || [ -z "$(ls /var/lib/apt/lists/*Packages* 2>/dev/null)" ]; then
    apt-get update -qq
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user \
    >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-user
  }
  "$QEMU7" -version | grep -q 'version 7\.' || die "$QEMU7 is not QEMU 7.x"
}

stamp_ok() { [ "$(cat "$1" 2>/dev/null)" = "$STAMP_VERSION $2" ]; }
stamp_write() { echo "$STAMP_VERSION $2" >"$1"; }

# trixie's amd64 qemu-user (10.x, static binaries) and the plugin header from bookworm's
# QEMU 7.2 source (no Debian binary package ships qemu-plugin.h).
setup_host_debs() {
  local apt="$CACHE/apt-amd64" key=/usr/share/keyrings
  if stamp_ok "$CACHE/.host-debs" "qemu10+header"; then return; fi
  log "fetching trixie's qemu-user and QEMU 7.2's plugin header"
  private_apt "$apt" amd64 \
    "deb [signed-by=$key/debian-archive-trixie-stable.gpg] http://deb.debian.org/debian trixie main
deb-src [signed-by=$key/debian-archive-bookworm-stable.gpg] http://deb.debian.org/debian bookworm main"
  apt_in "$apt" apt-get update -qq
  rm -rf "$CACHE/qemu10" "$CACHE/qemu10.tmp" "$apt/debs" "$apt/src"
  mkdir -p "$CACHE/qemu10" "$apt/debs" "$apt/src"
  (cd "$apt/debs" && apt_in "$apt" apt-get download -qq qemu-user)
  dpkg -x "$apt"/debs/qemu-user_*.deb "$CACHE/qemu10.tmp"
  mkdir -p "$(dirname "$QEMU10")"
  mv "$CACHE/qemu10.tmp/usr/bin/qemu-riscv64" "$QEMU10" # the other targets are not needed
  rm -rf "$CACHE/qemu10.tmp"
  "$QEMU10" -version | grep -q 'version 10\.' || die "$QEMU10 is not QEMU 10.x"
  local version
  version="$(apt_in "$apt" apt-cache showsrc qemu | sed -n 's/^Version: //p' | grep '^1:7\.2' |
    sort -V | tail -1)"
  [ -n "$version" ] || die "no QEMU 7.2 source package in bookworm"
  (cd "$apt/src" && apt_in "$apt" apt-get source -qq --download-only "qemu=$version")
  mkdir -p "$CACHE/include"
  tar -xJf "$apt"/src/qemu_*.orig.tar.xz -C "$CACHE/include" --wildcards --strip-components=3 \
    '*/include/qemu/qemu-plugin.h'
  [ -f "$CACHE/include/qemu-plugin.h" ] || die "qemu-plugin.h not in the QEMU source"
  rm -rf "$apt/src" "$apt/debs" "$apt/state/lists" "$apt/cache"
  stamp_write "$CACHE/.host-debs" "qemu10+header"
}

# trixie's riscv64 python3 + numpy + cffi + onnx (+ pip), unpacked into $SYSROOT.
setup_userland() {
  local apt="$CACHE/apt-riscv64" key=/usr/share/keyrings
  if stamp_ok "$CACHE/.userland" "$USERLAND_PACKAGES"; then return; fi
  log "fetching trixie's riscv64 userland: $USERLAND_PACKAGES"
  private_apt "$apt" riscv64 \
    "deb [signed-by=$key/debian-archive-trixie-stable.gpg] http://deb.debian.org/debian trixie main"
  apt_in "$apt" apt-get update -qq
  # shellcheck disable=SC2086
  apt_in "$apt" apt-get install -qq -y --download-only $USERLAND_PACKAGES >/dev/null
  rm -rf "$SYSROOT.tmp"
  mkdir -p "$SYSROOT.tmp"
  for deb in "$apt"/cache/archives/*.deb; do dpkg -x "$deb" "$SYSROOT.tmp"; done
  # What update-alternatives would link for numpy (reference BLAS/LAPACK or OpenBLAS).
  local lib="$SYSROOT.tmp/usr/lib/riscv64-linux-gnu" so impl
  for so in libblas.so.3 liblapack.so.3; do
    impl="$(cd "$lib" && find . -path "*/$so" | sort | tail -1)"
    [ -n "$impl" ] || die "no $so in the userland"
    ln -sf "${impl#./}" "$lib/$so"
  done
  # Bookworm's dpkg unpacks the merged-/usr layout as trixie's packages ship it: the
  # loader and libraries live under /usr; /lib* links make the ELF interpreter path work.
  for d in lib lib64 bin sbin; do
    [ -e "$SYSROOT.tmp/$d" ] || ln -s "usr/$d" "$SYSROOT.tmp/$d"
  done
  rm -rf "$SYSROOT" "$apt/state/lists" "$apt/cache"
  mv "$SYSROOT.tmp" "$SYSROOT"
  stamp_write "$CACHE/.userland" "$USERLAND_PACKAGES"
}

setup_plugin() {
  local src="$ROOT/tools/qemu_plugin/insn_count.c"
  if [ -f "$PLUGIN" ] && [ "$PLUGIN" -nt "$src" ]; then return; fi
  log "building the QEMU instruction-count plugin"
  mkdir -p "$(dirname "$PLUGIN")"
  cc -O2 -std=c11 -Wall -Wextra -Werror -shared -fPIC -I"$CACHE/include" -o "$PLUGIN.tmp" "$src"
  mv "$PLUGIN.tmp" "$PLUGIN"
}

cmd_setup() {
  mkdir -p "$CACHE"
  setup_zig
  setup_qemu7
  setup_host_debs
  setup_userland
  setup_plugin
}

need_setup() {
  [ -x "$ZIGCC" ] && [ -x "$QEMU7" ] && [ -x "$QEMU10" ] && [ -x "$SYSROOT/usr/bin/python3" ] ||
    die "run tools/riscv64.sh setup first"
}

# build [--board]: the library into build-riscv64/{baseline,board}/.
flavour_of() { if [ "${1:-}" = "--board" ]; then echo board; else echo baseline; fi; }

cmd_build() {
  local flavour
  flavour="$(flavour_of "${1:-}")"
  need_setup
  cmake -S "$ROOT" -B "$BUILD/$flavour" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_TOOLCHAIN_FILE="$ROOT/tools/riscv64-toolchain.cmake" \
    -DPYRT_RISCV_BOARD="$([ "$flavour" = board ] && echo ON || echo OFF)" \
    -DPYRT_ZIGCC="$ZIGCC" -DPYRT_WERROR=ON >/dev/null
  cmake --build "$BUILD/$flavour" -j2 >/dev/null
  echo "$BUILD/$flavour/libpyrt_kernels.so"
}

# The QEMU command line (without the program) for a flavour.
qemu_cmd() {
  local flavour="$1" vlen="${PYRT_RVV_VLEN:-256}"
  case "$vlen" in 128 | 256 | 512 | 1024) ;; *) die "PYRT_RVV_VLEN=$vlen: expected 128, 256, 512 or 1024" ;; esac
  if [ "$flavour" = board ]; then
    [ "$vlen" -ge 256 ] || die "board builds assume VLEN >= 256 (PYRT_RVV_VLEN=$vlen)"
    printf '%s\n' "$QEMU10" -L "$SYSROOT"
    [ -n "${QEMU_CPU:-}" ] || printf '%s\n' -cpu "max,vlen=$vlen"
  else
    printf '%s\n' "$QEMU7" -L "$SYSROOT"
    [ -n "${QEMU_CPU:-}" ] || printf '%s\n' -cpu "rv64,v=true,vlen=$vlen,elen=64,vext_spec=v1.0,zba=true,zbb=true,zbs=true"
  fi
}

# run [--board] CMD...: CMD's first word python3 (or a path in the userland) runs the
# riscv64 Python; pyrt comes from this checkout, the kernels from build-riscv64/.
cmd_run() {
  local flavour=baseline installed=0
  while [ $# -gt 0 ]; do
    case "$1" in
    --board) flavour=board ;;
    --installed) installed=1 ;;
    *) break ;;
    esac
    shift
  done
  [ $# -gt 0 ] || die "run: give a command, e.g. python3 -m pyrt info"
  need_setup
  local lib="${PYRT_RISCV_KERNELS:-$BUILD/$flavour/libpyrt_kernels.so}"
  local -a checkout=("PYTHONPATH=$ROOT${PYRT_RISCV_PYTHONPATH:+:$PYRT_RISCV_PYTHONPATH}"
    "PYRT_KERNELS=$lib")
  if [ $installed = 1 ]; then
    checkout=("PYTHONPATH=${PYRT_RISCV_PYTHONPATH:-}")
  elif [ ! -f "$lib" ]; then
    die "$lib missing: run tools/riscv64.sh build$([ $flavour = board ] && echo ' --board')"
  fi
  local prog="$1"
  shift
  case "$prog" in
  python3 | python) prog="$SYSROOT/usr/bin/python3" ;;
  /*) [ -e "$prog" ] || prog="$SYSROOT$prog" ;;
  esac
  local -a qemu
  mapfile -t qemu < <(qemu_cmd "$flavour")
  # The host's Python settings must not reach the riscv64 Python; bytecode caching stays
  # on (without it every emulated start recompiles numpy and onnx: 4x slower).
  env -u PYTHONDONTWRITEBYTECODE -u PYTHONHOME -u VIRTUAL_ENV -u PYTHONSTARTUP \
    -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE -u PYRT_KERNELS "${checkout[@]}" \
    "${qemu[@]}" "$prog" "$@"
}

# wheel [--board]: a pure-Python pyrt with the cross-built library inside, tagged
# py3-none-linux_riscv64 (cffi ABI mode: no CPython extension, any Python 3).
cmd_wheel() {
  local flavour lib
  flavour="$(flavour_of "${1:-}")"
  lib="$(cmd_build "${1:-}")"
  "$HOST_PYTHON" "$ROOT/tools/riscv64_wheel.py" --library "$lib" --flavour "$flavour" \
    --out "$ROOT/dist"
}

# test-kernels [--board]: the C kernel check (every ISA against scalar, no Python) at
# each VLEN the flavour runs at (board builds assume VLEN >= 256).
cmd_test_kernels() {
  local flavour lib exe vlen status=0
  flavour="$(flavour_of "${1:-}")"
  lib="$(cmd_build "${1:-}")"
  exe="$BUILD/$flavour/kernel_check"
  local cpu="baseline_rv64"
  [ "$flavour" = board ] && cpu=spacemit_x60
  "$ZIGCC" -target riscv64-linux-gnu.2.36 -mcpu="$cpu" -O2 -std=c11 -Wall -Wextra -Werror \
    -I"$ROOT/kernels/include" -o "$exe" "$ROOT/tests/riscv/kernel_check.c" \
    -L"$(dirname "$lib")" -lpyrt_kernels -Wl,-rpath,"$(dirname "$lib")" -lm
  for vlen in 128 256 512; do
    [ "$flavour" = board ] && [ "$vlen" -lt 256 ] && continue
    echo "== VLEN $vlen"
    local -a qemu
    mapfile -t qemu < <(PYRT_RVV_VLEN=$vlen qemu_cmd "$flavour")
    "${qemu[@]}" "$exe" || status=1
  done
  return $status
}

cmd_env() {
  cat <<EOF
CACHE=$CACHE
SYSROOT=$SYSROOT
QEMU7=$QEMU7
QEMU10=$QEMU10
PLUGIN=$PLUGIN
ZIGCC=$ZIGCC
BUILD=$BUILD
EOF
}

case "${1:-}" in
setup) cmd_setup ;;
build) cmd_build "${2:-}" ;;
run)
  shift
  cmd_run "$@"
  ;;
wheel) cmd_wheel "${2:-}" ;;
test-kernels) cmd_test_kernels "${2:-}" ;;
env) cmd_env ;;
*) die "usage: $0 {setup|build|run|wheel|test-kernels|env} (see the top of this file)" ;;
esac
