"""Every page in 中文: no visible English sentence, nothing missing from the catalogue (issue: "every page, label,
help text, message, chart title and axis follows the language switch through one catalogue").

The pages are rendered with AppTest in their main states; every string a reader sees is read from the element
tree (tests/app/visible_text.py) and English words in it fail the test, unless they are names: the short
ALLOWED list of visible_text, and names taken from where they come from (the registries' model, data set and
preset names, the runs this test made and their classes, the concept catalogue's own Chinese texts, which keep
terms of art and paper titles as they are). The catalogue itself is checked too: every key the code names has a
Chinese entry with the same placeholders, and every entry is used.
"""

from __future__ import annotations

import ast
import io
import re
import string
import tomllib
from pathlib import Path

import pytest

from conftest import ROOT, open_page
from visible_text import WORD, english_words, visible_strings

LOCALE = ROOT / "ui" / "locale" / "zh"
# Every file of the interface goes through the catalogue. A new page or helper joins this list (and its checks) when
# it is converted; until then it fails test_every_key_the_code_names_has_a_chinese_entry.
CONVERTED = {"app.py", "app_pages/home.py", "app_pages/media.py", "app_pages/concepts.py", "ui/i18n.py",
             "ui/concepts_view.py", "ui/concept_demos.py", "ui/sidebar.py", "ui/charts.py", "ui/sparkline.py",
             "ui/resources.py", "ui/warmup.py", "ui/__init__.py",
             "app_pages/train.py", "app_pages/runs.py", "ui/live.py", "ui/forms.py", "ui/runs_view.py",
             "ui/sweeps_view.py", "app_pages/collect.py", "ui/collect.py", "ui/collect_model.py",
             "ui/toolkit.py", "ui/attack_panel.py", "ui/explain_panel.py", "ui/finetune_panel.py"}
LANGUAGE_SWITCH = "Language / 语言"  # the switch's own label names itself in both languages, on purpose


# ---- the catalogue ---------------------------------------------------------------------------------------------

def code_files() -> list[str]:
    files = [ROOT / "app.py", *sorted((ROOT / "app_pages").glob("*.py")), *sorted((ROOT / "ui").rglob("*.py"))]
    return [str(path.relative_to(ROOT)) for path in files]


def keys_in(path: str) -> set[str]:
    """The English keys a file names: the literal first argument of every t(...) and N_(...)."""
    keys = set()
    for node in ast.walk(ast.parse((ROOT / path).read_text())):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("t", "N_")
                and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            keys.add(node.args[0].value)
    return keys


def entries(path: Path) -> dict[str, str]:
    with path.open("rb") as handle:
        return tomllib.load(handle)


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}


def registry_texts() -> set[str]:
    """What core's registries hold that pages translate: preset, model, data set and environment texts."""
    from core.data import dataset_info, list_datasets
    from core.data.environments import ENVIRONMENTS
    from core.models import list_models, model_info
    from core.presets import PRESETS, preset_description
    texts = {preset_description(name) for name in PRESETS} | {model_info(name).description for name in list_models()}
    texts |= {dataset_info(name).description for name in list_datasets(kind=None)}
    for spec in ENVIRONMENTS.values():
        texts |= {spec.description, spec.reward_note, *spec.obs_names, *spec.action_names}
    return texts | form_texts()


def form_texts() -> set[str]:
    """What the task box and the generic Train form show from core: task titles and descriptions, and every option's
    label and help (task, model and data set schemas), as ui.forms draws them."""
    from core.data import dataset_info, list_datasets
    from core.models import list_models, model_info
    from core.tasks import TASK_MODULES, task_spec
    from ui.forms import option_label
    schemas = [task_spec(name).options for name in TASK_MODULES]
    schemas += [model_info(name).options for name in list_models()]
    schemas += [dataset_info(name).options for name in list_datasets(kind=None)]
    texts = {text for name in TASK_MODULES for text in (task_spec(name).title, task_spec(name).description)}
    for schema in schemas:
        for name, option in schema.items():
            texts.add(option_label(name, option))
            if option.help:
                texts.add(option.help)
    return texts


