// inpaintlab serve: the page. Plain JavaScript, no build step, no dependencies.
// The photo is uploaded as the user's own file (never re-encoded), with a mask PNG painted at the
// photo's own resolution, or with extend=L,T,R,B; the server answers the result PNG.
"use strict";

const $ = (id) => document.getElementById(id);
const els = {
  file: $("file"), drop: $("drop"), samples: $("samples"), modelInfo: $("model-info"),
  modePaint: $("mode-paint"), modeExtend: $("mode-extend"),
  paintTools: $("paint-tools"), extendTools: $("extend-tools"),
  brush: $("brush"), brushValue: $("brush-value"), undo: $("undo"), clear: $("clear"),
  extLeft: $("ext-left"), extTop: $("ext-top"), extRight: $("ext-right"), extBottom: $("ext-bottom"),
  extUnit: $("ext-unit"), extendSize: $("extend-size"),
  fill: $("fill"), progressWrap: $("progress-wrap"), progress: $("progress"), status: $("status"),
  message: $("message"),
  frame: $("frame"), original: $("original"), paint: $("paint"), cursor: $("cursor"),
  originalStage: $("original-stage"), originalEmpty: $("original-empty"), originalSize: $("original-size"),
  result: $("result"), resultStage: $("result-stage"), resultEmpty: $("result-empty"),
  resultSize: $("result-size"), showBefore: $("show-before"), showAfter: $("show-after"),
  download: $("download"),
};

const state = {
  file: null,          // the File to upload
  url: null,           // object URL of the photo
  width: 0, height: 0, // the photo's pixels (display orientation, as the server reads it)
  mode: "paint",
  strokes: [],         // [{size, points: [[x, y], ...]}] in photo pixels
  drawing: null,
  busy: false,
  after: null,         // object URL of the result
  before: null,        // data URL of the "before" view at the result's size
  showing: "after",
  maxPixels: null,
};

// ------------------------------------------------------------------ messages and progress

function showMessage(text, kind = "error") {
  els.message.textContent = text;
  els.message.className = kind === "info" ? "message info" : "message";
  els.message.hidden = !text;
}

function setProgress(text, fraction) {
  els.progressWrap.hidden = false;
  els.status.textContent = text;
  if (fraction === null || fraction === undefined) els.progress.removeAttribute("value");
  else els.progress.value = Math.max(0, Math.min(1, fraction));
}

// ------------------------------------------------------------------ the photo

async function health() {
  try {
    const info = await (await fetch("/api/health")).json();
    state.maxPixels = info.limits.max_pixels;
    els.modelInfo.textContent =
      `${info.model} · trained at ${info.image_size} px · up to ${(info.limits.max_pixels / 1e6).toPrecision(3)} MP, ` +
      `${(info.limits.max_upload_bytes / 1e6).toPrecision(3)} MB`;
  } catch (err) {
    els.modelInfo.textContent = "the server does not answer";
  }
}

async function loadSamples() {
  try {
    const samples = await (await fetch("/api/samples")).json();
    for (const sample of samples) {
      const button = document.createElement("button");
      button.type = "button";
      button.title = `sample: ${sample.name}`;
      button.dataset.sample = sample.name;
      const img = document.createElement("img");
      img.src = sample.url;
      img.alt = sample.name;
      button.append(img);
      button.addEventListener("click", async () => {
        const blob = await (await fetch(sample.url)).blob();
        await setPhoto(new File([blob], `${sample.name}.png`, { type: "image/png" }));
        document.querySelectorAll(".samples button").forEach((b) => b.classList.toggle("active", b === button));
      });
      els.samples.append(button);
    }
  } catch (err) {
    /* no samples: the upload still works */
  }
}

function setPhoto(file) {
  return new Promise((resolve) => {
    showMessage("");
    if (!file) return resolve();
    const url = URL.createObjectURL(file);
    const probe = new Image();
    probe.onload = () => {
      if (state.url) URL.revokeObjectURL(state.url);
      Object.assign(state, { file, url, width: probe.naturalWidth, height: probe.naturalHeight, strokes: [] });
      els.original.src = url;
      els.frame.hidden = false;
      els.originalEmpty.hidden = true;
      els.originalSize.textContent = `${state.width} × ${state.height}`;
      clearResult();
      layout();
      updateExtendSize();
      updateButtons();
      document.querySelectorAll(".samples button").forEach((b) => b.classList.remove("active"));
      if (state.maxPixels && state.width * state.height > state.maxPixels) {
        showMessage(`This photo has ${(state.width * state.height / 1e6).toFixed(1)} MP; the server takes up to ${(state.maxPixels / 1e6).toPrecision(3)} MP.`);
      }
      resolve();
    };
    probe.onerror = () => {
      URL.revokeObjectURL(url);
      // the server has the last word (it reads more formats than browsers show): try anyway
      Object.assign(state, { file, url: null, width: 0, height: 0, strokes: [] });
      els.frame.hidden = true;
      els.originalEmpty.hidden = false;
      els.originalEmpty.textContent = `${file.name}: the browser cannot show this file.`;
      els.originalSize.textContent = "";
      clearResult();
      updateButtons();
      showMessage(`${file.name} is not an image this browser can show; use Extend borders to send it to the server anyway.`);
      resolve();
    };
    probe.src = url;
  });
}

