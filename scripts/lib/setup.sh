# Shared set-up for the scripts: sourced, not run.

step() { printf '\n==> %s\n' "$*"; }

# The Rust toolchain comes with the machine image (rustup); Debian's own
# cargo is too old for edition 2024, so say so rather than install it.
ensure_rust_toolchain() {
  if [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    source "$HOME/.cargo/env"
  fi
  if ! command -v cargo >/dev/null 2>&1; then
    echo "error: cargo not found; install Rust 1.85 or newer with rustup (https://rustup.rs)" >&2
    exit 1
  fi
}
