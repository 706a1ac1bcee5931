"""Scoring and decision reads while explanations hit a faulty LLM provider, in one run (issue 16, item 4).

Usage: ``.venv/bin/python bench/llm_fence.py [--rows 4000] [--apps 200] [--explainers 60] [--deadline 5]``

In process, on a scratch SQLite database and a model trained on synthetic rows: score ``--apps``
applications and read each decision back (``workspace.result``), timing every call, first with no
explanation traffic (baseline), then while ``--explainers`` threads (each one request every 0.2 s) ask for explanations from an
OpenAI-compatible provider on loopback that is healthy (answers at once), then (a) hung (accepts, never
answers), (b) dripping (one byte every 0.5 s), (c) huge (a 2 MB answer), (d) failing (HTTP 500). The
explanation traffic itself (each one stored with its audit row, on the same database) costs something; the
ratio that isolates the faulty provider is p99(faulty phase) / p99(healthy phase). Explanations go through the real OpenAI
SDK and the engine's fence (deadline, size cap, a bounded pool of 4 workers, a circuit breaker).

Prints p50/p99 of scoring and of decision reads per phase and the ratio p99(phase)/p99(healthy), measured
in the same run on the same machine (a shared machine is noisy: read ratios, not absolute figures), plus
how the explanations ended (template after timeout/busy/circuit_open/too_large).
"""

from __future__ import annotations

import argparse
import socket
import tempfile
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np

from backend.container import build_services
from backend.container.settings import load_settings
from backend.domain import Actor
from backend.training.synthetic import generate


class Faulty:
    def __init__(self) -> None:
        self.mode = "hung"
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("content-length", 0)))
                try:
                    fake.reply(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def reply(self, h: BaseHTTPRequestHandler) -> None:
        if self.mode == "hung":
            time.sleep(120)
            return
        if self.mode == "failing":
            body = b'{"error": {"type": "api_error", "message": "down"}}'
            h.send_response(500)
        else:
            text = "The risk is low. " * (120_000 if self.mode == "huge" else 20)
            import json

            body = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "gpt-4o",
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                            "finish_reason": "stop"}],
                               "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}).encode()
            h.send_response(200)
        h.send_header("content-type", "application/json")
        h.send_header("content-length", str(len(body)))
        h.end_headers()
        if self.mode == "dripping":
            for i in range(len(body)):
                h.wfile.write(body[i:i + 1])
                h.wfile.flush()
                time.sleep(0.5)
        else:
            h.wfile.write(body)


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs) * 1000, q)) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=4000)
    ap.add_argument("--apps", type=int, default=200)
    ap.add_argument("--explainers", type=int, default=60)
    ap.add_argument("--deadline", type=float, default=5.0)
    args = ap.parse_args()
    socket.setdefaulttimeout(None)
    from backend.models.registry import Registry
    from backend.training.train import train_and_register

    tmp = tempfile.mkdtemp(prefix="bench-llm-fence-")
    report = train_and_register(None, rows=args.rows, seed=1, registry_root=f"{tmp}/models", cv_folds=2)
    Registry(f"{tmp}/models").promote(report["version"], gates_required=False)
    print(f"model trained on {args.rows} rows", flush=True)
    fake = Faulty()
    settings = load_settings(data_dir=tmp, model={"registry_dir": f"{tmp}/models"},
                             llm={"provider": "openai", "base_url": fake.url, "api_key": "sk-bench", "timeout": 60,
                                  "max_retries": 0, "deadline": args.deadline, "breaker_cooldown": 2.0})
    svc = build_services(settings, migrate=True)
    u = svc.users.add("olivia", role="loan_officer")[0]
    officer = Actor(u.username, u.role, u.id)
    df = generate(args.apps * 8, seed=3).drop(columns=["default", "pd_true", "application_id"]).astype(object)
    apps = df.where(df.notna(), None).to_dict("records")
    seed_pid = svc.scoring.score(apps.pop(), submitter=officer).prediction_id

    def phase(mode: str | None) -> dict[str, Any]:
        stop, ended = threading.Event(), Counter[str]()

        def explainer() -> None:
            while not stop.is_set():
                out = svc.workspace.explain(seed_pid, actor=officer)
                ended[out.provider] += 1
                stop.wait(0.2)  # an officer's next request, not a tight loop

        threads = []
        if mode is not None:
            fake.mode = mode
            threads = [threading.Thread(target=explainer, daemon=True) for _ in range(args.explainers)]
            for t in threads:
                t.start()
            time.sleep(1.0)
        score_t, read_t = [], []
        for _ in range(args.apps):
            t0 = time.perf_counter()
            r = svc.scoring.score(apps.pop(), submitter=officer)
            t1 = time.perf_counter()
            svc.workspace.result(r.prediction_id, actor=officer)
            t2 = time.perf_counter()
            score_t.append(t1 - t0)
            read_t.append(t2 - t1)
        stop.set()
        return {"score": score_t, "read": read_t, "explanations": dict(ended)}

    results = {"baseline": phase(None)}
    print("baseline done", flush=True)
    for mode in ("healthy", "hung", "dripping", "huge", "failing"):
        results[mode] = phase(mode)
        print(f"{mode} done", flush=True)
    base_s, base_r = pct(results["healthy"]["score"], 99), pct(results["healthy"]["read"], 99)
    print("x healthy: p99 / p99 of the phase with the same explanation traffic to a healthy provider")
    print(f"{'phase':<10} {'score p50':>10} {'score p99':>10} {'x healthy':>9} {'read p50':>9} {'read p99':>9} "
          f"{'x healthy':>9}  explanations shown (provider: count)")
    for name, r in results.items():
        s99, r99 = pct(r["score"], 99), pct(r["read"], 99)
        print(f"{name:<10} {pct(r['score'], 50):>9.1f}ms {s99:>9.1f}ms {s99 / base_s:>8.2f}x "
              f"{pct(r['read'], 50):>8.1f}ms {r99:>8.1f}ms {r99 / base_r:>8.2f}x  {r['explanations']}")
    svc.close()


if __name__ == "__main__":
    main()
