#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` once, from the llama.cpp sources vendored in the
# llama-cpp-python==0.3.36 sdist (the same llama.cpp the installed wheel was built from),
# for bench/drafting.py's peer. Idempotent: a second run finds the binary and stops.
# The build lives outside the repository, under $LLAMA_SERVER_CACHE (default
# /work/cache/llama-server); the binary is $LLAMA_SERVER_CACHE/build/bin/llama-server.
# About 20-25 minutes on 2 cores; run it in the background:
#   nohup bench/build_llama_server.sh > /work/cache/llama-server.log 2>&1 &
# On a CPU that reports AMX (this VM's Xeon does), GGML_NATIVE compiles ggml's AMX path,
# which dies with SIGSEGV on its first matrix product here: bench/drafting.py starts the
# server with --no-repack, which keeps it off that path (Q4_1 is repacked for no other).
set -euo pipefail

VERSION=0.3.36
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="${LLAMA_SERVER_CACHE:-/work/cache/llama-server}"
DOWNLOADS="${LLAMA_SERVER_DOWNLOADS:-/work/cache/src}"
JOBS="${LLAMA_SERVER_JOBS:-2}"
PIP="${PIP:-$ROOT/.venv/bin/pip}"
BIN="$CACHE/build/bin/llama-server"

if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
    echo "llama-server already built: $BIN"
    "$BIN" --version 2>&1 | head -2
    exit 0
fi

mkdir -p "$CACHE" "$DOWNLOADS"
SDIST="$DOWNLOADS/llama_cpp_python-$VERSION.tar.gz"
if [ ! -f "$SDIST" ]; then
    "$PIP" download --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$DOWNLOADS"
fi
SRC="$CACHE/llama_cpp_python-$VERSION/vendor/llama.cpp"
if [ ! -f "$SRC/CMakeLists.txt" ]; then
    tar -xzf "$SDIST" -C "$CACHE"
fi

# The options this llama.cpp knows (LLAMA_CURL is deprecated and ignored in it; the UI is
# not fetched from the network, and HTTPS is not needed for a server on localhost).
cmake -S "$SRC" -B "$CACHE/build" \
    -DCMAKE_BUILD_TYPE=Release \
    -DLLAMA_BUILD_SERVER=ON \
    -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TESTS=OFF \
    -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF \
    -DLLAMA_OPENSSL=OFF
nice -n 15 cmake --build "$CACHE/build" --target llama-server -j "$JOBS"
"$BIN" --version 2>&1 | head -2
echo "built: $BIN"
