"""The benchmark's arithmetic (the measurements themselves are not tests)."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from autoencoders import bench


def test_full_estimate_divides_counted_flops_by_the_measured_family_rate():
    throughput = {"conv AE": {"images_per_second": 100.0}, "VAE": {"error": "failed"}}
    flops = {
        "ae-conv": {"chapter": "autoencoders", "kind": "ae", "flops_per_image": 1e6,
                    "full_images": 1000, "full_steps": 10},
        "ae-other": {"chapter": "autoencoders", "kind": "ae", "flops_per_image": 2e6,
                     "full_images": 500, "full_steps": 4},
        "vae-mnist": {"chapter": "vae_mnist", "kind": "vae", "flops_per_image": 1e6,
                      "full_images": 10, "full_steps": 1},
    }
    est = bench.full_estimate(throughput, flops)
    assert est["flop_rate"] == {"conv AE": pytest.approx(1e8)}  # 100 img/s x 1 MFLOP
    ae = est["chapters"]["autoencoders"]
    assert ae["runs"] == 2 and ae["flops"] == pytest.approx(2e9)
    assert ae["cpu_seconds"] == pytest.approx(20.0)              # 2e9 FLOP / 1e8 FLOP/s
    step_bound = 14 * bench.ASSUMED_GPU_MS_PER_STEP / 1e3         # tiny FLOPs: steps dominate
    assert ae["gpu_seconds_assumed"] == pytest.approx(step_bound)
    assert est["chapters"]["vae_mnist"]["cpu_seconds"] != est["chapters"]["vae_mnist"]["cpu_seconds"]  # no rate: NaN

    text = bench.markdown({"machine": {"cpus": 2, "torch_threads": 2, "device": "cpu", "torch": "x"},
                           "throughput": throughput, "quick_experiment": {}, "full_estimate": est,
                           "book": {"smoke": {"error": "boom"}}})
    assert "| autoencoders | 2 | 0 | 0.0 h |" in text and "failed: boom" in text


def test_run_writes_json_and_markdown_with_every_book_build(tmp_path, monkeypatch):
    calls = []

    def fake_child(task, arg="", steps=30, env=None):
        calls.append((task, arg))
        if task == "yardstick":
            return {"seconds": 2.0, "repeats": [2.0, 2.0, 2.0]}
        if task == "throughput":
            return {"images_per_second": 1000.0, "batch_size": 8, "parameters": 1, "peak_mb": 1.0}
        if task == "flops":
            return {"experiments": {}}
        if task == "book":
            return {"wall_seconds": 1.0, "ok": True, "peak_mb_largest_process": 2.0,
                    "chapter_seconds": {"intro": 0.5}}
        return {"images_per_second": {"a": 1.0, "b": 2.0}, "ratio": 2.0}

    monkeypatch.setattr(bench, "_run_child", fake_child)
    out = tmp_path / "results"
    results = bench.run(out, book=True, experiments_too=False, work=tmp_path / "work")
    assert (out / "bench.json").is_file() and "| intro |" in (out / "bench.md").read_text()
    assert len(results["book"]) == 4
    books = [arg.split("|") for task, arg in calls if task == "book"]
    assert [b[0] for b in books] == ["smoke", "quick", "quick", "quick"]
    assert books[1][1] == books[2][1] == books[3][1]   # the quick builds share one model cache
    assert books[1][2] == books[2][2] != books[3][2]   # the last one builds into a new folder


@pytest.mark.parametrize("name", ["ae-conv", "pixelcnn", "q-vae-kl0.01-warmup"])
def test_training_flops_counts_image_and_code_grid_models(name, fresh_cache):
    """The full estimate's FLOP count runs for a model of images, for the
    prior over integer code grids (whose inputs must stay integers) and for
    a VAE whose KL warm-up needs the run's number of training images."""
    flops = bench.training_flops(name)
    assert flops["flops_per_image"] > 0 and flops["full_steps"] > 0


