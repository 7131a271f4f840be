# rustfmt and clippy over the whole workspace; warnings fail the build.
set -euo pipefail
rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt clippy
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
