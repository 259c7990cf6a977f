"""Where a value write's Neo4j CPU goes (issue 11), measured by Neo4j and the JVM, not guessed.

    nice -n 19 .venv/bin/python bench/write_cpu.py [--orgs 30000] [--toggles 300] [--repeat 200]

Neo4j Community 5.26 writes no query log (query.log is an Enterprise feature: the settings are
accepted and the file stays empty), so this uses what Community has:
1. its own Neo4j home (.local/neo4j/bench-writecpu), `graphflags serve` with 2 workers over it,
   N orgs (fan-out 10), a warm-up of toggles, then `--toggles` seed toggles 2 at a time, with
   - Neo4j's CPU by thread kind from /proc (Bolt workers, JIT compiler threads, the rest), and
   - `db.stats.collect('QUERIES')`: each statement's compile (planning or plan-cache lookup) and
     execution time, per invocation;
2. with the service stopped, `--repeat` transactions of each variant of a one-write batch
   (empty, `RETURN 1`, + value_write_begin, + value_set, + audit_append), the statements' own
   cypher/ text and realistic parameters, Neo4j's CPU per transaction by difference;
3. PROFILE of each write statement (db hits per operator), in a transaction rolled back.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness
from harness import REPO

from app.store.cypher import cypher
from neo4j import GraphDatabase

HOME = REPO / ".local" / "neo4j" / "bench-writecpu"
WORK = REPO / ".local" / "bench-writecpu"
FLAG = "beta-dashboard"
WRITE_STATEMENTS = ("value_write_begin", "value_set", "audit_append")


def thread_cpu(pid: int) -> collections.Counter:
    """CPU seconds of a JVM's threads so far, by kind: JIT compilers, Bolt, the rest."""
    used: collections.Counter = collections.Counter()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat.rsplit(")", 1)[1].split()
        kind = "jit" if "CompilerThre" in name else "bolt" if name.startswith("neo4j.Bolt") else "other"
        used[kind] += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def per_call(before: collections.Counter, after: collections.Counter, calls: int) -> str:
    ms = {kind: 1000 * (after[kind] - before[kind]) / calls for kind in ("bolt", "jit", "other")}
    return f"Bolt threads {ms['bolt']:.2f}, JIT compilers {ms['jit']:.2f}, other {ms['other']:.2f} ms (all {sum(ms.values()):.2f})"


def ancestors(n: int) -> list[str]:
    path = [n]
    while n:
        n = (n - 1) // 10
        path.append(n)
    return [f"o-{x}" for x in path]


def batch_of_one(n: int, value: bool) -> dict[str, dict]:
    """The parameters app/store/values.py sends for a batch holding one set of org o-n."""
    org = f"o-{n}"
    return {
        "value_write_begin": {"rows": [{"org": org, "flag": FLAG}]},
        "value_set": {"rows": [{"org": org, "flag": FLAG, "value": value, "sealed": None, "actor": "bench"}]},
        "audit_append": {
            "actor": None,
            "events": [
                {"action": "flag.set", "org": org, "flag": FLAG, "old": None, "new": json.dumps(value)}
                | {"path": ancestors(n), "sealed": None, "schedule": None, "actor": "bench"}
            ],
        },
    }


