#!/usr/bin/env bash
# Times `dbgroups validate` in text, short and JSON output on the same
# generated manifests, in one run: ERRORS servers with a misspelt key each
# (ERRORS diagnostics), and a 10 MB manifest on a single line. Text output
# must stay linear in the number of diagnostics and bounded in size (it
# renders the first 50, then "and N more"); JSON lists every diagnostic.
# Prints a table; docs/benchmarks.md records the figures.
#   bash scripts/bench-validate.sh [ERRORS]        (default 8000)
#   DBGROUPS=target/debug/dbgroups bash scripts/bench-validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
errors=${1:-8000}
dbgroups=${DBGROUPS:-target/release/dbgroups}
if [ ! -x "$dbgroups" ]; then
  cargo build --release --quiet
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$errors" <<'PY'
import sys
work, errors = sys.argv[1], int(sys.argv[2])
with open(f"{work}/many-errors.yml", "w") as f:
    f.write("application: bench\nredis:\n  servers:\n")
    for n in range(errors):
        f.write(f"    - server: {{ unique_name: r{n}, regoin: eu }}\n")
# 10 MB on one line: a flow mapping of servers, every tenth one misspelt.
entries = []
size, n = 0, 0
while size < 10_000_000:
    key = "regoin" if n % 10 == 0 else "region"
    entry = f"{{ server: {{ unique_name: r{n}, {key}: eu-west-{n} }} }}"
    entries.append(entry)
    size += len(entry) + 2
    n += 1
with open(f"{work}/one-line.yml", "w") as f:
    f.write("application: bench\nredis: { servers: [" + ", ".join(entries) + "] }\n")
PY

# seconds, peak RSS (MiB) and bytes written, of one validate run.
measure() {
  local file=$1 format=$2 start end
  start=$(date +%s.%N)
  /usr/bin/time -f '%M' -o "$work/rss" "$dbgroups" validate --no-color --format "$format" \
    -f "$file" >"$work/out" 2>&1 || true
  end=$(date +%s.%N)
  printf '%.2f %.1f %s' "$(echo "$end - $start" | bc)" \
    "$(echo "$(tail -n 1 "$work/rss") / 1024" | bc -l)" "$(wc -c <"$work/out")"
}

echo "| manifest | diagnostics | format | seconds | peak RSS (MiB) | output bytes |"
echo "|---|---:|---|---:|---:|---:|"
for file in many-errors one-line; do
  # validate exits 1 on these files, by design.
  count=$({ "$dbgroups" validate --format json -f "$work/$file.yml" 2>/dev/null || true; } |
    python3 -c 'import json,sys; print(len(json.load(sys.stdin)["diagnostics"]))')
  for format in text short json; do
    read -r seconds rss bytes <<<"$(measure "$work/$file.yml" "$format")"
    eval "t_${format}=$seconds"
    echo "| $file ($(du -h "$work/$file.yml" | cut -f1)) | $count | $format | $seconds | $rss | $bytes |"
  done
  echo "| $file | | text / json | $(echo "scale=2; $t_text / $t_json" | bc) | | |"
done
