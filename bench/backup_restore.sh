#!/usr/bin/env bash
# Backup and restore timings (issue 3) on the scale home of bench/scale.py, whatever graph it holds:
#   flock /tmp/graphflags-bench.lock bench/backup_restore.sh
# Online export over Bolt, restore of that export (neo4j-admin import + migrations + catalog
# sync), offline dump, and load of that dump. Each restore replaces the scale home's database
# with the same graph, so the home ends as it began. bench/scale.py does the same for each size
# itself; this script is for a home kept with `bench/scale.py --keep`.
set -euo pipefail
cd "$(dirname "$0")/.."
HOME_DIR=${SCALE_HOME:-.local/neo4j/scale}
OUT=${BACKUP_OUT:-.local/scale/backups}
G=.venv/bin/graphflags
mkdir -p "$OUT"
neo4j/neo4jctl start "$HOME_DIR" >/dev/null
BOLT_PORT=$(sed -n 's/^server.bolt.listen_address=.*://p' "$HOME_DIR/conf/neo4j.conf")
export NEO4J_URI="bolt://127.0.0.1:$BOLT_PORT" NEO4J_PASSWORD="$(neo4j/neo4jctl password "$HOME_DIR")"
export GRAPHFLAGS_LOG_LEVEL=WARNING

stamp() { date +%s.%N; }
took() { python3 -c "print(f'{$2 - $1:.1f} s')"; }

t0=$(stamp); export_dir=$($G backup --to "$OUT" --home "$HOME_DIR"); t1=$(stamp)
echo "online export: $(took "$t0" "$t1") -> $export_dir ($(du -sh "$export_dir" | cut -f1))"
t0=$(stamp); $G restore --from "$export_dir" --home "$HOME_DIR" --heap 2g --off-heap 4g; t1=$(stamp)
echo "restore from export (verify, import, start, migrations, sync): $(took "$t0" "$t1")"
t0=$(stamp); dump_dir=$($G backup --offline --to "$OUT" --home "$HOME_DIR"); t1=$(stamp)
echo "offline dump (stop, dump, start): $(took "$t0" "$t1") -> $dump_dir ($(du -sh "$dump_dir" | cut -f1))"
t0=$(stamp); $G restore --from "$dump_dir" --home "$HOME_DIR" --heap 2g; t1=$(stamp)
echo "restore from dump (verify, load, start, migrations, sync): $(took "$t0" "$t1")"
rm -rf "$export_dir" "$dump_dir"