def test_book_builds_use_this_environments_jupyter_book(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    assert Path(bench._jupyter_book()).is_file()


# ------------------------------------------------------------ the yardstick
# The yardstick must never change: every bench.json divides by it. Changing
# it on purpose means changing this digest too, and marking the earlier
# yardstick numbers in docs/benchmarks.md as another yardstick's.
YARDSTICK_SHA256 = "b3b9a58f6f073429b2fd54f4c35f3fb0a339aa2620ad6f96b06be29a32114b10"


def _yardstick_source() -> str:
    import inspect

    return (inspect.getsource(bench.yardstick_once)
            + repr((bench.YARDSTICK_STEPS, bench.YARDSTICK_REPEATS, bench.YARDSTICK_THREADS)))


def test_the_yardstick_is_frozen():
    import hashlib

    digest = hashlib.sha256(_yardstick_source().encode()).hexdigest()
    assert digest == YARDSTICK_SHA256, (
        "the yardstick (bench.yardstick_once and its constants) changed: every earlier "
        "bench.json measured another workload")


def test_the_yardstick_runs_on_two_threads_and_reads_the_median(monkeypatch):
    import torch

    threads = torch.get_num_threads()
    monkeypatch.setattr(bench, "YARDSTICK_STEPS", 2)
    try:
        assert bench.yardstick_once() > 0
        assert torch.get_num_threads() == bench.YARDSTICK_THREADS == 2
    finally:
        torch.set_num_threads(threads)
    times = iter([3.0, 1.0, 2.0, 8.0, 9.0, 7.0])
    monkeypatch.setattr(bench, "yardstick_once", lambda: next(times))
    start, end = bench._yardstick_reading(), bench._yardstick_reading()
    assert start == {"seconds": 2.0, "repeats": [3.0, 1.0, 2.0]} and end["seconds"] == 8.0
    summary = bench.yardstick_summary(start, end)
    assert summary["seconds"] == pytest.approx(5.0)      # the median of all six repetitions
    assert summary["drift"] == pytest.approx(4.0)        # end / start
    assert bench.in_yardsticks(20.0, summary) == "20.0 s = 4.00 yd"
    assert bench.in_yardsticks(1000.0, summary) == "1,000 s = 200 yd"
    assert bench.in_yardsticks(20.0, None) == "20.0 s"


def _fixture_results() -> dict:
    """A bench.json as a run with a baseline, the chapters and the models table writes it."""
    yardstick = bench.yardstick_summary({"seconds": 4.0, "repeats": [4.0, 4.0, 4.0]},
                                        {"seconds": 6.0, "repeats": [6.0, 6.0, 6.0]})
    build = {"wall_seconds": 500.0, "ok": True, "peak_mb_largest_process": 2000.0,
             "chapter_seconds": {"ablations": 200.0}, "prepare_seconds": 300.0}
    pair = {label: {"new": dict(build, wall_seconds=w), "baseline": dict(build, wall_seconds=2 * w)}
            for (label, _), w in zip(bench.QUICK_BUILDS, (400.0, 2.0, 100.0))}
    return {
        "date": "2026-12-02T09:00+00:00", "commit": "abc123def456",
        "machine": {"cpus": 2, "torch_threads": 2, "device": "cpu", "torch": "2.14.1",
                    "python": "3.11.7"},
        "yardstick": yardstick,
        "throughput": {"conv AE": {"images_per_second": 4000.0, "peak_mb": 900.0}},
        "quick_experiment": {"conv AE": {"wall_seconds": 14.0, "peak_mb": 950.0}},
        "book": {"smoke (empty cache)": dict(build, wall_seconds=120.0),
                 **{label: r["new"] for label, r in pair.items()}},
        "baseline": {"rev": "be333b1", "commit": "be333b1aaaaa"},
        "paired": {"pairs": [pair], "ratios": {label: [0.5] for label in pair},
                   "median_ratio": {label: 0.5 for label in pair}},
        "chapters_empty_cache": {"vae_mnist": {"new": {"wall_seconds": 50.0, "ok": True},
                                               "baseline": {"wall_seconds": 100.0, "ok": True}}},
        "models": {"cache": "/tmp/quick-cache",
                   "runs": {"vae-mnist": {"train_seconds": 25.0, "threads": 1},
                            "unused-model": {"train_seconds": 10.0, "threads": 2}},
                   "chapters": {"vae-mnist": "vae_mnist", "unused-model": "ablations"},
                   "traces": {"vae_mnist": {"glue": {"vm_fig": ["vae-mnist"], "vm_hidden": ["vae-mnist"],
                                                     "vm_latent": []},
                                            "claims": [["it trains", ["vae-mnist"]]],
                                            "prose": ["vm_fig", "vm_latent"]},
                              "results": {"glue": {"results_count": ["unused-model", "vae-mnist"]},
                                          "claims": [], "prose": ["results_count"]}}},
    }


def test_every_time_is_reported_in_seconds_and_yardsticks():
    text = bench.markdown(_fixture_results())
    assert "Yardstick (1 yd): **5.00 s**" in text and "drift (end / start) 1.50" in text
    assert "| quick (empty cache) | 400 s = 80.0 yd | True |" in text
    assert "| smoke (empty cache) | 120 s = 24.0 yd |" in text
    assert "| conv AE | 4,000 | 20,000 | 14.0 s = 2.80 yd |" in text   # images per yd = img/s x 5 s
    assert "| quick (empty cache) | 400 s = 80.0 yd | 800 s = 160 yd | 0.50 | 0.50 |" in text
    assert "| vae_mnist | 50.0 s = 10.0 yd | 100 s = 20.0 yd | 0.50 |" in text
    assert "| ablations | 200 s = 40.0 yd |" in text
    assert "300 s = 60.0 yd" in text                                   # the training before the chapters
    # no bare time: every "N s" the tables print is followed by its yardsticks
    assert not re.search(r"\d s \|", text)


def test_models_table_names_the_glues_that_use_each_model():
    results = _fixture_results()
    m = results["models"]
    rows = bench.models_table(m["runs"], m["traces"], results["yardstick"], m["chapters"])
    assert [r["model"] for r in rows] == ["vae-mnist", "unused-model"]   # most expensive first
    used, unused = rows
    assert used["yardsticks"] == pytest.approx(5.0) and used["chapter"] == "vae_mnist"
    assert used["glued"] == {"vae_mnist": ["vm_fig"]}        # shown in the prose
    assert used["glued_not_in_prose"] == 1                   # vm_hidden
    assert used["claims"] == {"vae_mnist": 1}
    assert used["aggregate_pages"] == unused["aggregate_pages"] == ["results"]
    assert unused["glued"] == {} and unused["claims"] == {}  # the results page does not count
    text = bench.markdown(results)
    assert "| `vae-mnist` | vae_mnist | 25.0 s = 5.00 yd | 1 | vae_mnist: `vm_fig` | 1 | 1 |" in text
    assert "| `unused-model` | ablations | 10.0 s = 2.00 yd | 2 | **nothing** | 0 | 0 |" in text


def test_glue_names_in_the_prose():
    text = ("A {glue:text}`vm_a:.3f` and {glue}`vm_b`, {glue:md}`vm_c`.\n"
            "```{glue:figure} vm_fig\n:name: x\n```\n:::{glue:figure} vm_fig2\n:::\n")
    assert bench.glued_in_prose(text) == {"vm_a", "vm_b", "vm_c", "vm_fig", "vm_fig2"}


def test_trace_follows_values_from_statement_to_statement():
    """A glue made from a value computed with model a uses a, even two
    statements later; holding b, loaded, in the same container does not
    make it use b (loading is not using: the real hooks keep quiet then)."""

    class Run:
        def __init__(self, name):
            self.name = name

    recorder: dict = {}

    def use(run):
        recorder["used"].add(run.name)
        return len(run.name)

    namespace = {"Run": Run, "use": use,
                 "glue": lambda name, value: recorder["glued"].append(name),
                 "claim": lambda ok, sentence: recorder["claims"].append(sentence)}
    cells = ["runs = {'a': Run('a'), 'b': Run('b')}\nx = use(runs['a'])",
             "y = x * 2\nglue('g_y', y)\nglue('g_b', use(runs['b']))\n"
             "for k in ('p', 'q'):\n    glue(f'g_{k}', y)",
             "table = {}\ntable['z'] = use(runs['b'])\nglue('g_table', table)\nglue('g_const', 3)\n"
             "total = 0\ntotal += y\nglue('g_total', total)\nclaim(x > 0, 'x is positive')\n"
             "k = use(runs['b'])\nfor k in range(2):\n    glue('g_loop', k)\n"
             "glue('g_comp', [k for k in range(2)])"]
    traced = bench.trace_statements(cells, namespace, recorder)
    assert traced["glue"] == {"g_y": ["a"], "g_b": ["b"], "g_p": ["a"], "g_q": ["a"],
                              "g_table": ["b"], "g_const": [], "g_total": ["a"],
                              "g_loop": [], "g_comp": []}   # a loop's own variable is new
    assert traced["claims"] == [["x is positive", ["a"]]]


def test_trace_page_runs_a_chapter_against_the_cache(tmp_path, fresh_cache, monkeypatch):
    """The real hooks, in a child process: reading what a model learned is
    a use; loading it, reading its config or its training time is not."""
    page = tmp_path / "book" / "tiny.md"
    page.parent.mkdir()
    page.write_text(
        "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n"
        "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n\n"
        "# Tiny\n\n```{code-cell} ipython3\nfrom autoencoders.book import check_claims, claim, glue\n"
        "from autoencoders.cache import get_or_train\nfrom autoencoders.claims import Claim\n\n"
        "a, b = get_or_train('ae-linear'), get_or_train('ae-linear-pca')\n"
        "mse = a.metrics['test']['mse']\nglue('t_mse', mse)\n"
        "glue('t_latent', b.config.latent_dim)\nglue('t_seconds', b.metrics['train_seconds'])\n"
        "claim(mse > 0, 'it errs')\n"
        "check_claims([Claim('t-pca', 'the other errs too', lambda n: n['m'] > 0)],\n"
        "             {'m': b.metrics['test']['mse']})\n```\n\n"
        "It errs by {glue:text}`t_mse:.3f`.\n")
    env = {"AUTOENCODERS_PROFILE": "smoke", "AUTOENCODERS_CACHE": str(fresh_cache)}
    traced = bench._run_child("trace", str(page), env=env)
    # the config and the training time are not uses: only what the model learned
    assert traced.get("glue") == {"t_mse": ["ae-linear"], "t_latent": [], "t_seconds": []}, traced
    # a claim made with claim() and one checked with check_claims() (as most chapters do)
    assert traced["claims"] == [["it errs", ["ae-linear"]], ["the other errs too", ["ae-linear-pca"]]]
    assert traced["prose"] == ["t_mse"]
    runs = bench.cache_runs(fresh_cache)
    assert set(runs) == {"ae-linear", "ae-linear-pca"} and runs["ae-linear"]["train_seconds"] > 0


# ---------------------------------------------------- paired builds, chapters
def test_paired_builds_alternate_and_divide_new_by_baseline(tmp_path):
    trees = {"new": tmp_path / "new-tree", "baseline": tmp_path / "old-tree"}
    calls = []

    def measure(arg):
        profile, cache, out, tree = arg.split("|")
        calls.append((Path(tree).name, Path(out).name))
        return {"wall_seconds": 1.0 if Path(tree) == trees["new"] else 4.0, "ok": True}

    paired = bench.paired_builds(trees, tmp_path / "work", pairs=2, measure=measure)
    sides = [tree for tree, _ in calls]
    assert sides == ["new-tree", "old-tree"] * 3 + ["old-tree", "new-tree"] * 3   # A/B, then B/A
    assert [out for _, out in calls[:6]] == ["quick", "quick", "quick", "quick",
                                             "quick-fresh", "quick-fresh"]
    assert paired["median_ratio"] == {label: 0.25 for label, _ in bench.QUICK_BUILDS}
    assert len(paired["pairs"]) == 2 and paired["ratios"]["quick (empty cache)"] == [0.25, 0.25]


def test_chapter_costs_alternate_and_name_an_unknown_chapter(tmp_path):
    trees = {"new": bench.REPO, "baseline": bench.REPO}
    calls = []

    def measure(arg):
        page, cache, tree = arg.split("|")
        calls.append(Path(page).stem)
        return {"wall_seconds": 1.0, "ok": True}

    costs = bench.chapter_costs(trees, tmp_path, ["vae_mnist", "intro"], measure=measure)
    assert calls == ["vae_mnist", "vae_mnist", "intro", "intro"]
    assert set(costs["intro"]) == {"new", "baseline"}
    with pytest.raises(SystemExit, match="no chapter 'bogus'"):
        bench.chapter_costs(trees, tmp_path, ["bogus"], measure=measure)


# ------------------------------------------------------ docs/benchmarks.md
HISTORICAL = "\n## Earlier measurements (historical, not regenerated)\n\nOld: 675 s.\n"


def test_write_docs_regenerates_only_the_generated_part(tmp_path):
    docs = tmp_path / "benchmarks.md"
    docs.write_text("# Benchmarks\n\nIntro.\n\n" + bench.generated_section(None) + "\n" + HISTORICAL)
    results = _fixture_results()
    bench.write_docs(results, docs)
    text = docs.read_text()
    assert text.startswith("# Benchmarks\n\nIntro.\n\n") and text.endswith(HISTORICAL)
    assert bench.generated_is_intact(text)
    generated = text[text.index(bench.GENERATED_BEGIN):text.index(bench.GENERATED_END)]
    for expected in ("2026-12-02T09:00+00:00", "abc123def456", "2 CPUs", "Yardstick (1 yd): **5.00 s**",
                     bench.YARDSTICK_DEFINITION, "| quick (empty cache) | 400 s = 80.0 yd"):
        assert expected in generated
    assert "Old: 675 s." not in generated
    assert not bench.generated_is_intact(text.replace("400 s = 80.0 yd", "300 s = 60.0 yd", 1))
    bench.write_docs(results, docs)        # again: the same file
    assert docs.read_text() == text


def test_write_docs_from_the_command_line(tmp_path, monkeypatch, capsys):
    docs = tmp_path / "benchmarks.md"
    docs.write_text(bench.generated_section(None) + HISTORICAL)
    (tmp_path / "bench.json").write_text(json.dumps(_fixture_results()))
    monkeypatch.setattr(bench, "DOCS", docs)
    assert bench.main(["--write-docs", str(tmp_path / "bench.json")]) == 0
    assert "80.0 yd" in docs.read_text() and "written:" in capsys.readouterr().out
    docs.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="no generated part"):
        bench.main(["--write-docs", str(tmp_path / "bench.json")])
    with pytest.raises(SystemExit):
        bench.main(["--write-docs", str(tmp_path / "missing.json")])


