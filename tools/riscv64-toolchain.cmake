# CMake toolchain file: cross-compile pyrt's kernels for riscv64 Linux with zig cc.
#
#   cmake -S . -B build-riscv64/baseline -DCMAKE_TOOLCHAIN_FILE=tools/riscv64-toolchain.cmake \
#         -DPYRT_ZIGCC=/path/to/zigcc [-DPYRT_RISCV_BOARD=ON]
#
# PYRT_ZIGCC is a one-word compiler command that runs `zig cc "$@"` (tools/riscv64.sh
# setup writes one). glibc 2.36 is the oldest the wheel then needs (Debian 12, Ubuntu
# 22.10 and later). Baseline: RV64GC, its RVV table RVV 1.0 + Zba/Zbb/Zbs at any VLEN
# (QEMU 7.2 runs it). Board (PYRT_RISCV_BOARD=ON): SpacemiT X60 (K1, Banana Pi F3, Milk-V
# Jupiter, ...): VLEN 256, Zicond; QEMU 10's -cpu max runs it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR riscv64)

set(PYRT_ZIGCC "" CACHE FILEPATH "zig cc wrapper (one word)")
option(PYRT_RISCV_BOARD "Build for the SpacemiT X60 instead of the RVV baseline" OFF)
# try_compile projects read this file again: hand them the two settings.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES PYRT_ZIGCC PYRT_RISCV_BOARD)
if(NOT PYRT_ZIGCC)
  message(FATAL_ERROR "set -DPYRT_ZIGCC=<zig cc wrapper> (tools/riscv64.sh build does)")
endif()
set(CMAKE_C_COMPILER "${PYRT_ZIGCC}")

# The library is compiled for the flavour's baseline; CMakeLists.txt adds PYRT_FLAGS_rvv to
# the *_rvv.c files only. Baseline: the scalar table and the drivers run on any RV64GC
# (no V), the RVV tables need V + Zba/Zbb/Zbs. They are built without auto-vectorization:
# QEMU 7.2 aborts on the vfcvt.rtz.* that clang's vectorizer emits for float-to-int casts,
# and the scalar table stays the scalar reference. Board: everything is for the X60.
if(PYRT_RISCV_BOARD)
  set(PYRT_RISCV_CPU "spacemit_x60")
  set(PYRT_FLAGS_rvv "-mcpu=spacemit_x60")
else()
  set(PYRT_RISCV_CPU "baseline_rv64 -fno-vectorize -fno-slp-vectorize")
  set(PYRT_FLAGS_rvv -mcpu=baseline_rv64+v+zba+zbb+zbs -fno-vectorize -fno-slp-vectorize)
endif()
set(CMAKE_C_FLAGS_INIT "-target riscv64-linux-gnu.2.36 -mcpu=${PYRT_RISCV_CPU}")
# zig links its own glibc stubs; libm is named here because find_library finds none.
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-lm")
set(CMAKE_EXE_LINKER_FLAGS_INIT "-lm")

# Nothing of the host's may be found: no root path means find_* finds no libraries.
set(CMAKE_FIND_ROOT_PATH "${CMAKE_CURRENT_LIST_DIR}/riscv64-no-sysroot")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
