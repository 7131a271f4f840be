# Unit and integration tests of every crate, against the PostgreSQL and Redis that services.sh started.
set -euo pipefail
cargo test --workspace --no-fail-fast