// Fit an image of w x h into a stage, at most 4x enlarged; returns the display size.
function fit(stage, w, h) {
  const box = stage.getBoundingClientRect();
  const scale = Math.min((box.width - 24) / w, (box.height - 24) / h, 4);
  return [Math.max(1, Math.floor(w * scale)), Math.max(1, Math.floor(h * scale))];
}

function layout() {
  if (state.width) {
    // the frame is the photo in paint mode, the extended canvas (photo inside) in extend mode
    const [l, t, r, b] = state.mode === "extend" ? extendPixels() : [0, 0, 0, 0];
    const W = state.width + l + r, H = state.height + t + b;
    const [fw, fh] = fit(els.originalStage, W, H);
    const s = fw / W;
    Object.assign(els.frame.style, { width: `${fw}px`, height: `${fh}px` });
    Object.assign(els.original.style, {
      left: `${l * s}px`, top: `${t * s}px`, width: `${state.width * s}px`, height: `${state.height * s}px`,
    });
    els.original.classList.toggle("pixelated", s > 2);
    const ratio = window.devicePixelRatio || 1;
    els.paint.width = Math.round(fw * ratio);
    els.paint.height = Math.round(fh * ratio);
    redraw();
  }
  if (!els.result.hidden && els.result.naturalWidth) {
    const [w, h] = fit(els.resultStage, els.result.naturalWidth, els.result.naturalHeight);
    els.result.style.width = `${w}px`;
    els.result.style.height = `${h}px`;
    els.result.classList.toggle("pixelated", w > 2 * els.result.naturalWidth);
  }
}

// ------------------------------------------------------------------ painting

function displayScale() {
  // photo pixels per CSS pixel
  return state.width / els.paint.getBoundingClientRect().width;
}

function drawStrokes(ctx, scale, color) {
  ctx.strokeStyle = color;
  ctx.fillStyle = color;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  for (const stroke of state.strokes) {
    const pts = stroke.points;
    ctx.lineWidth = stroke.size * scale;
    if (pts.length === 1) {
      ctx.beginPath();
      ctx.arc(pts[0][0] * scale, pts[0][1] * scale, (stroke.size * scale) / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(pts[0][0] * scale, pts[0][1] * scale);
    for (const [x, y] of pts.slice(1)) ctx.lineTo(x * scale, y * scale);
    ctx.stroke();
  }
}

let pending = false;
function redraw() {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    const ctx = els.paint.getContext("2d");
    ctx.clearRect(0, 0, els.paint.width, els.paint.height);
    if (state.mode === "paint") drawStrokes(ctx, els.paint.width / state.width, getComputedStyle(document.documentElement).getPropertyValue("--paint"));
    else drawExtendPreview(ctx);
  });
}

function drawExtendPreview(ctx) {
  // the frame is the extended canvas: shade the borders to generate, outline the photo
  const [l, t, r, b] = extendPixels();
  if (!(l || t || r || b)) return;
  const s = els.paint.width / (state.width + l + r);
  ctx.fillStyle = "rgba(37, 99, 235, 0.22)";
  ctx.fillRect(0, 0, els.paint.width, els.paint.height);
  ctx.clearRect(l * s, t * s, state.width * s, state.height * s);
  ctx.strokeStyle = "rgba(37, 99, 235, 0.9)";
  ctx.setLineDash([6, 4]);
  ctx.lineWidth = 2;
  ctx.strokeRect(l * s + 1, t * s + 1, state.width * s - 2, state.height * s - 2);
}

function pointerPosition(event) {
  const box = els.paint.getBoundingClientRect();
  const scale = state.width / box.width;
  return [(event.clientX - box.left) * scale, (event.clientY - box.top) * scale];
}

function moveCursor(event) {
  if (state.mode !== "paint") return;
  const box = els.paint.getBoundingClientRect();
  const size = Number(els.brush.value);
  Object.assign(els.cursor.style, {
    left: `${event.clientX - box.left}px`, top: `${event.clientY - box.top}px`,
    width: `${size}px`, height: `${size}px`,
  });
  els.cursor.hidden = false;
}

