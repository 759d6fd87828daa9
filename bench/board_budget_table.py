"""Table of bench/board-budget.sh: one row per ranking, measured instructions on the QEMU board
next to accuracy. Usage: python3 bench/board_budget_table.py OUT_DIR"""
import json
import pathlib
import sys

out = pathlib.Path(sys.argv[1])
times = dict(l.split() for l in (out / "times.txt").read_text().splitlines() if l.strip())
print("| run | ranking | stop | measured instructions | of unpruned | predicted (error) | FLOPs PR | top-1 | Δ top-1 | streams 1/2/3 | wall |")
print("|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|")
for r in ["budget", "budget-greedy", "budget-soft", "score", "macs", "flops", "flops-matched"]:
    f = out / r / "state.json"
    if not f.exists():
        continue
    state = json.loads(f.read_text())
    h = state["history"]
    first, last = h[0], h[-1]
    v = out / r / "board-budget.json"
    if v.exists():
        v = json.loads(v.read_text())
        measured, predicted = v["measured_latency"], v["predicted_latency"]
        pred = f"{predicted:,.0f} ({100 * (predicted - measured) / measured:+.2f} %)"
        unpruned = sum(first["board_trace"]["counts"])
        stop = f"≤ {v['max_latency']:,} instr"
    else:
        b = json.loads((out / r / "board.json").read_text())
        measured = sum(l["count"] for l in b["layers"])
        cut = state["config"]["target"]["flops_reduction"]
        pred, unpruned, stop = "–", None, f"−{100 * cut:.1f} % FLOPs"
        ref = out / "budget" / "state.json"
        if ref.exists():
            unpruned = sum(json.loads(ref.read_text())["history"][0]["board_trace"]["counts"])
    share = f"{100 * measured / unpruned:.1f} %" if unpruned else "?"
    ch = dict(last["channels"])
    streams = "/".join(str(ch.get(k, "?")) for k in ["conv1", "layer2.0.conv2", "layer3.0.conv2"])
    rank = state["config"].get("rank", "score")
    if rank != "score":
        rank += f" ^{state['config'].get('cost_exponent', 1.0)}"
    print(f"| {r} | {rank} | {stop} | {measured:,} | {share} | {pred} | "
          f"{100 * (1 - last['macs'] / first['macs']):.1f} % | {100 * last['top1']:.2f} % | "
          f"{100 * (last['top1'] - first['top1']):+.2f} | {streams} | {times.get(r, '?')} s |")
