"""Write benchmarks/RESULTS.md and its plots from the results files.

    python benchmarks/make_results.py

Reads ``benchmarks/paper/results/*.json`` (written by ``benchmarks/paper/run.py``),
``benchmarks/peers/results/*.json`` (``benchmarks/peers/run.py``) and
``benchmarks/swarm/results/*.json`` (``benchmarks/swarm/run.py``) and the decide cells
``benchmarks/decide/results/<task>/*__seed*.json`` (``benchmarks/decide/run.py``). Every
number in the generated files comes from one of those files; nothing here calls a model.
"""

from __future__ import annotations

import json
import re
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stats import bootstrap_mean, ci, mean, pct, verdict
from svgplot import COLORS, axes, esc, header

sys.path.insert(0, str(Path(__file__).resolve().parent / "decide"))
from report import decide_plots, decide_section

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PAPER_ORDER = ["initial", "sgd", "sgd-val", "sgd-early", "independent", "no-gate", "no-gradients"]
PAPER_LABELS = {
    "initial": "initial graph (no optimization)",
    "sgd": "semgrad SGD, neighbour backprop, train gate (reference protocol)",
    "sgd-val": "semgrad SGD, validation gate",
    "sgd-early": "semgrad SGD, train gate with early stop",
    "independent": "independent backprop (TextGrad-style ablation)",
    "no-gate": "no gate",
    "no-gradients": "no gradients (failed input/output pairs only)",
}