els.paint.addEventListener("pointerdown", (event) => {
  if (state.mode !== "paint" || state.busy || event.button !== 0) return;
  event.preventDefault();
  els.paint.setPointerCapture(event.pointerId);
  state.drawing = { size: Number(els.brush.value) * displayScale(), points: [pointerPosition(event)] };
  state.strokes.push(state.drawing);
  redraw();
  updateButtons();
});
els.paint.addEventListener("pointermove", (event) => {
  moveCursor(event);
  if (!state.drawing) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of events.length ? events : [event]) state.drawing.points.push(pointerPosition(e));
  redraw();
});
const endStroke = () => { state.drawing = null; };
els.paint.addEventListener("pointerup", endStroke);
els.paint.addEventListener("pointercancel", endStroke);
els.paint.addEventListener("pointerleave", () => { els.cursor.hidden = true; });

els.brush.addEventListener("input", () => { els.brushValue.textContent = `${els.brush.value} px`; });
els.undo.addEventListener("click", () => { state.strokes.pop(); redraw(); updateButtons(); });
els.clear.addEventListener("click", () => { state.strokes = []; redraw(); updateButtons(); });
document.addEventListener("keydown", (event) => {
  if ((event.ctrlKey || event.metaKey) && event.key === "z" && state.mode === "paint" && !state.busy) {
    event.preventDefault();
    els.undo.click();
  }
});

// The mask at the photo's resolution: white = fill, black = keep, thresholded so it is binary.
function maskBlob() {
  const canvas = document.createElement("canvas");
  canvas.width = state.width;
  canvas.height = state.height;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  drawStrokes(ctx, 1, "#fff");
  const data = ctx.getImageData(0, 0, canvas.width, canvas.height);
  const px = data.data;
  for (let i = 0; i < px.length; i += 4) {
    const v = px[i] >= 128 ? 255 : 0;
    px[i] = px[i + 1] = px[i + 2] = v;
    px[i + 3] = 255;
  }
  ctx.putImageData(data, 0, 0);
  return new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
}

// ------------------------------------------------------------------ extending

// Python's round(): half to even, as the server's resolve_extend
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function extendValues() {
  return [els.extLeft, els.extTop, els.extRight, els.extBottom].map((input) => Number(input.value || 0));
}

function extendPixels() {
  const values = extendValues();
  if (values.some((v) => !(v >= 0))) return [0, 0, 0, 0];
  if (els.extUnit.value === "px") return values.map((v) => Math.trunc(v));
  const sides = [state.width, state.height, state.width, state.height];
  return values.map((v, i) => roundHalfEven((v * sides[i]) / 100));
}

function extendText() {
  const values = extendValues();
  const unit = els.extUnit.value === "%" ? "%" : "";
  return values.map((v) => (unit ? `${v}%` : `${Math.trunc(v)}`)).join(",");
}

function updateExtendSize() {
  if (!state.width) return;
  const [l, t, r, b] = extendPixels();
  const values = extendValues();
  if (values.some((v) => !(v >= 0))) {
    els.extendSize.textContent = "Borders must be 0 or more.";
  } else if (els.extUnit.value === "px" && values.some((v) => !Number.isInteger(v))) {
    els.extendSize.textContent = "Pixels must be whole numbers.";
  } else {
    els.extendSize.textContent = `Result: ${state.width + l + r} × ${state.height + t + b} (from ${state.width} × ${state.height}).`;
  }
  if (state.mode === "extend") layout();
  updateButtons();
}
for (const input of [els.extLeft, els.extTop, els.extRight, els.extBottom, els.extUnit]) {
  input.addEventListener("input", updateExtendSize);
}

// ------------------------------------------------------------------ modes and buttons

function setMode(mode) {
  state.mode = mode;
  els.modePaint.setAttribute("aria-pressed", String(mode === "paint"));
  els.modeExtend.setAttribute("aria-pressed", String(mode === "extend"));
  els.paintTools.hidden = mode !== "paint";
  els.extendTools.hidden = mode !== "extend";
  els.frame.classList.toggle("extend", mode === "extend");
  els.cursor.hidden = true;
  updateExtendSize();
  layout();
  updateButtons();
}
els.modePaint.addEventListener("click", () => setMode("paint"));
els.modeExtend.addEventListener("click", () => setMode("extend"));

function canFill() {
  if (!state.file || state.busy) return false;
  if (state.mode === "paint") return state.strokes.length > 0 && state.width > 0;
  const values = extendValues();
  if (values.some((v) => !(v >= 0)) || !values.some((v) => v > 0)) return false;
  return els.extUnit.value === "%" || values.every((v) => Number.isInteger(v));
}

function updateButtons() {
  els.fill.disabled = !canFill();
  els.undo.disabled = state.busy || !state.strokes.length;
  els.clear.disabled = state.busy || !state.strokes.length;
  els.fill.title = state.file ? (state.mode === "paint" && !state.strokes.length ? "paint over the area to fill first" : "") : "choose a photo first";
}