def test_every_text_core_gives_the_pages_has_chinese():
    """Static, so that a model or option no test renders is covered too: a new or reworded text in core fails here."""
    from ui.i18n import catalogue
    missing = sorted(registry_texts() - catalogue("zh").keys())
    assert not missing, f"no Chinese for these texts from core's registries: {missing}"


def metric_texts() -> set[str]:
    """Metric names as core.store.records.metric_title writes them, and capitalised as the live chart's titles."""
    from core.store.records import metric_title
    bases = ["loss", "acc", "robust_acc", "tta_acc", "top5", "d_loss", "g_loss", "d_real", "d_fake", "recon", "kl", "bpc", "return", "length",
             "entropy", "value_loss", "fd", "fd_real", "bleu1", "bleu2", "bleu3", "bleu4",
             "exact", "bleu"]
    titles = {metric_title(prefix + base) for prefix in ("", "train_", "val_", "epoch_train_") for base in bases}
    titles |= {metric_title(key) for key in ("lr", "samples_per_s", "epoch_time_s", "gpu_mem_mb", "gpu_mem_alloc_mb",
                                             "gpu_mem_reserved_mb", "gpu_mem_peak_mb", "gpu_mem_total_mb", "gpu_util_pct")}
    return titles | {title[:1].upper() + title[1:] for title in titles}


def converted(path: str) -> bool:
    return path in CONVERTED or path.startswith("ui/families/")


@pytest.mark.parametrize("path", code_files())
def test_every_key_the_code_names_has_a_chinese_entry(path):
    from ui.i18n import catalogue
    assert converted(path), f"{path} is not listed as converted: move its strings to the catalogue, then list it"
    missing = sorted(keys_in(path) - catalogue("zh").keys())
    assert not missing, f"{path}: no Chinese for {missing}"


def test_the_files_parse_and_no_key_is_in_two_files():
    seen: dict[str, str] = {}
    twice = []
    for path in sorted(LOCALE.glob("*.toml")):
        for key in entries(path):  # tomllib raises on a broken file or a key repeated in one file
            if key in seen:
                twice.append(f"{key!r} in {seen[key]} and {path.name}")
            seen.setdefault(key, path.name)
    assert not twice, twice


@pytest.mark.parametrize("name", sorted(path.name for path in LOCALE.glob("*.toml")))
def test_entries_keep_their_placeholders_and_are_used(name):
    table = entries(LOCALE / name)
    changed = [key for key, text in table.items() if placeholders(key) != placeholders(text)]
    assert not changed, f"{name}: placeholders differ in {changed}"
    used = set().union(*(keys_in(path) for path in code_files()))
    dynamic = {"metrics.toml": metric_texts(), "registry.toml": registry_texts()}.get(name, set())
    if name == "messages.toml":  # core's fixed messages: each must still be a literal in core's source
        source = "\n".join(path.read_text() for path in (ROOT / "core").rglob("*.py"))
        # a key with {placeholders} is a template of an f-string: each of its fixed pieces must be in the source
        dynamic = {key for key in table
                   if all(piece in source for piece in re.split(r"\{\w+\}", key) if piece.strip())}
    unused = sorted(set(table) - used - dynamic)
    assert not unused, f"{name}: nothing shows {unused}"


# ---- the pages -------------------------------------------------------------------------------------------------

def registry_names() -> set[str]:
    """Words of the names the lab's registries hold (mobilenet_v3_small, moving-shapes-early-fusion, CartPole-v1):
    ids that appear as they are in options, labels and run names."""
    from core.data import list_datasets
    from core.models import list_models
    from core.presets import PRESETS
    from core.data import dataset_info
    names = [*PRESETS, *list_models(), *list_datasets(kind=None)]
    # the class names of the built-in data sets (moving shapes: left, clockwise, growing...) are data, shown as
    # they are, like a folder's class names
    names += [str(c) for name in list_datasets(kind=None) for c in (dataset_info(name).classes or ())]
    return {word.lower() for name in names for word in WORD.findall(name)}