def toggles(base: str, token: str, orgs: range, value: bool, connections: int = 2) -> int:
    """Seed toggles of `orgs`; how many were answered 200."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        with ThreadPoolExecutor(connections) as pool:
            codes = list(pool.map(lambda n: http.post(f"/o-{n}/{FLAG}/{str(value).lower()}").status_code, orgs))
    return codes.count(200)


def query_stats(driver) -> None:
    records, _, _ = driver.execute_query("CALL db.stats.retrieve('QUERIES') YIELD data RETURN data")
    texts = {cypher(name).strip(): name for name in (*WRITE_STATEMENTS, "cache_invalidations", "schedules_any_due")}
    print("| statement | invocations kept | compile ms (median) | compile ms (mean) | execute ms (mean) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for record in records:
        data = record["data"]
        name = texts.get(data.get("query", "").strip())
        calls = data.get("invocations", [])
        if name is None or not calls:
            continue
        compile_us = sorted(call.get("elapsedCompileTimeInUs", 0) for call in calls)
        execute_us = [call.get("elapsedExecutionTimeInUs", 0) for call in calls]
        print(
            f"| {name} | {len(calls)} | {compile_us[len(calls) // 2] / 1000:.2f} "
            f"| {sum(compile_us) / len(calls) / 1000:.2f} | {sum(execute_us) / len(calls) / 1000:.2f} |"
        )


def statement_variants(driver, pid: int, first: int, repeat: int) -> None:
    value = bool(int(time.time()) % 2)
    variants = {
        "empty transaction": [],
        "RETURN 1": ["RETURN 1"],
        "value_write_begin": ["value_write_begin"],
        "+ value_set": ["value_write_begin", "value_set"],
        "+ audit_append (the whole batch)": list(WRITE_STATEMENTS),
    }
    n = first
    with driver.session() as session:
        for reported in (False, True):  # a first round to warm each variant's plans
            for label, statements in variants.items():
                before = thread_cpu(pid)
                for _ in range(repeat):
                    params = batch_of_one(n, value)

                    def work(tx, statements=statements, params=params):
                        for name in statements:
                            text = name if name == "RETURN 1" else cypher(name)
                            list(tx.run(text, params.get(name, {})))

                    session.execute_write(work)
                    n += 1
                if reported:
                    print(f"  {label}: {per_call(before, thread_cpu(pid), repeat)} a transaction")


def profiles(driver, n: int) -> None:
    def plan_lines(plan, depth=0):
        details = plan.get("args", {}).get("Details", "")[:100]
        yield f"{'  ' * depth}{plan['operatorType']} rows={plan.get('rows')} dbHits={plan.get('dbHits')} {details}"
        for child in plan.get("children", []):
            yield from plan_lines(child, depth + 1)

    def hits(plan):
        return plan.get("dbHits", 0) + sum(hits(child) for child in plan.get("children", []))

    with driver.session() as session:
        tx = session.begin_transaction()
        for name, params in batch_of_one(n, True).items():
            result = tx.run("PROFILE " + cypher(name), params)
            plan = result.consume().profile
            print(f"PROFILE {name}: {hits(plan)} db hits")
            print("\n".join(plan_lines(plan)))
        tx.rollback()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orgs", type=int, default=30_000)
    parser.add_argument("--warm-up", type=int, default=2_000)
    parser.add_argument("--toggles", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--home", type=Path, default=HOME, help="a Neo4j home (one already running is used as it is)")
    options = parser.parse_args()
    if options.orgs < options.warm_up + options.toggles + 4 * options.repeat + 1:
        raise SystemExit("--orgs must exceed the warm-up, the toggles and the variants' writes")
    home = harness.bench_home(options.home, heap="1g", pagecache="1g")
    service = None
    driver = GraphDatabase.driver(home.bolt_uri, auth=("neo4j", home.password))
    try:
        service, base = harness.serve(home, WORK, 2)
        token = harness.dev_token(WORK, "bench", "admin", ["*"])
        harness.ensure_orgs(base, options.orgs, token)
        pid = home.pid() or 0
        value = bool(int(time.time()) % 2)  # each run sets the other value: every toggle a change
        orgs = iter(range(options.orgs - 1, 0, -1))
        warm = [next(orgs) for _ in range(options.warm_up)]
        print(f"warm-up: {toggles(base, token, warm, value, 8)} of {len(warm)} toggles answered 200", flush=True)
        measured = [next(orgs) for _ in range(options.toggles)]
        driver.execute_query("CALL db.stats.clear('QUERIES')")
        driver.execute_query("CALL db.stats.collect('QUERIES')")
        before, started = thread_cpu(pid), time.monotonic()
        ok = toggles(base, token, measured, value)
        wall = time.monotonic() - started
        after = thread_cpu(pid)
        driver.execute_query("CALL db.stats.stop('QUERIES')")
        print(f"{ok} of {len(measured)} toggles in {wall:.1f} s, 2 at a time; Neo4j CPU per toggle:")
        print(f"  {per_call(before, after, len(measured))}")
        query_stats(driver)
        harness.stop(service)
        service = None
        print(f"one-write batches straight to Neo4j ({options.repeat} transactions each), CPU per transaction:")
        statement_variants(driver, pid, options.repeat, options.repeat)
        profiles(driver, next(orgs))
    finally:
        driver.close()
        harness.stop(service)
        home.stop()


if __name__ == "__main__":
    main()
