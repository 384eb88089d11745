// Inside a trained ConvLSTM: chapter 06's live explainer.
//
// The page runs the chapter's trained models, exported to ONNX by the notebook
// (convlstm_lib.export_inside_step), with ONNX Runtime Web's WebAssembly backend, vendored from
// npm into _static/onnxruntime-web/. There is no ConvLSTM here: every number the page shows
// comes out of the exported graph. The module has four parts:
//
//   load   the manifest the notebook wrote (presets, variants, colour maps, a fixed example
//          with torch's outputs) and one inference session per variant, on demand;
//   state  what the reader chose (the drawing, the motion, the model, the time step) and the
//          outputs of the model for every step of the resulting movie;
//   step   one call of the exported step: (x, h, c) -> (i, f, g, o, h_next, c_next, prediction);
//   draw   canvases for the frames, the gates and the states, and the text around them.
//
// Where it cannot run (opened as a file://, in JupyterLab or Colab), the notebook's fallback
// text stays and the static figure below it shows the same view.

import * as ort from "../onnxruntime-web/ort.wasm.bundle.min.mjs";

// The one WebAssembly binary the runtime loads; its JavaScript glue is bundled in the module.
const WASM = new URL("../onnxruntime-web/ort-wasm-simd-threaded.wasm", import.meta.url).href;
const GATES = ["i", "f", "g", "o", "c", "h"];
const GATE_TITLES = {
  i: "input gate i",
  f: "forget gate f",
  g: "candidate g",
  o: "output gate o",
  c: "cell state c",
  h: "hidden state h",
};
const PLAY_MS = 700;

// ---------------------------------------------------------------------------------------- load

async function loadManifest(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`explainer: expected the manifest at ${url}, got HTTP ${response.status}`);
  return response.json();
}

function configureRuntime() {
  ort.env.wasm.wasmPaths = { wasm: WASM };
  // Threads need a cross-origin-isolated page, which a static site cannot promise.
  ort.env.wasm.numThreads = 1;
}

const sessions = new Map();

function sessionFor(manifestUrl, variant) {
  if (!sessions.has(variant.id)) {
    const url = new URL(variant.file, manifestUrl).href;
    sessions.set(variant.id, ort.InferenceSession.create(url, { executionProviders: ["wasm"] }));
  }
  return sessions.get(variant.id);
}

// ---------------------------------------------------------------------------------------- step

// A session runs one call at a time: every call waits for the one before it.
let pending = Promise.resolve();

function serially(task) {
  const result = pending.then(task);
  pending = result.catch(() => {});
  return result;
}

// One step of every layer: x is (1, 1, H, W), h and c are (L, 1, C, H, W), all Float32Array.
async function runStep(session, variant, size, x, h, c) {
  const stateDims = [variant.layers, 1, variant.hidden, size, size];
  const feeds = {
    x: new ort.Tensor("float32", x, [1, 1, size, size]),
    h: new ort.Tensor("float32", h, stateDims),
    c: new ort.Tensor("float32", c, stateDims),
  };
  const out = await serially(() => session.run(feeds));
  return {
    i: out.i.data,
    f: out.f.data,
    g: out.g.data,
    o: out.o.data,
    h: out.h_next.data,
    c: out.c_next.data,
    prediction: out.prediction.data,
  };
}

// Run the model over a whole movie from zero states: one output record per input frame.
async function runMovie(session, variant, size, frames) {
  const stateSize = variant.layers * variant.hidden * size * size;
  let h = new Float32Array(stateSize);
  let c = new Float32Array(stateSize);
  const steps = [];
  for (const frame of frames.slice(0, -1)) {
    const out = await runStep(session, variant, size, frame, h, c);
    steps.push(out);
    h = out.h;
    c = out.c;
  }
  return steps;
}

