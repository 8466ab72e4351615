"""Fidelity benchmark: every built-in method on digits at IPC 1 and 10, its defaults on digits (the
``reduced`` budget the dataset asks for), 5 students.

Writes ``benchmarks/results/digits_methods.json`` and prints a Markdown table (method × IPC:
acc_syn_hard mean ± std, acc_rdm_any, DDRS, distill and eval time) for ``benchmarks/RESULTS.md``.

    python benchmarks/digits_methods.py [--methods dm,dc] [--ipcs 1,10] [--num-eval 5] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

METHODS = ("random", "herding", "kcenter", "dc", "dsa", "dm")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--ipcs", default="1,10")
    parser.add_argument("--num-eval", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "digits_methods.json"))
    args = parser.parse_args()

    import torch

    from ddr.resources.session import Session
    from ddr.runs.evaluate import EvalOptions
    from ddr.runs.run import run

    session = Session(progress_bars=False)
    rows = []
    for ipc in [int(x) for x in args.ipcs.split(",")]:
        for method in args.methods.split(","):
            start = time.perf_counter()
            options = EvalOptions(dataset="digits", ipc=ipc, seed=args.seed, num_eval=args.num_eval,
                                  device=args.device)
            result, outcome = run(method, options=options, session=session, use_cache=False)
            scores = result.scores
            row = {
                "method": method, "ipc": ipc, "num_eval": args.num_eval, "seed": args.seed,
                "acc_real_hard": scores["acc_real_hard"].mean,
                "acc_syn_hard": [scores["acc_syn_hard"].mean, scores["acc_syn_hard"].std],
                "acc_syn_any": [scores["acc_syn_any"].mean, scores["acc_syn_any"].std],
                "acc_rdm_any": [scores["acc_rdm_any"].mean, scores["acc_rdm_any"].std],
                "hlr": [scores["hlr"].mean, scores["hlr"].std], "ior": [scores["ior"].mean, scores["ior"].std],
                "ddrs": [scores["ddrs"].mean, scores["ddrs"].std],
                "distill_seconds": outcome.seconds, "eval_seconds": result.eval_seconds,
                "wall_seconds": time.perf_counter() - start, "params": outcome.params, "budget": outcome.budget,
                "reused_jobs": result.reused,
            }
            rows.append(row)
            print(json.dumps({k: row[k] for k in ("method", "ipc", "acc_syn_hard", "ddrs", "distill_seconds")}),
                  flush=True)
    record = {"device": args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
              "torch": torch.__version__, "threads": torch.get_num_threads(), "machine": platform.machine(),
              "processor": platform.processor(), "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print()
    print("| method | IPC | acc syn-hard | acc random | DDRS | distill (s) | eval (s) |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['ipc']} | {r['acc_syn_hard'][0]:.3f} ± {r['acc_syn_hard'][1]:.3f} | "
              f"{r['acc_rdm_any'][0]:.3f} ± {r['acc_rdm_any'][1]:.3f} | {r['ddrs'][0]:.3f} ± {r['ddrs'][1]:.3f} | "
              f"{r['distill_seconds']:.1f} | {r['eval_seconds']:.1f} |")


if __name__ == "__main__":
    main()