// ------------------------------------------------------------------ the result

function clearResult() {
  if (state.after) URL.revokeObjectURL(state.after);
  Object.assign(state, { after: null, before: null, showing: "after" });
  els.result.hidden = true;
  els.result.removeAttribute("src");
  els.resultEmpty.hidden = false;
  els.resultSize.textContent = "";
  els.download.setAttribute("aria-disabled", "true");
  els.download.removeAttribute("href");
  els.showBefore.disabled = els.showAfter.disabled = true;
  setShowing("after");
}

function setShowing(which) {
  state.showing = which;
  els.showBefore.setAttribute("aria-pressed", String(which === "before"));
  els.showAfter.setAttribute("aria-pressed", String(which === "after"));
  const src = which === "before" ? state.before : state.after;
  if (src) els.result.src = src;
}
els.showBefore.addEventListener("click", () => setShowing("before"));
els.showAfter.addEventListener("click", () => setShowing("after"));

// "Before" at the result's size: the photo where it was, the generated borders left transparent.
function beforeView(width, height, offset) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").drawImage(els.original, offset[0], offset[1], state.width, state.height);
  return canvas.toDataURL("image/png");
}

function showResult(blob, filename, offset) {
  if (state.after) URL.revokeObjectURL(state.after);
  state.after = URL.createObjectURL(blob);
  els.result.onload = () => {
    els.result.onload = null;
    els.result.hidden = false;
    els.resultEmpty.hidden = true;
    const w = els.result.naturalWidth, h = els.result.naturalHeight;
    els.resultSize.textContent = `${w} × ${h}`;
    state.before = beforeView(w, h, offset);
    els.showBefore.disabled = els.showAfter.disabled = false;
    layout();
  };
  setShowing("after");
  els.download.href = state.after;
  els.download.download = filename;
  els.download.setAttribute("aria-disabled", "false");
}

// ------------------------------------------------------------------ fill

function upload(form, job) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", "/api/inpaint");
    xhr.responseType = "blob";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) setProgress(`Uploading… ${Math.round((100 * event.loaded) / event.total)}%`, event.loaded / event.total);
    };
    xhr.upload.onload = () => setProgress("Waiting for the model…", null);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new Error("The server did not answer (is `inpaintlab serve` still running?)."));
    xhr.send(form);
  });
}

async function fill() {
  if (!canFill()) return;
  state.busy = true;
  updateButtons();
  showMessage("");
  const job = (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).replace(/[^A-Za-z0-9_-]/g, "");
  const form = new FormData();
  form.append("image", state.file, state.file.name || "image.png");
  let offset = [0, 0];
  if (state.mode === "paint") {
    setProgress("Preparing the mask…", null);
    form.append("mask", await maskBlob(), "mask.png");
  } else {
    form.append("extend", extendText());
    const [l, t] = extendPixels();
    offset = [l, t];
  }
  form.append("job", job);
  const started = performance.now();
  let polling = true;
  const poll = async () => {
    while (polling) {
      await new Promise((r) => setTimeout(r, 250));
      if (!polling) break;
      try {
        const response = await fetch(`/api/progress/${job}`);
        if (!response.ok || !polling) continue;
        const p = await response.json();
        if (p.state === "queued") setProgress("Waiting for a free worker…", null);
        else if (p.state === "running" && p.total) setProgress(`Filling… ${p.done} / ${p.total} model passes`, p.done / p.total);
        else if (p.state === "running") setProgress("Filling…", null);
      } catch (err) { /* the answer itself will say */ }
    }
  };
  poll();
  try {
    const xhr = await upload(form, job);
    polling = false;
    if (xhr.status !== 200) {
      const text = (await xhr.response.text()).trim();
      throw new Error(text || `The server answered ${xhr.status}.`);
    }
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const name = /filename="([^"]+)"/.exec(xhr.getResponseHeader("Content-Disposition") || "");
    showResult(xhr.response, name ? name[1] : "result.png", offset);
    setProgress(`Done in ${seconds} s.`, 1);
    const notes = xhr.getResponseHeader("X-Inpaintlab-Notes");
    if (notes) showMessage(`Note: ${notes}.`, "info");
  } catch (err) {
    polling = false;
    els.progressWrap.hidden = true;
    showMessage(err.message);
  } finally {
    state.busy = false;
    updateButtons();
  }
}
els.fill.addEventListener("click", fill);

// ------------------------------------------------------------------ file input and drop

els.file.addEventListener("change", () => setPhoto(els.file.files[0]));
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (event) => { event.preventDefault(); els.drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  document.addEventListener(type, (event) => { event.preventDefault(); els.drop.classList.remove("over"); });
}
document.addEventListener("drop", (event) => {
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (file) setPhoto(file);
});
window.addEventListener("resize", layout);

health();
loadSamples();
updateButtons();