// The movie of a drawing: frame t is the drawing shifted by v (t - m), m = floor((T - 1) / 2),
// with what leaves the frame lost, as convlstm_lib.move_shape makes it.
function moveShape(shape, velocity, length, size) {
  const middle = Math.floor((length - 1) / 2);
  const frames = [];
  for (let t = 0; t < length; t++) {
    const dy = velocity[0] * (t - middle);
    const dx = velocity[1] * (t - middle);
    const frame = new Float32Array(size * size);
    for (let row = 0; row < size; row++) {
      for (let col = 0; col < size; col++) {
        const r = row + dy;
        const q = col + dx;
        if (r >= 0 && r < size && q >= 0 && q < size) frame[r * size + q] = shape[row * size + col];
      }
    }
    frames.push(frame);
  }
  return frames;
}

// ---------------------------------------------------------------------------------------- draw

function element(tag, attributes = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

// A labelled canvas; `view` names it for the browser test (input, prediction, truth, ...).
function panel(label, alt, scale, view) {
  const canvas = element("canvas", {
    role: "img",
    "aria-label": alt,
    class: `explainer-panel x${scale}`,
    "data-view": view,
  });
  return { canvas, figure: element("figure", {}, [canvas, element("figcaption", { text: label })]) };
}

// Paint a size x size block of values, starting at offset, with a colour map on [low, high].
function paint(canvas, values, offset, size, colours, low, high) {
  canvas.width = size;
  canvas.height = size;
  const context = canvas.getContext("2d");
  const image = context.createImageData(size, size);
  const last = colours.length - 1;
  for (let k = 0; k < size * size; k++) {
    const unit = Math.min(1, Math.max(0, (values[offset + k] - low) / (high - low)));
    const [r, g, b] = colours[Math.round(unit * last)];
    image.data.set([r, g, b, 255], 4 * k);
  }
  context.putImageData(image, 0, 0);
}

function colourBar(colours, low, high, label) {
  const canvas = element("canvas", { class: "explainer-bar", "aria-hidden": "true" });
  canvas.width = colours.length;
  canvas.height = 1;
  const context = canvas.getContext("2d");
  colours.forEach(([r, g, b], k) => {
    context.fillStyle = `rgb(${r}, ${g}, ${b})`;
    context.fillRect(k, 0, 1, 1);
  });
  return element("div", { class: "explainer-legend" }, [
    element("span", { text: label }),
    element("span", { text: String(low) }),
    canvas,
    element("span", { text: String(high) }),
  ]);
}

// ---------------------------------------------------------------------------------------- state

class Explainer {
  constructor(root, manifest, manifestUrl) {
    this.root = root;
    this.manifest = manifest;
    this.manifestUrl = manifestUrl;
    this.size = manifest.size;
    this.length = manifest.length;
    const preset = manifest.presets[0];
    this.shape = Float32Array.from(preset.shape);
    this.velocity = [...preset.velocity];
    this.variant = manifest.variants[0];
    this.t = 0;
    this.steps = [];
    this.cursor = [Math.floor(this.size / 2), Math.floor(this.size / 2)];
    this.timer = null;
    this.runs = 0; // a newer run supersedes an older one still in flight
    this.build();
  }

  // The controls and the empty views; changed() runs the model, show() fills the views.
  build() {
    const m = this.manifest;
    this.root.replaceChildren();
    this.root.classList.add("explainer-live");

    const presets = element("div", { class: "explainer-row", role: "group", "aria-label": "presets" });
    m.presets.forEach((preset, index) => {
      const button = element("button", { type: "button", "data-preset": String(index), text: preset.name });
      button.addEventListener("click", () => this.choosePreset(index));
      presets.append(button);
    });
    const clear = element("button", { type: "button", "data-action": "clear", text: "clear" });
    clear.addEventListener("click", () => {
      this.shape.fill(0);
      this.changed();
    });
    presets.append(clear);

    this.draw = element("canvas", {
      class: "explainer-draw",
      tabindex: "0",
      role: "img",
      "aria-label":
        "Drawing canvas, 24 by 24 pixels: drag to draw or erase; with the keyboard, arrow keys move the cursor and Space toggles a pixel",
    });
    this.draw.width = this.size;
    this.draw.height = this.size;
    this.bindDrawing();

    this.sliders = ["down", "right"].map((name, axis) => {
      const input = element("input", {
        type: "range",
        min: String(-m.max_speed),
        max: String(m.max_speed),
        step: "1",
        value: String(this.velocity[axis]),
        "aria-label": `pixels the shape moves ${name} per frame`,
        "data-axis": name,
      });
      const shown = element("output", { text: String(this.velocity[axis]) });
      input.addEventListener("input", () => {
        this.velocity[axis] = Number(input.value);
        shown.textContent = input.value;
        this.changed();
      });
      return { input, shown, label: element("label", {}, [`${name} `, input, shown]) };
    });

    this.select = element("select", { "aria-label": "trained model" });
    m.variants.forEach((variant) => {
      this.select.append(element("option", { value: variant.id, text: variant.label }));
    });
    this.select.addEventListener("change", () => {
      this.variant = m.variants.find((variant) => variant.id === this.select.value);
      this.changed();
    });

    const restart = element("button", { type: "button", "data-action": "restart", text: "restart" });
    const step = element("button", { type: "button", "data-action": "step", text: "step ▶" });
    this.play = element("button", { type: "button", "data-action": "play", text: "play" });
    restart.addEventListener("click", () => this.show(0));
    step.addEventListener("click", () => this.show((this.t + 1) % this.steps.length));
    this.play.addEventListener("click", () => this.togglePlay());
    this.clock = element("span", { class: "explainer-clock", "aria-live": "polite" });

    const left = element("div", { class: "explainer-controls" }, [
      element("p", { class: "explainer-hint", text: "Draw a shape (it passes here at frame 2), or pick one:" }),
      presets,
      this.draw,
      element("div", { class: "explainer-row" }, this.sliders.map((slider) => slider.label)),
      element("label", {}, ["model ", this.select]),
      element("div", { class: "explainer-row" }, [restart, step, this.play]),
      this.clock,
    ]);

    this.strip = [];
    const strip = element("div", { class: "explainer-strip" });
    for (let t = 0; t < this.length; t++) {
      const view = panel(`frame ${t}`, `input frame ${t}`, 2, "strip");
      this.strip.push(view.canvas);
      strip.append(view.figure);
    }
    this.inputView = panel("input now", "the frame the model reads at this step", 4, "input");
    this.predictionView = panel("predicted next", "the model's prediction of the next frame", 4, "prediction");
    this.truthView = panel("true next", "the true next frame", 4, "truth");
    const frames = element("div", { class: "explainer-row" }, [
      this.inputView.figure,
      this.predictionView.figure,
      this.truthView.figure,
    ]);

    this.grid = element("div", { class: "explainer-grid" });
    this.legends = element("div", { class: "explainer-row" });
    this.reach = element("p", { class: "explainer-reach", "aria-live": "polite" });
    this.check = element("p", { class: "explainer-check" });
    const right = element("div", { class: "explainer-views" }, [strip, frames, this.reach]);
    // The inside view spans the whole width below: six columns of gates and states.
    const inside = element("div", { class: "explainer-inside" }, [this.legends, this.grid]);
    this.root.append(element("div", { class: "explainer-layout" }, [left, right]), inside, this.check);
  }

  bindDrawing() {
    let painting = null; // the value a drag paints: 1 to draw, 0 to erase
    const cellAt = (event) => {
      const box = this.draw.getBoundingClientRect();
      const col = Math.floor(((event.clientX - box.left) / box.width) * this.size);
      const row = Math.floor(((event.clientY - box.top) / box.height) * this.size);
      return row >= 0 && row < this.size && col >= 0 && col < this.size ? [row, col] : null;
    };
    const set = (cell) => {
      const k = cell[0] * this.size + cell[1];
      if (this.shape[k] !== painting) {
        this.shape[k] = painting;
        this.paintDrawing();
        return true;
      }
      return false;
    };
    this.draw.addEventListener("pointerdown", (event) => {
      const cell = cellAt(event);
      if (!cell) return;
      this.draw.setPointerCapture(event.pointerId);
      painting = this.shape[cell[0] * this.size + cell[1]] > 0 ? 0 : 1;
      set(cell);
      event.preventDefault();
    });
    this.draw.addEventListener("pointermove", (event) => {
      const cell = painting === null ? null : cellAt(event);
      if (cell) set(cell);
    });
    const finish = () => {
      if (painting !== null) {
        painting = null;
        this.changed();
      }
    };
    this.draw.addEventListener("pointerup", finish);
    this.draw.addEventListener("pointercancel", finish);
    this.draw.addEventListener("keydown", (event) => {
      const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
      if (event.key in moves) {
        const [dr, dc] = moves[event.key];
        this.cursor = [
          Math.min(this.size - 1, Math.max(0, this.cursor[0] + dr)),
          Math.min(this.size - 1, Math.max(0, this.cursor[1] + dc)),
        ];
        this.paintDrawing();
      } else if (event.key === " " || event.key === "Enter") {
        const k = this.cursor[0] * this.size + this.cursor[1];
        this.shape[k] = this.shape[k] > 0 ? 0 : 1;
        this.changed();
      } else {
        return;
      }
      event.preventDefault();
    });
    this.draw.addEventListener("focus", () => this.paintDrawing());
    this.draw.addEventListener("blur", () => this.paintDrawing());
  }

  choosePreset(index) {
    const preset = this.manifest.presets[index];
    this.shape = Float32Array.from(preset.shape);
    this.velocity = [...preset.velocity];
    this.sliders.forEach((slider, axis) => {
      slider.input.value = String(this.velocity[axis]);
      slider.shown.textContent = String(this.velocity[axis]);
    });
    this.changed();
  }

  togglePlay() {
    if (this.timer !== null) {
      this.stopPlaying();
      return;
    }
    this.play.textContent = "pause";
    this.timer = setInterval(() => this.show((this.t + 1) % this.steps.length), PLAY_MS);
  }

  stopPlaying() {
    clearInterval(this.timer);
    this.timer = null;
    this.play.textContent = "play";
  }

  // The drawing, the motion or the model changed: make the movie, run the model over it.
  async changed() {
    const run = ++this.runs;
    this.paintDrawing();
    this.frames = moveShape(this.shape, this.velocity, this.length, this.size);
    const session = await sessionFor(this.manifestUrl, this.variant);
    const steps = await runMovie(session, this.variant, this.size, this.frames);
    if (run !== this.runs) return;
    this.steps = steps;
    this.root.dataset.runs = String(run);
    this.buildGrid();
    this.show(Math.min(this.t, this.steps.length - 1));
  }

  // --------------------------------------------------------------------------------- draw

  paintDrawing() {
    const context = this.draw.getContext("2d");
    paint(this.draw, this.shape, 0, this.size, this.manifest.colormaps.frame, 0, 1);
    if (document.activeElement === this.draw) {
      context.strokeStyle = "rgb(255, 160, 0)";
      context.lineWidth = 0.25;
      context.strokeRect(this.cursor[1] + 0.125, this.cursor[0] + 0.125, 0.75, 0.75);
    }
  }

  // One row per channel the notebook chose for this model, one column per gate and state.
  buildGrid() {
    const m = this.manifest;
    const v = this.variant;
    this.cells = [];
    const header = [element("span", {}), ...GATES.map((name) => element("span", { class: "explainer-head", text: GATE_TITLES[name] }))];
    const rows = v.channels.map(([layer, channel], row) => {
      const label = element("span", { class: "explainer-channel", text: `layer ${layer}, channel ${channel}` });
      const cells = GATES.map((name) => {
        const view = panel("", `${GATE_TITLES[name]} of layer ${layer}, channel ${channel}`, 3, "inside");
        this.cells.push({ canvas: view.canvas, name, layer, channel, row });
        return view.canvas;
      });
      return [label, ...cells];
    });
    this.grid.replaceChildren(...header, ...rows.flat());
    this.legends.replaceChildren(
      colourBar(m.colormaps.gate, 0, 1, "i, f, o"),
      colourBar(m.colormaps.signed, -1, 1, "g, h"),
      colourBar(m.colormaps.signed, -v.c_scale, v.c_scale, "c"),
    );
  }

  // Show step t: the frame read, the prediction of frame t + 1 beside the truth, the inside.
  show(t) {
    const m = this.manifest;
    const v = this.variant;
    const plane = this.size * this.size;
    this.t = t;
    const out = this.steps[t];
    this.frames.forEach((frame, k) => {
      paint(this.strip[k], frame, 0, this.size, m.colormaps.frame, 0, 1);
      this.strip[k].classList.toggle("explainer-now", k === t);
      this.strip[k].classList.toggle("explainer-next", k === t + 1);
    });
    paint(this.inputView.canvas, this.frames[t], 0, this.size, m.colormaps.frame, 0, 1);
    paint(this.predictionView.canvas, out.prediction, 0, this.size, m.colormaps.frame, 0, 1);
    paint(this.truthView.canvas, this.frames[t + 1], 0, this.size, m.colormaps.frame, 0, 1);
    for (const cell of this.cells) {
      const offset = (cell.layer * v.hidden + cell.channel) * plane;
      const [colours, low, high] =
        cell.name === "i" || cell.name === "f" || cell.name === "o"
          ? [m.colormaps.gate, 0, 1]
          : [m.colormaps.signed, cell.name === "c" ? -v.c_scale : -1, cell.name === "c" ? v.c_scale : 1];
      paint(cell.canvas, out[cell.name], offset, this.size, colours, low, high);
    }
    const read = t === 0 ? "frame 0" : `frames 0 to ${t}`;
    this.clock.textContent = `step ${t + 1} of ${this.steps.length}: the model has read ${read} and predicts frame ${t + 1}`;
    this.reach.textContent = this.reachText();
    this.root.dataset.step = String(t);
  }

  // The rule of chapter 02 for this model and motion, and what the notebook measured.
  reachText() {
    const v = this.variant;
    const speed = Math.max(Math.abs(this.velocity[0]), Math.abs(this.velocity[1]));
    const pixels = (n) => `${n} pixel${n === 1 ? "" : "s"}`;
    const percent = (error) => `${(100 * error).toFixed(0)}%`;
    const verdict =
      speed > v.reach_known
        ? "too fast for any shape"
        : speed > v.reach_inferred
          ? "too fast for a dot, not always for a larger shape"
          : "within reach";
    return (
      `${v.label}: no shape faster than ${pixels(v.reach_known)} per frame, a dot up to ` +
      `${pixels(v.reach_inferred)}. This motion, ${pixels(speed)} per frame, is ${verdict}. ` +
      `Measured on held-out shapes at this speed, the error as a share of a black frame's: ` +
      `a dot ${percent(v.errors.dot[String(speed)])}, larger shapes ${percent(v.errors.shapes[String(speed)])}.`
    );
  }

  // The fixed example, run here, against torch's outputs saved when the page was built.
  async checkExample() {
    const m = this.manifest;
    const frames = m.example.frames.map((frame) => Float32Array.from(frame));
    let worst = 0;
    for (const variant of m.variants) {
      const session = await sessionFor(this.manifestUrl, variant);
      const steps = await runMovie(session, variant, this.size, frames);
      steps.forEach((out, t) => {
        const expected = variant.example_prediction[t];
        out.prediction.forEach((value, k) => {
          worst = Math.max(worst, Math.abs(value - expected[k]));
        });
      });
    }
    this.check.dataset.maxAbsDiff = String(worst);
    this.check.textContent =
      `Check: ${m.example.name}, run in this page by every model, matches the torch outputs saved ` +
      `when the page was built to ${worst.toExponential(1)} at most (largest absolute difference).`;
    return worst;
  }
}

// ------------------------------------------------------------------------------------- start

async function start(root) {
  const manifestUrl = new URL(root.dataset.manifest, document.baseURI).href;
  try {
    configureRuntime();
    const manifest = await loadManifest(manifestUrl);
    const explainer = new Explainer(root, manifest, manifestUrl);
    await explainer.changed();
    await explainer.checkExample();
    root.dataset.ready = "true";
  } catch (error) {
    root.dataset.ready = "failed";
    const text = `The explainer could not start (${error.message}); the figure in "Inside one step" shows the same view.`;
    root.append(element("p", { class: "explainer-error", text }));
    throw error;
  }
}

function stylesheet() {
  const href = new URL("explainer.css", import.meta.url).href;
  if (!document.querySelector(`link[href="${href}"]`)) {
    document.head.append(element("link", { rel: "stylesheet", href }));
  }
}

stylesheet();
for (const root of document.querySelectorAll(".convlstm-explainer[data-manifest]")) start(root);