def concept_fragments() -> list[str]:
    """The concept catalogue's own Chinese texts as the pages show them (core content, translated at the source;
    it keeps names, terms of art and paper titles in Latin letters), longest first."""
    from core.concepts import AREAS, SECTIONS, list_concepts
    from core.concepts.graph import map_label, wrap_label
    from ui import i18n
    from ui.concepts_view import section_text
    fragments = [area["zh"] for area in AREAS.values()]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(i18n, "language", lambda: "zh")  # section_text names demos with t(), as on the page
        for concept in list_concepts():
            title, summary = concept.title["zh"], concept.summary["zh"]
            fragments += [title, summary, map_label(title), wrap_label(map_label(title), 16), wrap_label(summary, 50)]
            fragments += [section_text(concept, name, "zh") for name in SECTIONS]
            fragments += [formula.caption["zh"] for formula in concept.formulas]
            fragments += [reference.citation().replace("$", "\\$") for reference in concept.references]
    return sorted(set(fragments), key=len, reverse=True)


def untranslated(at, allowed: set[str] = frozenset(), content: list[str] = ()) -> list[str]:
    """Visible strings with English words in them (after removing `content`, text translated at its source)."""
    found = []
    for text in visible_strings(at):
        if text == LANGUAGE_SWITCH:
            continue
        rest = text
        for fragment in content:
            if fragment in rest:
                rest = rest.replace(fragment, " ")
        words = english_words(rest, allowed)
        if words:
            found.append(f"{words[:5]} in {text[:160]!r}")
    return found


@pytest.fixture
def missing():
    """ui.i18n.MISSING, emptied before the page renders."""
    from ui import i18n
    i18n.MISSING.clear()
    yield i18n.MISSING
    i18n.MISSING.clear()


def check(at, missing, allowed=frozenset(), content=()):
    assert not at.exception, [e.value for e in at.exception]
    problems = untranslated(at, registry_names() | set(allowed), content)
    assert not problems, "English on a 中文 page:\n" + "\n".join(problems)
    assert not missing, f"not in the catalogue: {sorted(missing)}"


def test_home_of_an_empty_lab(lab_home, missing):
    check(open_page("app_pages/home.py", lang="zh"), missing)


def test_concepts_explorer(lab_home, missing):
    at = open_page("app_pages/concepts.py", lang="zh")
    check(at, missing, content=concept_fragments())
    at.text_input(key="concepts_query").set_value("没有这样的概念").run()
    check(at, missing, content=concept_fragments())


def concept_ids() -> list[str]:
    from core.concepts import list_concepts
    return [concept.id for concept in list_concepts()]


@pytest.mark.parametrize("concept", concept_ids())
def test_every_concept_page(lab_home, missing, concept):
    at = open_page("app_pages/concepts.py", lang="zh", concept=concept)
    check(at, missing, content=concept_fragments())
    demo_ids = {"conv_kernel", "activations", "optimizer_race", "residual_gradients", "self_attention", "gan_2d",
                "policy_gradient"}
    shown = "\n".join(visible_strings(at))
    assert not [demo for demo in demo_ids if demo in shown]  # the page names its demo, never its internal id


def test_the_english_page_names_its_demo_too(lab_home):
    at = open_page("app_pages/concepts.py", concept="cnn")
    shown = "\n".join(visible_strings(at))
    assert "conv_kernel" not in shown and "The “Convolution kernels” demo applies" in shown
    assert "Try it: Convolution kernels" in shown


def test_a_concept_link_to_no_concept(lab_home, missing):
    check(open_page("app_pages/concepts.py", lang="zh", concept="no-such-idea"), missing,
          allowed={"such", "idea"}, content=concept_fragments())  # the id typed into the link is shown back


def test_media_with_no_runs(lab_home, missing):
    # without runs the pretrained ImageNet models are listed, by their torchvision names
    check(open_page("app_pages/media.py", lang="zh"), missing)


# ---- pages with runs: one small run of each family, made once for this module -----------------------------------

