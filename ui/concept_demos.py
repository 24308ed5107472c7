"""The concept demos on the page: controls, a cached call into core.concepts.demos, and a Plotly chart.

Results are cached per argument set (st.cache_data), so moving back to a setting is instant and every
session shares one computation. Widget keys are prefixed "demo." and are unique per demo.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from core.analysis.series import moving_average
from core.concepts import demos
from ui.i18n import tr

OPTIMIZER_COLOURS = {"sgd": "#64748b", "momentum": "#0ea5e9", "nesterov": "#10b981", "rmsprop": "#f59e0b",
                     "adam": "#ef4444", "adamw": "#8b5cf6"}


def render_demo(demo_id: str, lang: str) -> None:
    renderers = {"conv_kernel": _conv, "activations": _activations, "optimizer_race": _race,
                 "residual_gradients": _residual, "self_attention": _attention, "gan_2d": _gan,
                 "policy_gradient": _policy}
    try:
        renderers[demo_id](lang)
    except Exception as exc:  # a demo bug must not hide the rest of the concept
        st.error(tr("The demo could not run:", "演示无法运行：") + f" {type(exc).__name__}: {str(exc)[:200]}",
                 icon=":material/error:")


def _figure(fig: go.Figure, height: int) -> None:
    # Subplot titles are annotations above each panel: the legend then goes a row higher.
    titled = bool(fig.layout.annotations)
    legend = dict(orientation="h", x=0) | (dict(yref="container", yanchor="top", y=0.995) if titled
                                           else dict(yanchor="bottom", y=1.02))
    fig.update_layout(height=height + (40 if titled else 0), margin=dict(l=10, r=10, t=80 if titled else 40, b=10),
                      legend=legend)
    st.plotly_chart(fig, config={"displayModeBar": False})


# ---- convolution ------------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=32)
def _conv_result(image_name: str, kernel: str) -> dict:
    return demos.conv_kernel(demos.sample_image(image_name), kernel)


def _conv(lang: str) -> None:
    left, right = st.columns(2)
    image = left.segmented_control(tr("Image", "图像"), ["shapes", "digit"], default="shapes", required=True,
                                   key="demo.conv.image", format_func=lambda n: {"shapes": tr("Shapes", "几何图形"),
                                                                                 "digit": tr("Digit", "手写数字")}[n])
    kernel = right.selectbox(tr("Kernel", "卷积核"), list(demos.KERNELS), index=2, key="demo.conv.kernel")
    result = _conv_result(image, kernel)
    fig = make_subplots(rows=1, cols=3, column_widths=[0.4, 0.2, 0.4], horizontal_spacing=0.06,
                        subplot_titles=(tr("Input", "输入"), tr("Kernel (3x3)", "卷积核 (3x3)"),
                                        tr("Feature map", "特征图")))
    fig.add_trace(go.Heatmap(z=result["image"], colorscale="gray", showscale=False), row=1, col=1)
    k = result["kernel"]
    limit = float(np.abs(result["feature_map"]).max()) or 1.0
    # reversed RdBu: red positive, blue negative, white zero (as the caption says)
    fig.add_trace(go.Heatmap(z=k, colorscale="RdBu", reversescale=True, zmid=0, showscale=False,
                             text=np.round(k, 2), texttemplate="%{text}"), row=1, col=2)
    fig.add_trace(go.Heatmap(z=result["feature_map"], colorscale="RdBu", reversescale=True, zmin=-limit, zmax=limit,
                             colorbar=dict(len=0.8, thickness=12)), row=1, col=3)
    fig.update_yaxes(autorange="reversed", scaleanchor="x", showticklabels=False)
    fig.update_xaxes(showticklabels=False)
    for col in (2, 3):
        fig.update_yaxes(scaleanchor=f"x{col}", row=1, col=col)
    _figure(fig, 360)
    st.caption(tr("Each output pixel is the kernel's dot product with the 3x3 window around it (zero padding). "
                  "Red is positive, blue negative: Sobel-x fires on vertical edges, with opposite signs on the "
                  "two sides; the Laplacian fires on outlines; blur averages. A CNN learns such kernels instead "
                  "of being given them.",
                  "每个输出像素是卷积核与其周围 3x3 窗口的点积（零填充）。红色为正，蓝色为负：Sobel-x 对竖直边缘响应，"
                  "两侧符号相反；拉普拉斯核对轮廓响应；模糊核取平均。CNN 会自己学出这样的卷积核，而不是由人指定。"))


# ---- activations ------------------------------------------------------------------------------------

def _activations(lang: str) -> None:
    names = st.pills(tr("Functions", "函数"), list(demos.ACTIVATIONS), selection_mode="multi",
                     default=["sigmoid", "tanh", "relu", "gelu"], key="demo.act.names")
    x = np.linspace(-5, 5, 401)
    result = demos.activations(names or ["relu"], x)
    fig = make_subplots(rows=1, cols=2, subplot_titles=(tr("f(x)", "f(x)"), tr("f'(x): the gradient factor",
                                                                               "f'(x)：梯度乘上的因子")))
    colours = ["#4f46e5", "#f97316", "#10b981", "#ef4444", "#0ea5e9", "#8b5cf6"]
    for i, (name, curves) in enumerate(result.items()):
        colour = colours[demos.ACTIVATIONS.index(name) % len(colours)]
        fig.add_trace(go.Scatter(x=x, y=curves["value"], name=name, line=dict(color=colour), legendgroup=name),
                      row=1, col=1)
        fig.add_trace(go.Scatter(x=x, y=curves["derivative"], name=name, line=dict(color=colour),
                                 legendgroup=name, showlegend=False), row=1, col=2)
    fig.update_layout(hovermode="x unified")
    _figure(fig, 340)
    st.caption(tr("The right panel is what backpropagation multiplies by at each layer. Sigmoid's slope is at "
                  "most 0.25, so ten stacked sigmoids shrink a gradient at least a million-fold; ReLU passes it "
                  "unchanged where the unit is active, and zero where it is not (a unit that is never active "
                  "is 'dead'). GELU and SiLU are smooth versions used in Transformers.",
                  "右图是反向传播在每一层要乘上的因子。Sigmoid 的斜率最大只有 0.25，十层叠加会让梯度缩小至少一百万倍；"
                  "ReLU 在激活时原样传递梯度，未激活时为零（永远不激活的单元就“死”了）。GELU 与 SiLU 是其平滑版本，"
                  "常用于 Transformer。"))


# ---- optimiser race ---------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=32)
def _race_result(surface: str, steps: int, lr_scale: float) -> dict:
    return demos.optimizer_race(surface, steps, lr_scale)


def _race(lang: str) -> None:
    names = {"rosenbrock": tr("Rosenbrock valley", "Rosenbrock 山谷"), "ravine": tr("Narrow ravine", "狭长沟谷"),
             "saddle": tr("Saddle point", "鞍点")}
    a, b, c = st.columns(3)
    surface = a.selectbox(tr("Loss surface", "损失曲面"), list(demos.SURFACES), format_func=names.get,
                          key="demo.race.surface")
    steps = b.select_slider(tr("Steps", "步数"), [100, 200, 400, 800], value=400, key="demo.race.steps")
    scale = c.select_slider(tr("Learning-rate multiplier", "学习率倍数"), [0.25, 0.5, 1.0, 2.0, 4.0], value=1.0,
                            key="demo.race.lr", format_func=lambda v: f"×{v:g}")
    result = _race_result(surface, steps, scale)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.58, 0.42], horizontal_spacing=0.08,
                        subplot_titles=(tr("Paths on the loss surface", "损失曲面上的路径"),
                                        tr("Loss per step", "每一步的损失")))
    z = result["z"]
    fig.add_trace(go.Contour(x=result["x"], y=result["y"], z=np.log1p(z - z.min()), showscale=False, ncontours=25,
                             colorscale="Blues", reversescale=True, hoverinfo="skip", opacity=0.8), row=1, col=1)
    for name, path in result["paths"].items():
        colour = OPTIMIZER_COLOURS[name]
        label = f"{name} (lr {result['lr'][name]:.2g})"
        fig.add_trace(go.Scatter(x=path[:, 0], y=path[:, 1], mode="lines", name=label, legendgroup=name,
                                 line=dict(color=colour, width=2)), row=1, col=1)
        losses = result["losses"][name] - z.min() + 1e-12  # distance to the surface's minimum value
        fig.add_trace(go.Scatter(y=losses, mode="lines", name=label, legendgroup=name, showlegend=False,
                                 line=dict(color=colour, width=2)), row=1, col=2)
    minima = np.array(result["minima"])
    fig.add_trace(go.Scatter(x=minima[:, 0], y=minima[:, 1], mode="markers", name=tr("minimum", "最小值"),
                             marker=dict(symbol="star", size=14, color="#111827")), row=1, col=1)
    fig.add_trace(go.Scatter(x=[result["start"][0]], y=[result["start"][1]], mode="markers", showlegend=False,
                             marker=dict(size=10, color="#111827", symbol="circle-open")), row=1, col=1)
    fig.update_xaxes(range=[result["x"][0], result["x"][-1]], row=1, col=1)
    fig.update_yaxes(range=[result["y"][0], result["y"][-1]], row=1, col=1)
    fig.update_yaxes(type="log", exponentformat="e", title_text=tr("loss − minimum", "损失 − 最小值"), row=1, col=2)
    fig.update_xaxes(title_text=tr("step", "步"), row=1, col=2)
    _figure(fig, 460)
    if result["diverged"]:
        st.warning(tr("Diverged at this rate: ", "此学习率下发散：") + ", ".join(result["diverged"]))
    st.caption(tr("Our own update rules, written out in core/concepts/optim_race.py and checked step for step "
                  "against torch.optim. Each optimiser starts at the circle with a rate tuned for this surface; "
                  "the multiplier scales all of them. Momentum carries speed along the valley floor, Adam and "
                  "RMSProp rescale each coordinate by its gradient's size, and plain SGD must keep its rate "
                  "small enough for the steepest direction.",
                  "这些更新规则是我们自己写的（core/concepts/optim_race.py），并逐步与 torch.optim 对照验证。"
                  "每个优化器都从圆圈出发，学习率按该曲面调好；倍数会同时缩放所有学习率。动量沿谷底积累速度，"
                  "Adam 与 RMSProp 按梯度大小分别缩放每个坐标，而普通 SGD 的学习率必须迁就最陡的方向。"))


# ---- residual connections ---------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=32)
def _residual_result(depth: int, activation: str) -> dict:
    return demos.residual_gradients(depth=depth, activation=activation)


def _residual(lang: str) -> None:
    left, right = st.columns(2)
    depth = left.slider(tr("Depth (layers)", "深度（层数）"), 5, 100, 50, step=5, key="demo.res.depth")
    activation = right.segmented_control(tr("Activation", "激活函数"), ["tanh", "relu"], default="tanh",
                                         required=True, key="demo.res.act")
    result = _residual_result(depth, activation)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=result["layer"], y=result["plain"], name=tr("plain: h ← f(Wh + b)", "普通：h ← f(Wh + b)"),
                             mode="lines+markers", line=dict(color="#ef4444")))
    fig.add_trace(go.Scatter(x=result["layer"], y=result["residual"],
                             name=tr("residual: h ← h + f(Wh + b)", "残差：h ← h + f(Wh + b)"),
                             mode="lines+markers", line=dict(color="#10b981")))
    fig.update_yaxes(type="log", exponentformat="e", title_text=tr("gradient norm of W", "W 的梯度范数"))
    fig.update_xaxes(title_text=tr("layer (1 = next to the input)", "层（1 = 最靠近输入）"))
    _figure(fig, 360)
    st.caption(tr("One batch through an untrained MLP, width 64, PyTorch's default initialisation, no "
                  "normalisation; the same weights with and without shortcuts. Without them the gradient "
                  "reaching the early layers shrinks by a constant factor per layer, so they barely learn. "
                  "With ReLU and no normalisation the residual stack grows instead: real ResNets add batch "
                  "normalisation to keep it in range.",
                  "一批数据通过未训练的 MLP（宽度 64，PyTorch 默认初始化，无归一化）；有无捷径连接使用同一组权重。"
                  "没有捷径时，传到前面各层的梯度每层按固定比例缩小，这些层几乎学不动。若改用 ReLU 且不做归一化，"
                  "残差网络的数值反而会增长：真实的 ResNet 用批归一化把它控制在合理范围。"))


# ---- self-attention ---------------------------------------------------------------------------------

def _attention(lang: str) -> None:
    default = tr("The cat sat on the mat because it was tired", "猫坐在垫子上因为它累了")
    sentence = st.text_input(tr("Sentence", "句子"), default, max_chars=200, key=f"demo.att.sentence.{lang}")
    left, right = st.columns(2)
    causal = left.toggle(tr("Causal mask (GPT: no looking ahead)", "因果掩码（GPT：不能看后面的词）"),
                         key="demo.att.causal")
    sharpness = right.slider(tr("Sharpness (scale of W_q)", "锐度（W_q 的尺度）"), 0.5, 8.0, 4.0, 0.5,
                             key="demo.att.sharpness")
    result = demos.self_attention(sentence, causal=causal, sharpness=sharpness)
    tokens = result["tokens"]
    positions = list(range(len(tokens)))  # numeric axes: a repeated word must keep its own row
    fig = go.Figure(go.Heatmap(z=result["weights"], x=positions, y=positions, colorscale="Purples", zmin=0,
                               text=np.round(result["weights"], 2), texttemplate="%{text}" if len(tokens) <= 14 else "",
                               hovertemplate=tr("query %{y} → key %{x}: %{z:.2f}", "查询 %{y} → 键 %{x}：%{z:.2f}")
                               + "<extra></extra>", colorbar=dict(thickness=12)))
    fig.update_xaxes(tickvals=positions, ticktext=tokens, side="top", title_text=tr("key", "键"))
    fig.update_yaxes(tickvals=positions, ticktext=tokens, autorange="reversed", title_text=tr("query", "查询"))
    _figure(fig, 160 + 32 * len(tokens))
    st.caption(tr("Each row is one token's weights over all tokens: softmax(QKᵀ/√d). Honest caveat: nothing here "
                  "is trained. Token vectors are hashed character trigrams plus sinusoidal positions, and W_q, W_k "
                  "are random (seeded), so the pattern reflects spelling and distance, not meaning; a trained "
                  "head learns which words should attend to which. The computation is exactly a Transformer's.",
                  "每一行是一个词元对所有词元的注意力权重：softmax(QKᵀ/√d)。说明：这里没有任何训练。词元向量由字符三元组哈希"
                  "加正弦位置编码构成，W_q、W_k 是（固定种子的）随机矩阵，因此图案反映的是拼写与距离，而不是语义；"
                  "训练后的注意力头才会学到哪些词元应该关注哪些词元。计算过程与 Transformer 完全相同。"))


# ---- a GAN in 2-D -----------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=8)
def _gan_result(steps: int, seed: int) -> dict:
    return demos.gan_2d(steps=steps, seed=seed)


def _gan(lang: str) -> None:
    left, right = st.columns(2)
    steps = left.select_slider(tr("Training steps", "训练步数"), [250, 500, 1000], value=500, key="demo.gan.steps")
    seed = right.number_input(tr("Seed", "随机种子"), 0, 99, 0, key="demo.gan.seed")
    with st.spinner(tr("Training a small GAN…", "正在训练一个小型 GAN……")):
        result = _gan_result(steps, int(seed))
    snapshots = result["checkpoints"]
    titles = [tr("step {s}: {m}/8 modes", "第 {s} 步：{m}/8 个模式").format(s=c["step"], m=c["modes_covered"])
              for c in snapshots]
    fig = make_subplots(rows=1, cols=len(snapshots), subplot_titles=titles, horizontal_spacing=0.02)
    real = result["real"]
    for i, snapshot in enumerate(snapshots, start=1):
        fig.add_trace(go.Scatter(x=real[:, 0], y=real[:, 1], mode="markers", name=tr("real", "真实数据"),
                                 marker=dict(size=3, color="#cbd5e1"), showlegend=i == 1, legendgroup="real"),
                      row=1, col=i)
        fake = snapshot["samples"]
        fig.add_trace(go.Scatter(x=fake[:, 0], y=fake[:, 1], mode="markers", name=tr("generated", "生成样本"),
                                 marker=dict(size=3, color="#ec4899"), showlegend=i == 1, legendgroup="fake"),
                      row=1, col=i)
        fig.update_xaxes(range=[-3, 3], showticklabels=False, row=1, col=i)
        fig.update_yaxes(range=[-3, 3], showticklabels=False, scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i)
    fig.update_annotations(font_size=11)
    _figure(fig, 300)
    losses = go.Figure()
    for key, name, colour in (("d_loss", tr("discriminator", "判别器"), "#4f46e5"),
                              ("g_loss", tr("generator", "生成器"), "#ec4899")):
        series = result[key]
        smooth = moving_average(series, max(1, len(series) // 50))  # raw GAN losses are too noisy to read
        losses.add_trace(go.Scatter(y=smooth, name=name, line=dict(color=colour)))
    losses.update_xaxes(title_text=tr("step", "步"))
    losses.update_yaxes(title_text=tr("loss", "损失"))
    _figure(losses, 260)
    st.caption(tr("A generator (4-D noise → point) and a discriminator (point → real or fake), two small MLPs "
                  "trained against each other on a ring of 8 Gaussians, on the CPU as you watch. The losses do "
                  "not fall to zero: each network's progress is the other's setback. Try other seeds: some "
                  "runs drop modes (mode collapse).",
                  "生成器（4 维噪声 → 点）与判别器（点 → 真或假）是两个小型 MLP，在 8 个高斯分布组成的圆环上相互对抗训练，"
                  "就在你眼前用 CPU 完成。损失不会降到零：一方的进步就是另一方的退步。换几个随机种子试试：有些运行会丢失"
                  "部分模式（模式坍塌）。"))


# ---- policy gradient --------------------------------------------------------------------------------

@st.cache_data(show_spinner=False, max_entries=8)
def _policy_result(episodes: int) -> dict:
    return demos.policy_gradient(episodes=episodes)


def _policy(lang: str) -> None:
    episodes = st.select_slider(tr("Episodes", "回合数"), [100, 200, 300, 600], value=300, key="demo.pg.episodes")
    result = _policy_result(episodes)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.62, 0.38], horizontal_spacing=0.1,
                        subplot_titles=(tr("Return per episode (mean of 8 learners)", "每回合回报（8 个学习者平均）"),
                                        tr("Learned p(step right) per cell", "学到的各格“向右走”概率")))
    for key, name, colour in (("reinforce", "REINFORCE", "#f97316"),
                              ("baseline", tr("REINFORCE + baseline", "REINFORCE + 基线"), "#4f46e5")):
        series = result["returns"][key]
        fig.add_trace(go.Scatter(x=result["episode"], y=moving_average(series, 10), name=name, line=dict(color=colour)),
                      row=1, col=1)
    for value, name, dash in ((result["random_return"], tr("random policy", "随机策略"), "dot"),
                              (result["best_return"], tr("best possible", "最优"), "dash")):
        fig.add_hline(y=value, line=dict(color="#64748b", dash=dash), annotation_text=name, row=1, col=1)
    cells = list(range(len(result["p_right"])))
    inner = result["p_right"][1:-1]  # the two ends are terminal: no decision is made there
    fig.add_trace(go.Bar(x=cells[1:-1], y=inner, marker_color="#10b981", showlegend=False), row=1, col=2)
    fig.update_yaxes(range=[0, 1], row=1, col=2)
    fig.update_xaxes(title_text=tr("episode", "回合"), row=1, col=1)
    fig.update_xaxes(title_text=tr("cell (start = 2)", "格子（起点 = 2）"), tickvals=cells[1:-1], row=1, col=2)
    _figure(fig, 360)
    st.caption(tr("A corridor of 7 cells: the agent starts in cell 2; the left end pays 0.3 and is 2 steps away, "
                  "the right end pays 1.0 and is 4 away; each step costs 0.02. The policy is one logit per cell, "
                  "updated by REINFORCE: raise the log-probability of what was done, in proportion to the return "
                  "that followed. A baseline subtracts the return usually seen from that cell, which keeps the "
                  "same direction on average with less noise.",
                  "一条 7 格的走廊：智能体从第 2 格出发；左端奖励 0.3，距离 2 步；右端奖励 1.0，距离 4 步；每走一步扣 0.02。"
                  "策略是每格一个 logit，用 REINFORCE 更新：按之后获得的回报，提高所做动作的对数概率。基线减去该格通常"
                  "能得到的回报，期望方向不变，但噪声更小。"))