def test_the_committed_benchmarks_page_is_as_generated():
    """docs/benchmarks.md's generated part is exactly what --write-docs
    wrote: a number typed into it by hand fails here."""
    assert bench.generated_is_intact(bench.DOCS.read_text(encoding="utf-8")), (
        "docs/benchmarks.md: the generated part was edited by hand; regenerate it with "
        "python -m autoencoders bench --write-docs")


# ------------------------------------------------------------ the gpu check
def test_one_epoch_reports_images_per_second_and_peak_memory(monkeypatch):
    monkeypatch.setenv("AUTOENCODERS_DEVICE", "cpu")
    for amp in (False, True):
        r = bench._one_epoch("classifier-real", amp, steps=2)
        assert r["amp"] is amp and r["images"] == 2 * 128 and r["steps"] == 2
        assert r["images_per_second"] > 0 and r["peak_mb"] > 0 and r["peak_kind"] == "process max RSS"
    text = bench.gpu_check_markdown({"machine": bench.machine(), "note": "2 steps per run",
                                     "runs": {"classifier, AMP on": r}})
    assert f"| classifier (`classifier-real`) | on | 256 of {r['epoch_images']:,} |" in text


def test_host_syncs_counts_each_synchronisation_and_names_where(monkeypatch):
    # CUDA's sync debug mode warns once per synchronising call; here a fake
    # run warns as it would, 3 times from one line and once from another
    import warnings
    modes = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: None)
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)

    def run():
        for _ in range(3):
            warnings.warn("called a synchronizing CUDA operation")  # line A
        warnings.warn("called a synchronizing CUDA operation")  # line B
        warnings.warn("something else")
    r = bench._host_syncs(run)
    assert modes == ["warn", "default"]
    assert r["host_syncs"] == 4 and r["sync_steps"] == bench.SYNC_STEPS
    assert sorted(r["sync_sources"].values()) == [1, 3]
    assert all(k.startswith("test_bench.py:") for k in r["sync_sources"])
    row = {"experiment": "vqvae", "images": 10, "epoch_images": 10, "seconds": 1.0,
           "images_per_second": 10.0, "peak_mb": 1.0, "peak_kind": "CUDA", **r}
    text = bench.gpu_check_markdown({"machine": bench.machine(), "note": "n",
                                     "runs": {"VQ-VAE, AMP on": row}})
    assert f"| 4 in {bench.SYNC_STEPS} steps |" in text and "Host syncs:" in text


def test_a_baseline_is_checked_out_in_a_git_worktree_and_removed(tmp_path):
    if not (bench.REPO / ".git").exists():
        pytest.skip("not a git checkout")
    with bench.baseline_tree("HEAD", tmp_path) as (folder, sha):
        assert (folder / "code" / "autoencoders" / "bench.py").is_file() and len(sha) == 40
        assert bench.chapter_pages(folder).keys() == bench.chapter_pages().keys()
    assert not folder.exists()
    with pytest.raises(SystemExit, match="'no-such-rev' is not a commit"):
        with bench.baseline_tree("no-such-rev", tmp_path):
            pass