TINY = {  # preset: overrides that make it train in seconds on a CPU
    "digits-mlp": {"optim.epochs": 1},
    "digits-vae": {"model.options.width": 8, "model.options.hidden": 64, "optim.epochs": 1,
                   "task_options.sample_every": 10},
    "digits-dcgan": {"data.image_size": 16, "model.options.width": 8, "model.options.latent_dim": 8, "optim.epochs": 1,
                     "task_options.fd_samples": 64, "task_options.sample_every": 20, "log_every": 10},
    "pydocs-char-gpt": {"model.options.layers": 1, "model.options.heads": 2, "model.options.embed": 32,
                        "task_options.context": 16, "task_options.steps_per_epoch": 10, "task_options.eval_batches": 2,
                        "task_options.sample_every": 5, "task_options.sample_length": 40, "optim.epochs": 1},
    "cartpole-actor-critic": {"optim.epochs": 1, "task_options.updates_per_epoch": 2,
                              "task_options.episodes_per_update": 2, "task_options.eval_episodes": 2,
                              "task_options.sample_every": 1, "log_every": 1},
    "scenes-captioning": {"data.options.num_samples": 40, "data.options.image_size": 32, "model.options.width": 8,
                          "model.options.hidden_size": 32, "model.options.embed_dim": 16, "optim.epochs": 1,
                          "optim.batch_size": 16, "task_options.sample_every": 1},
    "moving-shapes-early-fusion": {"data.options.frames": 4, "data.options.size": 16, "data.options.num_samples": 64,
                                   "model.options.width": 8, "model.hidden": 64, "optim.epochs": 1, "log_every": 5},
}


@pytest.fixture(scope="module")
def lab_with_runs(tmp_path_factory):
    """A LAB_HOME holding one completed tiny run of every family (preset name -> run id)."""
    import torch
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LAB_HOME", str(tmp_path_factory.mktemp("chinese") / "lab"))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        from core import jobs
        from core.jobs.runner import execute_run
        from core.presets import preset
        runs = {}
        try:
            for name, overrides in TINY.items():
                runs[name] = jobs.create(preset(name).replace(**overrides))
                assert execute_run(runs[name], slot="cpu") == "completed", name
        finally:
            torch.set_num_threads(threads)
        yield runs


def run_names(runs: dict[str, str]) -> set[str]:
    """What the runs themselves show: ids, class names, caption vocabularies, environment names."""
    from core.store import RunStore
    from core.tasks.checkpoints import load_run_model
    words = set()
    for run_id in runs.values():
        meta = load_run_model(run_id, "best").metadata
        words |= set(WORD.findall(run_id)) | set(WORD.findall(RunStore().get_run(run_id).name))
        for name in [*meta.get("classes", []), *meta.get("vocab", [])]:
            words |= set(WORD.findall(str(name)))
        words |= set(WORD.findall((meta.get("env") or {}).get("name", "")))
    return words


@pytest.fixture
def media(lab_with_runs, missing):
    """Media in 中文, and a helper that opens the source of one of the runs."""
    from core.inference import list_model_sources
    at = open_page("app_pages/media.py", lang="zh")

    def choose(name: str):
        index = next(i for i, s in enumerate(list_model_sources()) if s.get("run_id") == lab_with_runs[name])
        at.selectbox(key="media_source").set_value(index).run()
        return at
    return choose


def digit_png() -> bytes:
    from PIL import Image
    from sklearn.datasets import load_digits
    image = Image.fromarray((load_digits().images[3] * 255 / 16).astype("uint8"), mode="L").resize((64, 64))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_home_with_runs(lab_with_runs, missing):
    check(open_page("app_pages/home.py", lang="zh"), missing, run_names(lab_with_runs))


def test_media_classifies_an_upload(media, lab_with_runs, missing):
    at = media("digits-mlp")
    check(at, missing, run_names(lab_with_runs))
    at.file_uploader(key="media_images").set_value(("three.png", digit_png(), "image/png")).run()
    at.radio(key="media_explain").set_value("gradcam").run()
    check(at, missing, run_names(lab_with_runs) | {"three"})
    at.toggle(key="media_layers").set_value(True).run()
    check(at, missing, run_names(lab_with_runs) | {"three"})