def load(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def _fmt_int(n: float) -> str:
    return f"{n:,.0f}"


# --- the paper's experiments -----------------------------------------------------------


def paper_tables(results: list[dict[str, Any]]) -> list[str]:
    if not results:
        return ["_No results yet: run `python benchmarks/paper/run.py`._", ""]
    out: list[str] = []
    by_task: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        by_task[r["task"]].append(r)
    for task, rows in sorted(by_task.items()):
        first = rows[0]
        sizes = first["sizes"]
        cfg = first["config"]
        out += [
            f"### {task}",
            "",
            f"Splits (split seed {cfg['data']['split_seed']}, disjoint, the same for every "
            f"method and seed): {sizes['train']} train, {cfg['data']['gate_size']} validation "
            f"(for `sgd-val`), {sizes['test']} test. {cfg['steps']} steps, batch "
            f"{cfg['optimizer']['batch_size']}; forward `{cfg['models']['forward']['model']}`, "
            f"backward and optimizer `{cfg['models']['optimizer']['model']}`.",
            "",
            "| method | seeds | test accuracy % [95% CI] | Δ vs initial, points [95% CI] | "
            "Δ vs reference `sgd` [95% CI] | optimization requests | optimization tokens | "
            "wall (s, mean) |",
            "|---|---|---|---|---|---|---|---|",
        ]
        methods: dict[str, dict[int, dict[str, Any]]] = defaultdict(dict)
        for r in rows:
            methods[r["method"]][r["seed"]] = r
        initial = [first["initial_scores"]]
        for r in rows:
            if r["initial_scores"] != first["initial_scores"]:
                # Batched llama.cpp replies can differ between processes; each run then
                # scored the initial graph slightly differently. Keep them all.
                initial = [x["initial_scores"] for x in rows]
                break
        p, lo, hi = bootstrap_mean(initial)
        out.append(
            f"| {PAPER_LABELS['initial']} | — | {ci(p, lo, hi)} | — | — | 0 | 0 | — |"
        )
        ref = methods.get("sgd", {})
        for name in [m for m in PAPER_ORDER if m in methods] + sorted(
            m for m in methods if m not in PAPER_ORDER
        ):
            seeds = methods[name]
            final = [seeds[s]["final_scores"] for s in sorted(seeds)]
            deltas = [
                [f - i for f, i in zip(seeds[s]["final_scores"], seeds[s]["initial_scores"], strict=True)]
                for s in sorted(seeds)
            ]
            vs_ref = [
                [f - g for f, g in zip(seeds[s]["final_scores"], ref[s]["final_scores"], strict=True)]
                for s in sorted(seeds)
                if s in ref
            ]
            p, lo, hi = bootstrap_mean(final)
            dp, dlo, dhi = bootstrap_mean(deltas)
            cell_ref = "—"
            if name != "sgd" and vs_ref:
                rp, rlo, rhi = bootstrap_mean(vs_ref)
                cell_ref = f"{ci(rp, rlo, rhi, signed=True)} {verdict(rlo, rhi)}"
            opt = [seeds[s]["optimization_cost"] for s in seeds]
            out.append(
                f"| {PAPER_LABELS.get(name, name)} | {','.join(map(str, sorted(seeds)))} | "
                f"{ci(p, lo, hi)} | {ci(dp, dlo, dhi, signed=True)} {verdict(dlo, dhi)} | "
                f"{cell_ref} | {_fmt_int(mean([c['requests'] for c in opt]))} | "
                f"{_fmt_int(mean([c['tokens'] for c in opt]))} | "
                f"{mean([seeds[s]['wall_s'] for s in seeds]):.0f} |"
            )
        out += ["", *efficiency_table(methods), ""]
        out += ["Per seed (initial → final test accuracy, gate scores per step, accepted steps):", ""]
        for name in sorted(methods):
            for s in sorted(methods[name]):
                r = methods[name][s]
                eff = r["efficiency"]
                gates = ", ".join("—" if g is None else pct(g) for g in eff["gate_scores"])
                out.append(
                    f"- `{name}` seed {s}: {pct(r['initial_test'])} → {pct(r['final_test'])}; "
                    f"gate {pct(r['initial_gate'])} then [{gates}]; accepted "
                    f"{eff['accepted_steps'] or 'none'}; file `benchmarks/paper/results/"
                    f"{task.replace(':', '-')}__{name}__seed{s}.json`"
                )
        out.append("")
    return out


def efficiency_table(methods: dict[str, dict[int, dict[str, Any]]]) -> list[str]:
    out = [
        "Efficiency — model requests and tokens (cache hits included: what the method "
        "asks for) spent until the final graph was reached (initial gate scoring plus every "
        "step up to the last accepted one), against the whole optimization:",
        "",
        "| method | requests to final | tokens to final | requests, whole optimization | tokens, whole optimization |",
        "|---|---|---|---|---|",
    ]
    for name in [m for m in PAPER_ORDER if m in methods]:
        seeds = methods[name].values()
        init_gate = [
            r["optimization_cost"]["requests"] - r["efficiency"]["steps_cost"]["requests"]
            for r in seeds
        ]
        init_tok = [
            r["optimization_cost"]["tokens"] - r["efficiency"]["steps_cost"]["tokens"] for r in seeds
        ]
        to_final_req = [
            g + r["efficiency"]["steps_cost_to_final"]["requests"]
            for g, r in zip(init_gate, seeds, strict=True)
        ]
        to_final_tok = [
            g + r["efficiency"]["steps_cost_to_final"]["tokens"]
            for g, r in zip(init_tok, seeds, strict=True)
        ]
        out.append(
            f"| {name} | {_fmt_int(mean(to_final_req))} | {_fmt_int(mean(to_final_tok))} | "
            f"{_fmt_int(mean([r['optimization_cost']['requests'] for r in seeds]))} | "
            f"{_fmt_int(mean([r['optimization_cost']['tokens'] for r in seeds]))} |"
        )
    return out


# --- the peers ---------------------------------------------------------------------------


def peer_tokens(r: dict[str, Any], phase: str = "optimize") -> int:
    calls = r.get("calls", {}).get(phase, {})
    return int(calls.get("prompt_tokens", 0)) + int(calls.get("completion_tokens", 0))


def peers_tables(results: list[dict[str, Any]], paper: list[dict[str, Any]]) -> list[str]:
    if not results:
        return ["_No results yet: run `python benchmarks/peers/run.py`._", ""]
    out = [
        "Command: `python benchmarks/peers/run.py --task TASK --train 10 --val 10 --test 20 "
        "--budget N --methods ... --seeds 0` (files under `benchmarks/peers/results/<task>/"
        "<sizes>/<method>-s<seed>.json`). Every test prediction is scored by semgrad's metric; "
        "Δ is paired by test item against the initial 3-node graph's scores from the paper "
        "benchmark (same items, same models).",
        "",
        "| task | method | library | seed | status | test accuracy % | Δ vs initial [95% CI] | "
        "optimization calls (budget) | optimization tokens | test calls | wall (s) | note |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    initial: dict[str, dict[str, float]] = {}
    for r in paper:
        initial.setdefault(r["task"], dict(zip(r["test_ids"], r["initial_scores"], strict=True)))
    for r in sorted(results, key=lambda r: (r.get("task", ""), r.get("method", ""), r.get("seed", 0))):
        test = r.get("test", {})
        acc = test.get("accuracy") if r.get("status") == "ok" else None
        opt = r.get("calls", {}).get("optimize", {})
        note = (r.get("error") or "; ".join(r.get("notes", []))).replace("|", "\\|")
        note = note.replace("\n", " ")
        if len(note) > 160:
            note = note[:157] + "..."
        lib = r.get("library", {})
        versions = lib.get("versions", {})
        version = versions.get(lib.get("name", "")) or next(
            (v for k, v in versions.items() if k not in ("python", "openai")), ""
        )
        delta = "—"
        base = initial.get(r.get("task", ""))
        if acc is not None and base:
            pairs = [(e["score"], base[e["id"]]) for e in test.get("examples", []) if e["id"] in base]
            if pairs:
                dp, dlo, dhi = bootstrap_mean([[a - b for a, b in pairs]])
                delta = f"{ci(dp, dlo, dhi, signed=True)} {verdict(dlo, dhi)}"
        wall = r.get("wall_seconds", {}).get("adapter_total", "—")
        out.append(
            f"| {r.get('task', '')} | {r.get('method', '')} ({r.get('optimizer', '')}) | "
            f"{lib.get('name', '')} {version} | {r.get('seed', '')} | {r.get('status', '')} | "
            f"{'—' if acc is None else pct(acc)} | {delta} | {opt.get('calls', '—')} "
            f"({r.get('budget', {}).get('optimize_calls', '—')}) | {peer_tokens(r):,} | "
            f"{r.get('calls', {}).get('test', {}).get('calls', '—')} | {wall} | {note} |"
        )
    out.append("")
    return out


# --- the plot ----------------------------------------------------------------------------


def plot_svg(points: Sequence[tuple[str, float, float]], title: str) -> str:
    """A scatter plot: (label, tokens, accuracy) per point, one colour per label."""
    w, h, left, right, top, bottom = 760, 420, 70, 230, 40, 50
    pw, ph = w - left - right, h - top - bottom
    xmax = max((x for _, x, _ in points), default=1.0) or 1.0
    labels = sorted({lab for lab, _, _ in points})
    color = {lab: COLORS[i % len(COLORS)] for i, lab in enumerate(labels)}

    def sx(x: float) -> float:
        return left + pw * x / (xmax * 1.05)

    def sy(y: float) -> float:
        return top + ph * (1 - y)

    parts = [*header(w, h, title, left, 22), *axes(left, top, pw, ph)]
    for i in range(6):
        y = i / 5
        parts.append(
            f'<text x="{left - 8}" y="{sy(y) + 4:.1f}" text-anchor="end">{100 * y:.0f}%</text>'
            f'<line x1="{left}" y1="{sy(y):.1f}" x2="{left + pw}" y2="{sy(y):.1f}" '
            f'stroke="#ddd"/>'
        )
        x = xmax * i / 5
        parts.append(
            f'<text x="{sx(x):.1f}" y="{top + ph + 18}" text-anchor="middle">{x / 1000:.0f}k</text>'
        )
    parts.append(
        f'<text x="{left + pw / 2}" y="{h - 8}" text-anchor="middle">'
        "optimization tokens (prompt + completion)</text>"
    )
    for lab, x, y in points:
        parts.append(
            f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="5" fill="{color[lab]}" '
            f'fill-opacity="0.75"><title>{esc(lab)}: {100 * y:.1f}% at {x:,.0f} '
            "tokens</title></circle>"
        )
    for i, lab in enumerate(labels):
        y = top + 10 + 18 * i
        parts.append(
            f'<circle cx="{w - right + 20}" cy="{y}" r="5" fill="{color[lab]}"/>'
            f'<text x="{w - right + 30}" y="{y + 4}">{esc(lab)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def plot_points(paper: Iterable[dict[str, Any]], peers: Iterable[dict[str, Any]]) -> list[tuple[str, float, float]]:
    pts: list[tuple[str, float, float]] = []
    for r in paper:
        pts.append((f"semgrad {r['method']}", r["optimization_cost"]["tokens"], r["final_test"]))
    for r in peers:
        if r.get("status") == "ok":
            pts.append((str(r["method"]), float(peer_tokens(r)), r["test"]["accuracy"]))
    return pts


def selection_table() -> list[str]:
    path = HERE / "paper" / "selection" / "bbh_train10.json"
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    out = [
        f"BBH task selection: the initial 3-node graph on the first 10 *training* examples "
        f"of each candidate task (`{data['command']}`; file "
        "`benchmarks/paper/selection/bbh_train10.json`). Chosen among tasks neither at 0 % nor "
        "near 100 %: object_counting, logical_deduction_three_objects and navigate; only "
        "object_counting has been run so far.",
        "",
        "| task | accuracy % | replies without a parseable answer |",
        "|---|---|---|",
    ]
    for task, row in data["tasks"].items():
        out.append(f"| {task} | {pct(row['accuracy'])} | {row['no_answer']} of {row['n']} |")
    return [*out, ""]


def swarm_groups(results: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The swarm results by config name (runs and the agents probe), the decisive size
    (most test items) first."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in results:
        # A run's config is named "<config>-seed<k>" (benchmarks/swarm/run.py `seeded`).
        name = re.sub(r"-seed\d+$", "", r["config"]["name"]) if "config" in r else r.get("name")
        groups[name or "swarm-adversarial"].append(r)

    def size(rs: list[dict[str, Any]]) -> int:
        return max((r["config"]["data"].get("test_size") or 0 for r in rs if "config" in r), default=0)

    return dict(sorted(groups.items(), key=lambda kv: (-size(kv[1]), kv[0])))


def swarm_plot_name(name: str) -> str:
    """The edge-probability plot of one swarm config (the first config keeps its old name)."""
    return "swarm_edges.svg" if name == "swarm-adversarial" else f"swarm_edges_{name}.svg"


def _decisive(runs: list[dict[str, Any]]) -> bool:
    """Runs that recorded per-item test scores (initial swarm and final graph)."""
    return bool(runs) and all("final_test_scores" in r for r in runs if "seed" in r)


def swarm_section(results: list[dict[str, Any]], *, decisive: bool) -> list[str]:
    """The configs whose runs have per-item scores (decisive: in the decide section) or the
    earlier ones (without)."""
    groups = [
        (n, rs)
        for n, rs in swarm_groups(results).items()
        if any("seed" in r for r in rs) and _decisive(rs) == decisive
    ]
    if not groups:
        return []
    if decisive:
        out = ["### Edge optimization: the adversarial-agents demonstration (stage 4)", ""]
    else:
        out = ["## 4. Edge optimization: the adversarial-agents demonstration", ""]
    for name, rs in groups:
        out += swarm_group(name, rs, level="####" if decisive else "###")
    return out


def swarm_group(name: str, results: list[dict[str, Any]], *, level: str) -> list[str]:
    runs = sorted((r for r in results if "seed" in r), key=lambda r: r["seed"])
    probes = [r for r in results if "agents" in r]
    cfg = runs[0]["config"]
    config_path = runs[0].get("config_path", "configs/swarm-adversarial.toml")
    out = [
        f"{level} {name}",
        "",
        f"Command: `python benchmarks/swarm/run.py --config {config_path} "
        f"--seeds {','.join(str(r['seed']) for r in runs)}`. Task `{cfg['data']['test']}`; "
        f"{cfg['data'].get('train_size')} train / {cfg['data'].get('gate_size')} gate / "
        f"{cfg['data'].get('test_size')} test examples; {cfg['steps']} edge steps of "
        f"{cfg['edges']['samples']} sampled graphs on {cfg['edges']['batch_size']} examples each "
        f"(REINFORCE with a moving-average baseline, Adam lr {cfg['edges']['lr']}); the final "
        f"graph keeps the edges with p ≥ {cfg['edges']['threshold']}. Forward model "
        f"`{cfg['models']['forward']['model']}`.",
        "",
    ]
    if probes:
        probe = probes[0]
        out += [
            f"Each agent alone on the {probe['test_size']} test examples, and all agents voting "
            f"(`benchmarks/swarm/results/{name}__agents.json`):",
            "",
            "| channel | test accuracy % |",
            "|---|---|",
            *(f"| {n} | {pct(row['accuracy'])} |" for n, row in probe["agents"].items()),
            f"| all five edges kept (the initial graph) | {pct(probe['all_edges_accuracy'])} |",
            "",
        ]
    names = list(runs[0]["edges"]["probabilities"])
    out += [
        "| seed | test accuracy % before → after | "
        + " | ".join(f"p({n.split('->')[0]})" for n in names)
        + " | kept edges | wall (min) |",
        "|---|---|" + "---|" * len(names) + "---|---|",
    ]
    for r in runs:
        probs = r["edges"]["probabilities"]
        out.append(
            f"| {r['seed']} | {pct(r['initial_test'])} → {pct(r['final_test'])} | "
            + " | ".join(f"{probs[n]:.2f}" for n in names)
            + f" | {', '.join(k.split('->')[0] for k in r['edges']['kept']) or 'none'} | "
            f"{r['wall_s'] / 60:.1f} |"
        )
    before = mean([r["initial_test"] for r in runs])
    after = mean([r["final_test"] for r in runs])
    out += ["", f"Mean over seeds: {pct(before)} % → {pct(after)} %."]
    if all("final_test_scores" in r for r in runs):
        diff = bootstrap_mean(
            [
                [a - b for a, b in zip(r["final_test_scores"], r["initial_test_scores"], strict=True)]
                for r in runs
            ]
        )
        n = len(runs[0]["final_test_scores"])
        out.append(
            f"Against the same swarm with edge optimization off (every edge kept), paired per "
            f"seed and test item ({n} items, {len(runs)} seeds, hierarchical bootstrap, 2,000 "
            f"replicates): Δ {ci(*diff, signed=True)} points, a **{verdict(diff[1], diff[2])}**."
        )
    else:
        out.append(
            "These runs predate per-item test scores: no paired interval (a demonstration "
            "of the mechanism, not a measured effect)."
        )
    out += [
        "Edge probabilities start at p0 and move every step; the per-step values are in each "
        "results file (`probabilities_by_step`) and drawn in each run's `report.html`.",
        "",
    ]
    return [*out, f"![edge probabilities]({swarm_plot_name(name)})", ""]


def edges_svg(runs: list[dict[str, Any]]) -> str:
    """Edge probability against step, one line per edge and seed."""
    w, h, left, right, top, bottom = 760, 360, 60, 200, 36, 44
    pw, ph = w - left - right, h - top - bottom
    names = list(runs[0]["edges"]["probabilities"])
    color = {n: COLORS[i % len(COLORS)] for i, n in enumerate(names)}
    steps = max(len(r["probabilities_by_step"]) for r in runs)
    p0 = {n: 0.5 for n in names}

    def sx(i: float) -> float:
        return left + pw * i / max(steps, 1)

    def sy(y: float) -> float:
        return top + ph * (1 - y)

    parts = [
        *header(w, h, "edge probability per step (all seeds)", left, 20),
        f'<line x1="{left}" y1="{sy(0.5):.1f}" x2="{left + pw}" y2="{sy(0.5):.1f}" '
        'stroke="#999" stroke-dasharray="4 3"/>',
        *axes(left, top, pw, ph),
    ]
    for i in range(6):
        parts.append(
            f'<text x="{left - 6}" y="{sy(i / 5) + 4:.1f}" text-anchor="end">{i / 5:.1f}</text>'
        )
    for i in range(0, steps + 1, max(1, steps // 5)):
        parts.append(
            f'<text x="{sx(i):.1f}" y="{top + ph + 16}" text-anchor="middle">{i}</text>'
        )
    parts.append(f'<text x="{left + pw / 2}" y="{h - 8}" text-anchor="middle">step</text>')
    for r in runs:
        series = [p0, *r["probabilities_by_step"]]
        for n in names:
            pts = " ".join(f"{sx(i):.1f},{sy(s[n]):.1f}" for i, s in enumerate(series))
            parts.append(
                f'<polyline points="{pts}" fill="none" stroke="{color[n]}" stroke-width="1.5" '
                'stroke-opacity="0.8"/>'
            )
    for i, n in enumerate(names):
        y = top + 10 + 18 * i
        parts.append(
            f'<line x1="{w - right + 12}" y1="{y}" x2="{w - right + 28}" y2="{y}" '
            f'stroke="{color[n]}" stroke-width="2"/>'
            f'<text x="{w - right + 34}" y="{y + 4}">{esc(n)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def generate(include_tiny: bool = False) -> dict[Path, str]:
    """Every generated file (RESULTS.md and the plots) and its text, by path."""
    out: dict[Path, str] = {}
    paper = load(HERE / "paper" / "results")
    peers = [
        json.loads(p.read_text())
        for p in sorted((HERE / "peers" / "results").rglob("*.json"))
        if "fake" not in p.parts[-3] and "-budget" in p.parent.name
    ]
    if not include_tiny:
        peers = [r for r in peers if r.get("sizes", {}).get("test", 0) >= 10]
    swarm = load(HERE / "swarm" / "results")
    for name, rs in swarm_groups(swarm).items():
        swarm_runs = [r for r in rs if "seed" in r]
        if swarm_runs:
            out[HERE / swarm_plot_name(name)] = edges_svg(swarm_runs)
    tasks = sorted({r["task"] for r in paper})
    for task in tasks:
        pts = plot_points(
            [r for r in paper if r["task"] == task], [p for p in peers if p.get("task") == task]
        )
        name = f"accuracy_vs_tokens_{task.replace(':', '-')}.svg"
        out[HERE / name] = plot_svg(pts, f"{task}: test accuracy vs optimization tokens")
    out.update(decide_plots())
    text = (HERE / "RESULTS.template.md").read_text()
    sections = {
        "<!-- DECIDE -->": "\n".join(decide_section()),
        "<!-- PAPER -->": "\n".join(paper_tables(paper)),
        "<!-- SELECTION -->": "\n".join(selection_table()),
        "<!-- SWARM -->": "\n".join(swarm_section(swarm, decisive=False)),
        "<!-- SWARM-DECIDE -->": "\n".join(swarm_section(swarm, decisive=True)),
        "<!-- PEERS -->": "\n".join(peers_tables(peers, paper)),
        "<!-- PLOTS -->": "\n".join(
            f"![{t}](accuracy_vs_tokens_{t.replace(':', '-')}.svg)" for t in tasks
        ),
    }
    for marker, body in sections.items():
        text = text.replace(marker, body)
    out[HERE / "RESULTS.md"] = text
    print(f"RESULTS.md from {len(paper)} paper cells and {len(peers)} peer runs")
    return out


def main(include_tiny: bool = False) -> list[Path]:
    """Write every generated file; the paths whose bytes changed (or are new)."""
    files = generate(include_tiny)
    changed = []
    for path, text in files.items():
        data = text.encode()
        if not path.exists() or path.read_bytes() != data:
            path.write_bytes(data)
            changed.append(path)
    print(f"{len(files)} files generated, {len(changed)} changed: {[str(p) for p in changed]}")
    return changed


def replay_decide_cells() -> int:
    """Re-run every committed decide cell from its request log alone (no model) and check
    that it reproduces the committed per-item test scores; non-zero if any differs."""
    import subprocess

    bad = 0
    results = HERE / "decide" / "results"
    for task_dir in sorted(p for p in results.iterdir() if p.is_dir()) if results.exists() else []:
        cells = [json.loads(p.read_text()) for p in sorted(task_dir.glob("*__seed*.json"))]
        if not cells:
            continue
        methods = sorted({c["method"] for c in cells})
        seeds = sorted({int(c["seed"]) for c in cells})
        cmd = [
            sys.executable, str(HERE / "decide" / "run.py"), "--task", cells[0]["task"],
            "--methods", ",".join(methods), "--seeds", ",".join(map(str, seeds)), "--replay",
        ]  # fmt: skip
        bad += subprocess.run(cmd).returncode != 0
    return bad


def replay_swarm() -> int:
    """Re-run every committed swarm seed and agents probe from its request log alone
    (`swarm/run.py --replay`); non-zero if any per-item result differs. Without the task's
    data they are skipped, saying so."""
    import subprocess

    bad = 0
    for name, rs in swarm_groups(load(HERE / "swarm" / "results")).items():
        runs = [r for r in rs if "seed" in r]
        if not runs:
            continue
        config = runs[0].get("config_path", "configs/swarm-adversarial.toml")
        seeds = ",".join(str(r["seed"]) for r in runs)
        cmd = [sys.executable, str(HERE / "swarm" / "run.py"), "--config", str(ROOT / config)]
        print(f"swarm {name}: replay", flush=True)
        bad += subprocess.run([*cmd, "--seeds", seeds, "--replay"]).returncode != 0
    return bad


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument(
        "--replay",
        action="store_true",
        help="first re-run every decide cell and swarm run from its committed request log "
        "(no model) and fail if any per-item result differs",
    )
    ap.add_argument(
        "--check",
        action="store_true",
        help="fail if RESULTS.md or a plot would change (for CI)",
    )
    opts = ap.parse_args()
    if opts.replay and replay_decide_cells():
        sys.exit("a decide cell did not replay to its committed results")
    if opts.replay and replay_swarm():
        sys.exit("a swarm run did not replay to its committed results")
    changed = main()
    if opts.check and changed:
        names = ", ".join(str(p.relative_to(HERE)) for p in changed)
        sys.exit(f"not what the committed results files give ({names}): regenerate them")
    sys.exit(0)
