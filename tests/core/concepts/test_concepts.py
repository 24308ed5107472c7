"""The concept catalogue (loader and validation), its map layout, its demos against torch, and its page."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from core.concepts import AREAS, CatalogueError, search, validate_catalogue
from core.concepts.graph import concept_map

ROOT = Path(__file__).resolve().parents[3]


def concept_toml(concept_id: str, related: str = "", area: str = "architectures", presets: str = "[]",
                 demo: str = 'demo = "conv_kernel"') -> str:
    return f'''id = "{concept_id}"
area = "{area}"
{demo}
presets = {presets}

[title]
en = "Title of {concept_id}"
zh = "{concept_id} 的标题"

[summary]
en = "One sentence about {concept_id}."
zh = "关于 {concept_id} 的一句话。"

[body.en]
problem = \'\'\'The problem.\'\'\'
how = \'\'\'How, with $x^2$.\'\'\'
when = \'\'\'When.\'\'\'
failure = \'\'\'Pitfalls.\'\'\'

[body.zh]
problem = \'\'\'问题。\'\'\'
how = \'\'\'原理。\'\'\'
when = \'\'\'何时。\'\'\'
failure = \'\'\'陷阱。\'\'\'

[[formulas]]
latex = \'\'\'\\mathbf{{y}} = \\mathcal{{F}}(\\mathbf{{x}}) + \\mathbf{{x}}\'\'\'
en = "A caption."
zh = "说明。"
{related}
[[references]]
authors = "Ada Author, Bo Builder"
year = 2015
title = "A Paper About {concept_id}"
venue = "CVPR 2016"
url = "https://arxiv.org/abs/1512.03385"
'''


RELATED_BETA = '\n[[related]]\nid = "beta"\nkind = "builds_on"\n'


def write_pair(folder: Path, alpha: str | None = None) -> Path:
    (folder / "alpha.toml").write_text(alpha or concept_toml("alpha", RELATED_BETA), encoding="utf-8")
    (folder / "beta.toml").write_text(concept_toml("beta", area="foundations", demo=""), encoding="utf-8")
    return folder


# ---- loader and validation --------------------------------------------------------------------------

def test_a_good_catalogue_loads_into_frozen_dataclasses(tmp_path):
    alpha, beta = validate_catalogue(write_pair(tmp_path), strict=True)
    assert (alpha.id, alpha.area, alpha.demo, beta.demo) == ("alpha", "architectures", "conv_kernel", None)
    assert alpha.title == {"en": "Title of alpha", "zh": "alpha 的标题"}
    assert alpha.section("how", "en") == "How, with $x^2$." and alpha.section("failure", "zh") == "陷阱。"
    assert alpha.formulas[0].latex == r"\mathbf{y} = \mathcal{F}(\mathbf{x}) + \mathbf{x}"
    assert [(r.id, r.kind) for r in alpha.related] == [("beta", "builds_on")]
    assert alpha.references[0].citation() == "Ada Author, Bo Builder (2015). A Paper About alpha. CVPR 2016."
    with pytest.raises(AttributeError):
        alpha.id = "changed"


BAD_FIXTURES = {
    "unknown related id": (lambda text: text.replace('id = "beta"', 'id = "gamma"'), "related[0].id", "'gamma'"),
    "relation named twice": (lambda text: text.replace(RELATED_BETA, RELATED_BETA * 2), "related[1].id",
                             "already related"),
    "bad relation kind": (lambda text: text.replace('kind = "builds_on"', 'kind = "inspired"'), "related[0].kind",
                          "inspired"),
    "missing zh summary": (lambda text: text.replace('zh = "关于 alpha 的一句话。"\n', ""), "summary.zh", "missing"),
    "empty zh body section": (lambda text: text.replace("how = '''原理。'''", "how = ''' '''"), "body.zh.how", "empty"),
    "missing formula caption": (lambda text: text.replace('zh = "说明。"\n', ""), "formulas[0].zh", "missing"),
    "bad area": (lambda text: text.replace('area = "architectures"', 'area = "magic"'), "area", "'magic'"),
    "id differs from file name": (lambda text: text.replace('id = "alpha"', 'id = "alfa"'), "id", "file name"),
    "unknown demo": (lambda text: text.replace('"conv_kernel"', '"juggling"'), "demo", "juggling"),
    "reference without year": (lambda text: text.replace("year = 2015\n", ""), "references[0].year", "year"),
    "misspelt field": (lambda text: text.replace("presets =", "preset ="), "preset", "unknown field"),
    "not TOML": (lambda text: text + "\n[title\n", "(file)", "not valid TOML"),
    "unknown tool": (lambda text: text.replace("presets = []", 'presets = []\ntools = ["juggle"]'), "tools[0]",
                     "'juggle' is not one of"),
    "tool named twice": (lambda text: text.replace("presets = []", 'presets = []\ntools = ["attack", "attack"]'),
                         "tools[1]", "already listed"),
}


@pytest.mark.parametrize("case", list(BAD_FIXTURES))
def test_each_kind_of_bad_file_is_reported_with_its_file_and_field(tmp_path, case):
    mutate, field, detail = BAD_FIXTURES[case]
    write_pair(tmp_path, mutate(concept_toml("alpha", RELATED_BETA)))
    with pytest.raises(CatalogueError) as error:
        validate_catalogue(tmp_path)
    line = next((ln for ln in str(error.value).splitlines() if ln.startswith("alpha.toml: ")), "")
    assert f"alpha.toml: {field}:" in line and detail in line, str(error.value)


def test_an_unknown_preset_fails_only_in_strict_mode(tmp_path):
    write_pair(tmp_path, concept_toml("alpha", RELATED_BETA, presets='["digits-cnn", "no-such-preset"]'))
    assert validate_catalogue(tmp_path)[0].presets == ("digits-cnn", "no-such-preset")  # the app shows it without
    with pytest.raises(CatalogueError, match=r"alpha.toml: presets\[1\]: 'no-such-preset' is not a preset"):
        validate_catalogue(tmp_path, strict=True)


def test_the_real_catalogue_validates_strictly():
    concepts = validate_catalogue(strict=True)  # the message lists every problem, file and field
    assert len(concepts) >= 26
    assert {c.area for c in concepts} <= set(AREAS)


# The pages of issue 11 (the toolkit): each goes deeper than an overview and links into the lab's tools.
TOOLKIT_PAGES = ("adversarial-examples", "adversarial-training", "parameter-efficient-fine-tuning", "quantisation",
                 "pruning", "knowledge-distillation", "model-export")


@pytest.mark.parametrize("concept_id", TOOLKIT_PAGES)
def test_each_toolkit_page_is_bilingual_cites_its_sources_and_names_a_tool(concept_id):
    from core.concepts import LANGUAGES, SECTIONS, TOOLS, get_concept
    concept = get_concept(concept_id)
    assert concept is not None, f"{concept_id}.toml is missing"
    for lang in LANGUAGES:
        assert concept.title[lang] and concept.summary[lang]
        for name in SECTIONS:
            words = len(concept.section(name, lang).split()) if lang == "en" else len(concept.section(name, lang))
            assert words >= 60, (concept_id, lang, name, words)  # 60-200 words (Chinese: characters, more)
            assert lang != "en" or words <= 200, (concept_id, name, words)
        assert all(formula.caption[lang] for formula in concept.formulas)
    assert any(r.url.startswith("https://") for r in concept.references)
    assert concept.tools and set(concept.tools) <= set(TOOLS)
    assert concept.related


# The pages of issue 15 (sequences and text): each has presets to train and a demo that uses the reader's trained run.
SEQUENCE_PAGES = {"seq2seq": "seq2seq_attention", "encoder-decoder-attention": "seq2seq_attention",
                  "text-classification": "text_attributions"}


@pytest.mark.parametrize("concept_id", SEQUENCE_PAGES)
def test_each_sequence_page_is_bilingual_cites_its_sources_and_demos_a_trained_run(concept_id):
    from core.concepts import LANGUAGES, SECTIONS, get_concept
    from core.concepts.run_demos import RUN_DEMOS
    concept = get_concept(concept_id)
    assert concept is not None, f"{concept_id}.toml is missing"
    for lang in LANGUAGES:
        for name in SECTIONS:
            words = len(concept.section(name, lang).split()) if lang == "en" else len(concept.section(name, lang))
            assert words >= 60, (concept_id, lang, name, words)
            assert lang != "en" or words <= 200, (concept_id, name, words)
    assert concept.demo == SEQUENCE_PAGES[concept_id] and concept.demo in RUN_DEMOS
    assert len(concept.presets) >= 2 and concept.related
    assert all(r.url.startswith("https://") and r.year for r in concept.references)
    for preset in concept.presets:  # the "when" section says what the lab trains
        assert f"`{preset}`" in concept.section("when", "en") and f"`{preset}`" in concept.section("when", "zh")


def test_every_bold_span_renders_in_both_languages_and_captions_have_no_stray_emphasis():
    """CommonMark closes ** only where it is right-flanking: "**束搜索（beam search）**按" stays literal asterisks in
    Chinese, where no space follows; "**束搜索**（beam search）按" renders."""
    markdown_it = pytest.importorskip("markdown_it")
    render = markdown_it.MarkdownIt().render
    concepts = validate_catalogue()
    literal = {f"{c.id}: {lang}.{name}" for c in concepts for lang, sections in c.body.items()
               for name, text in sections.items() if "**" in render(text)}
    assert not literal
    # captions are Markdown too (st.caption): "y*_t ... y*_<t" would turn the words between into italics
    emphasised = {f"{c.id}: {f.caption['en']}" for c in concepts for f in c.formulas for lang in f.caption
                  if "<em>" in render(f.caption[lang]) or "<strong>" in render(f.caption[lang])}
    assert not emphasised


def test_the_overviews_point_at_the_lab_tools_and_the_deeper_pages_point_back():
    from core.concepts import get_concept
    for overview in ("adversarial-robustness", "model-compression"):
        concept = get_concept(overview)
        assert concept.tools
        assert "has no" not in concept.section("when", "en") and "没有" not in concept.section("when", "zh")
    deeper = {c.id for c in validate_catalogue() for r in c.related if r.id == "model-compression" and r.kind == "is_a"}
    assert deeper == {"quantisation", "pruning", "knowledge-distillation"}


def test_every_tool_is_a_command_the_cli_accepts_and_trains_presets_that_exist():
    import shlex

    from core.cli import build_parser, config_from_args
    from core.concepts import TOOLS
    from core.presets import PRESETS
    used = {name for c in validate_catalogue() for name in c.tools}
    assert used == set(TOOLS), "a tool no concept names, or a concept naming one that is gone"
    for tool in TOOLS.values():
        words = shlex.split(tool.command_for("0123456789ab"))
        assert words[:3] == ["python", "-m", "core"], tool.id
        args = build_parser().parse_args(words[3:])  # exits (SystemExit) on an unknown flag or command
        if args.command == "train" and not tool.needs_run:
            config_from_args(args)  # the overrides name real fields with valid values
        assert tool.needs_run or not tool.on_run_page, tool.id  # a run page's panel works on that run
        assert all(p in PRESETS for p in (tool.first, tool.trains) if p), tool.id
    assert TOOLS["attack"].command_for(None).split()[4] == "RUN_ID"


def test_a_concept_offers_to_train_what_its_tools_need(tmp_path):
    from core.concepts import Concept
    concept = Concept(id="x", area="practice", title={}, summary={}, body={}, formulas=(), related=(),
                      presets=("digits-distill",), references=(), tools=("attack", "distill", "adversarial-training"))
    assert concept.tool_presets(have_run=False) == ("digits-cnn",)  # digits-distill is the concept's own already
    assert concept.tool_presets(have_run=True) == ("digits-cnn",)  # adversarial training trains digits-cnn itself
    assert Concept(**{**concept.__dict__, "tools": ("compress",)}).tool_presets(have_run=True) == ()


def _latex_problems(latex: str) -> list[str]:
    problems = []
    unescaped = re.sub(r"\\[{}]", "", latex)  # \{ and \} are literal braces, not groups
    depth = 0
    for char in unescaped:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            problems.append("a '}' closes nothing")
            break
    if depth > 0:
        problems.append("a '{' is never closed")
    if len(re.findall(r"\\left\b", latex)) != len(re.findall(r"\\right\b", latex)):
        problems.append("\\left and \\right do not pair up")
    environments = []
    for kind, name in re.findall(r"\\(begin|end)\{(\w+\*?)\}", latex):
        if kind == "begin":
            environments.append(name)
        elif not environments or environments.pop() != name:
            problems.append(f"\\end{{{name}}} closes nothing open")
    if environments:
        problems.append(f"\\begin{{{environments[-1]}}} is never ended")
    if "$" in latex.replace("\\$", ""):
        problems.append("st.latex needs no $ delimiters")
    return problems


def test_every_formula_passes_a_latex_sanity_check():
    concepts = validate_catalogue()
    bad = {f"{c.id}: {f.latex}": _latex_problems(f.latex) for c in concepts for f in c.formulas}
    assert not {formula: problems for formula, problems in bad.items() if problems}
    assert _latex_problems(r"\frac{a}{b") and _latex_problems(r"\left( x") and not _latex_problems(r"\{ x \}")


def test_search_ranks_title_hits_first_and_filters_by_area(tmp_path):
    concepts = validate_catalogue(write_pair(tmp_path))
    assert [c.id for c in search("beta", "en", concepts=concepts)] == ["beta"]
    assert [c.id for c in search("title", "en", concepts=concepts)] == ["alpha", "beta"]
    assert [c.id for c in search("标题", "zh", "foundations", concepts)] == ["beta"]
    assert search("title nothing-like-this", "en", concepts=concepts) == []


def test_map_labels_are_short_and_wrap_evenly_in_both_scripts():
    from core.concepts.graph import map_label, wrap_label
    assert map_label("Residual networks (ResNet)") == "ResNet"
    assert map_label("Optimisers: SGD, momentum, Adam and AdamW") == "Optimisers"
    assert map_label("Sequence to sequence (encoder-decoder)") == "Sequence to sequence"
    assert map_label("自编码器与变分自编码器（VAE）") == "自编码器与 VAE"
    assert wrap_label("Backpropagation and gradient descent", 16) == "Backpropagation<br>and gradient<br>descent"
    assert wrap_label("反向传播与梯度下降", 16) == "反向传播与<br>梯度下降"  # 5 + 4, not 8 + 1
    assert wrap_label("Transformer 与仅解码器的 GPT", 16) == "Transformer 与<br>仅解码器的 GPT"


# ---- the map ----------------------------------------------------------------------------------------

def test_the_map_has_one_node_per_concept_and_edges_only_between_them():
    concepts = validate_catalogue()
    layout = concept_map(concepts)
    ids = {c.id for c in concepts}
    assert sorted(n.id for n in layout.nodes) == sorted(ids)
    assert all(e.source in ids and e.target in ids and e.source != e.target for e in layout.edges)
    assert len({(n.x, n.y) for n in layout.nodes}) == len(ids)  # no two nodes on one spot
    assert concept_map(list(reversed(concepts))) == layout  # deterministic, whatever the input order
    order = [area for area, _ in layout.columns]
    assert all(n.x == order.index(n.area) for n in layout.nodes)


def test_the_map_draws_a_relation_named_in_both_files_once(tmp_path):
    write_pair(tmp_path)
    text = concept_toml("beta", '\n[[related]]\nid = "alpha"\nkind = "used_in"\n', area="foundations")
    (tmp_path / "beta.toml").write_text(text, encoding="utf-8")
    layout = concept_map(validate_catalogue(tmp_path))
    assert [(e.source, e.target, e.kind) for e in layout.edges] == [("alpha", "beta", "builds_on")]


# ---- demos, each against its reference --------------------------------------------------------------

@pytest.mark.parametrize("image", ["shapes", "random"])
def test_our_convolution_equals_torch_conv2d_for_every_kernel(image):
    import torch
    from core.concepts.demos import KERNELS, conv_kernel, sample_image
    pixels = sample_image("shapes") if image == "shapes" else np.random.default_rng(0).random((13, 17))
    for name, kernel in KERNELS.items():
        ours = conv_kernel(pixels, name)["feature_map"]
        theirs = torch.nn.functional.conv2d(torch.tensor(pixels)[None, None], torch.tensor(kernel)[None, None],
                                            padding=1)[0, 0].numpy()
        assert ours.shape == pixels.shape
        np.testing.assert_allclose(ours, theirs, atol=1e-12, err_msg=name)


def test_activation_derivatives_equal_autograd():
    import torch
    from core.concepts.demos import ACTIVATIONS, activations
    x = np.concatenate([np.linspace(-6, 6, 241), [0.0, 1e-9, -1e-9]])
    reference = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu,
                 "leaky_relu": torch.nn.functional.leaky_relu, "gelu": torch.nn.functional.gelu,
                 "silu": torch.nn.functional.silu}
    ours = activations(ACTIVATIONS, x)
    for name in ACTIVATIONS:
        t = torch.tensor(x, requires_grad=True)
        value = reference[name](t)
        (slope,) = torch.autograd.grad(value.sum(), t)
        np.testing.assert_allclose(ours[name]["value"], value.detach().numpy(), atol=1e-12, err_msg=name)
        np.testing.assert_allclose(ours[name]["derivative"], slope.numpy(), atol=1e-12, err_msg=name)


TORCH_OPTIMIZERS = {
    "sgd": lambda p, lr: __import__("torch").optim.SGD([p], lr=lr),
    "momentum": lambda p, lr: __import__("torch").optim.SGD([p], lr=lr, momentum=0.9),
    "nesterov": lambda p, lr: __import__("torch").optim.SGD([p], lr=lr, momentum=0.9, nesterov=True),
    "rmsprop": lambda p, lr: __import__("torch").optim.RMSprop([p], lr=lr),
    "adam": lambda p, lr: __import__("torch").optim.Adam([p], lr=lr),
    "adamw": lambda p, lr: __import__("torch").optim.AdamW([p], lr=lr),
}


@pytest.mark.parametrize("surface", ["rosenbrock", "ravine", "saddle"])
def test_our_optimizers_step_exactly_like_torch_optim(surface):
    import torch
    from core.concepts.optim_race import OPTIMIZERS, SURFACES, run_optimizer
    spec = SURFACES[surface]
    for name in OPTIMIZERS:
        ours = run_optimizer(spec, name, spec.lr[name], steps=60)
        p = torch.tensor(spec.start, dtype=torch.float64, requires_grad=True)
        optimizer = TORCH_OPTIMIZERS[name](p, spec.lr[name])
        theirs = [p.detach().clone().numpy()]
        for _ in range(60):
            optimizer.zero_grad()
            loss = spec.loss(p[0], p[1])
            loss.backward()
            np.testing.assert_allclose(p.grad.numpy(), spec.grad(*theirs[-1]), rtol=1e-12, atol=1e-12)
            optimizer.step()
            theirs.append(p.detach().clone().numpy())
        assert len(ours) == 61, f"{name} diverged on {surface}"
        np.testing.assert_allclose(ours, np.stack(theirs), atol=1e-6, err_msg=f"{name} on {surface}")


def test_the_race_returns_a_path_per_optimizer_and_momentum_beats_sgd_on_rosenbrock():
    from core.concepts.demos import OPTIMIZERS, optimizer_race
    race = optimizer_race("rosenbrock", steps=400)
    assert set(race["paths"]) == set(OPTIMIZERS) and not race["diverged"]
    assert race["z"].shape == (len(race["y"]), len(race["x"]))
    assert race["losses"]["momentum"][-1] < 0.1 * race["losses"]["sgd"][-1]
    assert optimizer_race("ravine", steps=50, lr_scale=16)["diverged"]  # too large a rate is shown, not hidden


def test_without_shortcuts_the_first_layer_gradient_vanishes_at_depth_50():
    from core.concepts.demos import residual_gradients
    result = residual_gradients(depth=50)
    plain, residual = result["plain"], result["residual"]
    assert plain[0] < 1e-6 * residual[0]  # observed: ~1e-20 against ~4
    assert plain[0] < 1e-6 * plain[-1]  # it decays through the plain stack...
    assert residual[0] > 0.1 * residual[-1]  # ...and stays within a small factor with shortcuts


@pytest.mark.parametrize("causal", [False, True])
def test_our_attention_equals_torch_scaled_dot_product_attention(causal):
    import torch
    from core.concepts.demos import attention, self_attention
    result = self_attention("the cat sat on the mat because the cat was tired", causal=causal)
    q, k, v = (torch.tensor(result[name]) for name in ("q", "k", "v"))
    expected = torch.nn.functional.scaled_dot_product_attention(q[None], k[None], v[None], is_causal=causal)[0]
    np.testing.assert_allclose(result["output"], expected.numpy(), atol=1e-10)
    np.testing.assert_allclose(result["weights"].sum(axis=1), 1.0)
    assert len(result["tokens"]) == 11 and result["weights"].shape == (11, 11)
    if causal:
        assert np.all(np.triu(result["weights"], 1) == 0)
    np.testing.assert_allclose(attention(result["q"], result["k"], result["v"], causal)[1], result["weights"])


def test_attention_splits_chinese_into_characters_and_handles_an_empty_sentence():
    from core.concepts.demos import self_attention, tokenize
    assert tokenize("猫坐在垫子上。") == ["猫", "坐", "在", "垫", "子", "上", "。"]
    assert tokenize("It's a GAN!") == ["It", "'", "s", "a", "GAN", "!"]
    assert self_attention("   ")["weights"].shape == (1, 1)


def test_the_gan_moves_its_samples_onto_the_ring():
    from core.concepts.demos import gan_2d
    result = gan_2d()
    first, last = result["checkpoints"][0], result["checkpoints"][-1]
    assert last["mode_distance"] < 0.3 * first["mode_distance"]  # observed: 1.79 -> 0.26
    assert last["modes_covered"] >= 5 and first["modes_covered"] == 0
    assert len(result["d_loss"]) == len(result["g_loss"]) == last["step"]


def test_reinforce_learns_to_walk_to_the_far_reward():
    from core.concepts.demos import policy_gradient
    result = policy_gradient(episodes=300)
    for curve in result["returns"].values():
        assert curve[-50:].mean() > result["random_return"] + 0.3  # observed: ~0.78 against ~0.31
        assert curve[-50:].mean() > curve[:20].mean() + 0.3
    assert result["p_right"][1:-1].min() > 0.6  # it learned to go right in every cell


# ---- the page, driven without a browser -------------------------------------------------------------

def open_concepts(**query):
    from streamlit.testing.v1 import AppTest
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    for key, value in query.items():
        at.query_params[key] = value
    at.run()
    at.switch_page("app_pages/concepts.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def page_links(at) -> list[tuple[str, str, str]]:
    return [(link.value, link.proto.page, link.proto.query_string) for link in at.get("page_link")]


def card_titles(at) -> list[str]:
    """A card is one markdown: the area badge, the bold title and the grey summary, a paragraph each."""
    cards = [m.value.split("\n\n") for m in at.markdown if m.value.count("\n\n") == 2]
    return [parts[1][2:-2] for parts in cards if parts[0].endswith("]") and parts[1].startswith("**")]


def test_the_explorer_shows_a_card_per_concept_and_searches(lab_home):
    concepts = validate_catalogue()
    at = open_concepts()
    assert at.title[0].value == "Concepts"
    assert sorted(card_titles(at)) == sorted(c.title["en"] for c in concepts)
    assert [s.value for s in at.subheader][1:] == [AREAS[a]["en"] for a in AREAS if any(c.area == a for c in concepts)]
    assert len(at.get("plotly_chart")) == 1
    at.text_input(key="concepts_query").set_value("resnet").run()
    assert card_titles(at)[0] == "Residual networks (ResNet)"
    at.button(key="open.resnet").click().run()  # opens it, with its id in the URL
    assert at.title[0].value == "Residual networks (ResNet)" and at.query_params["concept"] == "resnet"
    related = next(b for b in at.button if b.key and b.key.startswith("related."))
    related.click().run()
    assert at.query_params["concept"] == related.key.removeprefix("related.")
    at.button[0].click().run()  # "All concepts"
    assert at.title[0].value == "Concepts" and "concept" not in at.query_params
    assert at.text_input(key="concepts_query").value == "resnet"  # the search is still there
    at.text_input(key="concepts_query").set_value("no-such-idea").run()
    assert any("No concept matches" in i.value for i in at.info)


def test_every_concept_opens_in_both_languages(lab_home):
    from core.concepts.run_demos import RUN_DEMOS
    from core.presets import PRESETS
    from core.store import RunStore
    concepts = validate_catalogue()
    with_preset = next(c for c in concepts if any(p in PRESETS for p in c.presets))
    preset_name = next(p for p in with_preset.presets if p in PRESETS)
    run_id = RunStore().create_run({"data": {"name": "digits"}}, name=preset_name + "-wide")
    at = open_concepts()
    for lang in ("en", "zh"):
        at.session_state["lang"] = lang
        for concept in concepts:
            at.query_params["concept"] = concept.id
            at.run()
            assert not at.exception, (concept.id, lang, [e.value for e in at.exception])
            assert not at.error, (concept.id, lang, [e.value for e in at.error])  # demos report failures so
            assert at.title[0].value == concept.title[lang]
            links = page_links(at)
            trains = [q for _, page, q in links if page == "train" and q.startswith("preset=")]
            # only presets that exist: the concept's own, then what "Try it on your run" needs (no finished run here)
            wanted = [p for p in concept.presets + concept.tool_presets(have_run=False) if p in PRESETS]
            assert trains[:len(wanted)] == [f"preset={p}" for p in wanted]
            # a demo that needs a finished run (there is none here) offers the concept's presets again, under it
            again = [p for p in concept.presets if p in PRESETS] if concept.demo in RUN_DEMOS else []
            assert set(trains[len(wanted):]) <= {f"preset={p}" for p in again}, concept.id
            if concept.tools:
                assert any("Try it on your run" in m.value or "在你的训练上试试" in m.value for m in at.markdown)
                assert any(code.value.startswith("python -m core ") for code in at.code), concept.id
            if concept is with_preset:
                assert ("train", f"run={run_id}") in [(page, q) for _, page, q in links]


def test_a_chinese_link_opens_in_chinese_and_keeps_the_choice_across_pages(lab_home):
    at = open_concepts(lang="zh")
    assert at.title[0].value == "概念" and at.session_state["lang"] == "zh"
    assert "卷积神经网络（CNN）" in card_titles(at)
    at.switch_page("app_pages/runs.py").run()
    at.switch_page("app_pages/concepts.py").run()
    assert at.title[0].value == "概念" and at.query_params["lang"] == "zh"
    at.session_state["lang"] = "en"
    at.run()
    assert at.title[0].value == "Concepts" and "lang" not in at.query_params


def test_an_unknown_concept_id_shows_a_note_and_the_list(lab_home):
    at = open_concepts(concept="no-such-concept")
    assert any("no-such-concept" in w.value for w in at.warning)
    assert at.title[0].value == "Concepts"


def test_try_it_on_your_run_links_a_finished_run_and_its_command(lab_home):
    """A finished image-classification run fills the box: the run to open on the Train page (its Tools section) and
    the tool's command for it; a run still running, or of another family, is not offered."""
    from core.store import RunStore
    store = RunStore()
    finished = store.create_run({"task": "classification", "data": {"name": "digits"}}, name="digits-cnn")
    store.finish(finished, "completed")
    store.create_run({"task": "classification", "data": {"name": "digits"}}, name="digits-cnn-running")
    other = store.create_run({"task": "gan", "data": {"name": "shapes"}}, name="shapes-dcgan")
    store.finish(other, "completed")
    at = open_concepts(concept="adversarial-examples")
    box = at.selectbox(key="tool_run.adversarial-examples")
    assert box.options == [f"digits-cnn · {finished}"]
    assert ("train", f"run={finished}") in [(page, q) for _, page, q in page_links(at)]
    assert not [q for _, page, q in page_links(at) if q.startswith("preset=")]  # nothing to train first
    assert any(f"python -m core attack {finished} " in code.value for code in at.code)
    at.query_params["concept"] = "knowledge-distillation"  # a Train-form tool: the run is the teacher
    at.run()
    assert any(f"--set task_options.teacher={finished}" in code.value for code in at.code)
    assert ("train", "preset=digits-distill") in [(page, q) for _, page, q in page_links(at)]
    assert ("train", f"run={finished}") not in [(page, q) for _, page, q in page_links(at)]