@pytest.mark.parametrize("name, act", [
    ("digits-vae", None),
    ("digits-dcgan", None),
    ("pydocs-char-gpt", lambda at: at.button(key="lm_generate").click().run()),
    ("cartpole-actor-critic", lambda at: at.button(key="rl_play").click().run()),
    ("scenes-captioning", lambda at: at.button(key="caption_scene").click().run()),
    ("moving-shapes-early-fusion", lambda at: at.selectbox(key="video_example").set_value(
        at.selectbox(key="video_example").options[0]).run().toggle(key="video_explain").set_value(True).run()),
])
def test_media_of_every_family(media, lab_with_runs, missing, name, act):
    at = media(name)
    check(at, missing, run_names(lab_with_runs))
    if act:
        act(at)
        check(at, missing, run_names(lab_with_runs))


# ---- Train and Runs ---------------------------------------------------------------------------------------------

def test_train_configure(lab_home, missing):
    check(open_page("app_pages/train.py", lang="zh"), missing)


def first_presets() -> list[str]:
    from core.presets import list_presets
    from core.tasks import TASK_MODULES
    return [list_presets(task)[0] for task in TASK_MODULES]


def scene_words() -> set[str]:
    """The words of the generated scenes' captions: data a captioning preview shows as it is, like class names."""
    from core.data.scenes import scene_captions
    _, captions = scene_captions(200, 0, 32)
    return {word for caps in captions for caption in caps for word in WORD.findall(caption)}


@pytest.mark.parametrize("name", first_presets())
def test_train_configure_of_every_family(lab_home, missing, name):
    """Each family's form, drawn from its option schemas (labels and help from core) or its own, and its preview."""
    from core.presets import preset
    data = scene_words() if preset(name).task == "captioning" else set()
    check(open_page("app_pages/train.py", lang="zh", preset=name), missing, data)


def test_train_watching_a_queued_run_with_its_steer_panel(lab_home, missing):
    from core import jobs
    from core.presets import preset
    run_id = jobs.create(preset("digits-mlp"))  # no worker: it stays queued, with Cancel and Steer
    at = open_page("app_pages/train.py", lang="zh", run=run_id)
    assert at.button(key=f"steer.apply.{run_id}")
    check(at, missing, set(WORD.findall(run_id)))


def test_train_watching_a_finished_run(lab_with_runs, missing):
    at = open_page("app_pages/train.py", lang="zh", run=lab_with_runs["digits-mlp"])
    check(at, missing, run_names(lab_with_runs))


def test_runs_comparing_two_runs(lab_with_runs, missing):
    ids = [lab_with_runs["digits-mlp"], lab_with_runs["digits-vae"]]
    at = open_page("app_pages/runs.py", lang="zh", compare=",".join(ids))
    check(at, missing, run_names(lab_with_runs))


def test_runs_sweeps_view(lab_home, missing, no_workers):
    from core.jobs import sweeps
    from core.jobs.runner import execute_run
    from core.presets import preset
    spawned = no_workers
    sweep_id = sweeps.start(preset("digits-mlp").replace(**{"optim.epochs": 1}),
                            [sweeps.parse_dimension("optim.lr=1e-4,1e-2")], method="grid")
    for run_id in spawned:
        execute_run(run_id, slot="cpu")
    at = open_page("app_pages/runs.py", lang="zh", sweep=sweep_id)
    assert at.get("plotly_chart")  # the parallel coordinates
    from core.store import RunStore
    names = [sweep_id, RunStore().get_sweep(sweep_id).name, *spawned, *(RunStore().get_run(r).name for r in spawned)]
    check(at, missing, {word for name in names for word in WORD.findall(name)})  # names the user can change


# ---- the checker itself ----------------------------------------------------------------------------------------

def test_the_checker_finds_english_and_lets_names_and_markup_through():
    assert english_words("还没有训练记录。Press **Train** to start.") == ["Press", "Train", "start"]
    assert english_words(":green-badge[:material/check_circle: 已完成] · `digits-mlp-1a2b` · 12 px · GPU 0") == []
    assert english_words("见 core/concepts/optim_race.py 与 torch.optim，[doi.org ↗](https://doi.org/10.1)") == []
    assert english_words("Leaky ReLU 与 leaky 单元") == ["leaky"]
    assert english_words("<div style='font-weight:600'>名称</div> [链接](https://example.com/page)") == []
    assert re.fullmatch(r"[\w ]+", LANGUAGE_SWITCH) is None  # the one exempt label is the bilingual one
