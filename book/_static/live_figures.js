/* Live figures of "All About Autoencoders": a trained decoder, run in the page.
 *
 * A live figure (markup made by autoencoders.export) is a div.live-figure with
 * a static fallback picture and a hidden div.live-widget of div.live-panel
 * placeholders, each naming a model (data-model). This script loads each
 * model's data file, live/<model>.js beside this script (written by the book's
 * build), builds the widget, shows it and hides the fallback on screen. In
 * print, without JavaScript, or when a data file is missing, the fallback
 * stays. No network, no server: it works from file://.
 *
 * The forward pass reads the layer list that autoencoders.export writes:
 * linear, relu, unflatten, conv_transpose (PyTorch's ConvTranspose2d:
 * weights (in, out, kh, kw), stride, padding, output_padding) and sigmoid.
 */
(function () {
  "use strict";
  var here = document.currentScript;
  var BASE = here ? new URL("live/", here.src).href : "live/";
  var models = {}, loading = {}, ready = {};

  // ------------------------------------------------------------ data files
  function bytes(text) {
    var raw = atob(text), out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }
  function floats(text) { return new Float32Array(bytes(text).buffer); } // little-endian

  function register(name, payload) {
    var flat = floats(payload.tensors);
    function view(ref) {
      if (!ref) return null;
      var n = ref.shape.reduce(function (a, b) { return a * b; }, 1);
      return flat.subarray(ref.offset, ref.offset + n);
    }
    payload.layers.forEach(function (layer) {
      if (layer.weight) { layer.W = view(layer.weight); layer.b = view(layer.bias); }
    });
    models[name] = payload;
    if (ready[name]) ready[name](payload);
  }

  function load(name) {
    if (!loading[name]) {
      loading[name] = new Promise(function (resolve, reject) {
        if (models[name]) return resolve(models[name]);
        ready[name] = resolve;
        var tag = document.createElement("script");
        tag.src = BASE + encodeURIComponent(name) + ".js";
        tag.onerror = function () { reject(new Error("no data file for " + name)); };
        document.head.appendChild(tag);
      });
    }
    return loading[name];
  }

  // --------------------------------------------------------- forward pass
  function linear(x, l) {
    var y = new Float64Array(l.out), n = l.in;
    for (var o = 0; o < l.out; o++) {
      var s = l.b ? l.b[o] : 0, row = o * n;
      for (var i = 0; i < n; i++) s += l.W[row + i] * x[i];
      y[o] = s;
    }
    return y;
  }

  function convTranspose(x, shape, l) {
    var C = shape[0], H = shape[1], W = shape[2], O = l.out;
    var KH = l.kernel[0], KW = l.kernel[1], SH = l.stride[0], SW = l.stride[1];
    var PH = l.padding[0], PW = l.padding[1];
    var HO = (H - 1) * SH - 2 * PH + KH + l.output_padding[0];
    var WO = (W - 1) * SW - 2 * PW + KW + l.output_padding[1];
    if (C !== l.in) throw new Error("conv_transpose expects " + l.in + " channels, got " + C);
    var y = new Float64Array(O * HO * WO), plane = HO * WO, K = KH * KW;
    for (var o = 0; o < O; o++) y.fill(l.b ? l.b[o] : 0, o * plane, (o + 1) * plane);
    for (var c = 0; c < C; c++) {
      for (var h = 0; h < H; h++) {
        for (var w = 0; w < W; w++) {
          var v = x[(c * H + h) * W + w];
          if (v === 0) continue;  // most inputs after a ReLU
          for (o = 0; o < O; o++) {
            var wk = (c * O + o) * K, yo = o * plane;
            for (var kh = 0; kh < KH; kh++) {
              var r = h * SH - PH + kh;
              if (r < 0 || r >= HO) continue;
              for (var kw = 0; kw < KW; kw++) {
                var q = w * SW - PW + kw;
                if (q >= 0 && q < WO) y[yo + r * WO + q] += v * l.W[wk + kh * KW + kw];
              }
            }
          }
        }
      }
    }
    return { x: y, shape: [O, HO, WO] };
  }

  /** The decoder's output at code z (an array): grey levels, channels first. */
  function decode(model, z) {
    var x = Float64Array.from(z), shape = [z.length], i;
    model.layers.forEach(function (l) {
      if (l.op === "linear") { x = linear(x, l); shape = [l.out]; }
      else if (l.op === "relu") { for (i = 0; i < x.length; i++) if (x[i] < 0) x[i] = 0; }
      else if (l.op === "sigmoid") { for (i = 0; i < x.length; i++) x[i] = 1 / (1 + Math.exp(-x[i])); }
      else if (l.op === "unflatten") { shape = l.shape; }
      else if (l.op === "conv_transpose") { var r = convTranspose(x, shape, l); x = r.x; shape = r.shape; }
      else throw new Error("unknown layer " + l.op);
    });
    return { image: x, shape: shape };
  }

  // ----------------------------------------------------------- drawing
  function el(tag, attrs, parent) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") node.textContent = attrs[k]; else node.setAttribute(k, attrs[k]);
    });
    if (parent) parent.appendChild(node);
    return node;
  }

  function paint(canvas, image, shape) {
    var C = shape.length === 3 ? shape[0] : 1, H = shape[shape.length - 2], W = shape[shape.length - 1];
    canvas.width = W; canvas.height = H;
    // read back by the tests; a small canvas is as fast in software
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    var data = ctx.createImageData(W, H), n = H * W;
    for (var i = 0; i < n; i++) {
      for (var k = 0; k < 3; k++) {
        var g = image[(C === 3 ? k : 0) * n + i];
        data.data[4 * i + k] = Math.round(255 * Math.min(1, Math.max(0, g)));
      }
      data.data[4 * i + 3] = 255;
    }
    ctx.putImageData(data, 0, 0);
  }

  function themeColor(name, fallback) {
    var v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return v || fallback;
  }

  function niceStep(span) {
    var raw = span / 5, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return p * (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10);
  }

  function fmt(v) { return (Math.abs(v) < 5e-3 ? 0 : v).toFixed(2); }
  function label(v) { return String(Number(v.toPrecision(6))); }  // a tick: 0.5, not 0.50000001

  // ------------------------------------------------------------ explorer
  function explorer(panel, name, model) {
    var win = model.window, x0 = win[0], x1 = win[1], y0 = win[2], y1 = win[3];
    var pts = floats(model.points), labels = bytes(model.labels), colors = model.colors;
    var title = panel.getAttribute("data-title") || name;
    el("p", { class: "live-title", text: title }, panel);
    var scatter = el("canvas", {
      class: "live-scatter", tabindex: "0", role: "img",
      "aria-label": title + ": the test digits' codes, coloured by digit. Point, touch, or " +
        "use the arrow keys to choose a code; the image the decoder makes there is shown below."
    }, panel);
    var readout = el("div", { class: "live-readout" }, panel);
    var image = el("canvas", { class: "live-image", role: "img", width: "28", height: "28" }, readout);
    var where = el("output", { class: "live-z", "aria-live": "polite" }, readout);
    var layer = document.createElement("canvas");
    var z = [(x0 + x1) / 2, (y0 + y1) / 2];
    panel.liveTimings = [];

    function toPixel(zx, zy, size) {
      return [(zx - x0) / (x1 - x0) * size, (y1 - zy) / (y1 - y0) * size];
    }

    function drawLayer() {  // points, axes and prior circles, redrawn on resize or theme change
      var dpr = window.devicePixelRatio || 1, size = Math.max(1, Math.round(scatter.clientWidth * dpr));
      scatter.width = scatter.height = layer.width = layer.height = size;
      var ctx = layer.getContext("2d"), fg = themeColor("--pst-color-text-base", "#333");
      ctx.fillStyle = themeColor("--pst-color-background", "#fff");
      ctx.fillRect(0, 0, size, size);
      ctx.strokeStyle = fg; ctx.fillStyle = fg; ctx.globalAlpha = 0.6; ctx.lineWidth = dpr;
      ctx.font = Math.round(10 * dpr) + "px sans-serif";
      var step = niceStep(x1 - x0), t, p;
      for (t = Math.ceil(x0 / step) * step; t <= x1; t += step) {
        p = toPixel(t, 0, size)[0];
        ctx.beginPath(); ctx.moveTo(p, size); ctx.lineTo(p, size - 6 * dpr); ctx.stroke();
        if (p < size - 28 * dpr) ctx.fillText(label(t), p + 2 * dpr, size - 8 * dpr);
      }
      for (t = Math.ceil(y0 / step) * step; t <= y1; t += step) {
        p = toPixel(0, t, size)[1];
        ctx.beginPath(); ctx.moveTo(0, p); ctx.lineTo(6 * dpr, p); ctx.stroke();
        if (p > 14 * dpr && p < size - 20 * dpr) ctx.fillText(label(t), 8 * dpr, p - 2 * dpr);
      }
      var o = toPixel(0, 0, size), unit = size / (x1 - x0);
      ctx.globalAlpha = 0.4; ctx.setLineDash([4 * dpr, 4 * dpr]);
      for (var r = 1; r <= 3; r++) { ctx.beginPath(); ctx.arc(o[0], o[1], r * unit, 0, 2 * Math.PI); ctx.stroke(); }
      ctx.setLineDash([]); ctx.globalAlpha = 0.8;
      var dot = Math.max(2, 2 * dpr);
      for (var i = 0; i < labels.length; i++) {
        p = toPixel(pts[2 * i], pts[2 * i + 1], size);
        ctx.fillStyle = colors[labels[i] % colors.length];
        ctx.fillRect(p[0] - dot / 2, p[1] - dot / 2, dot, dot);
      }
      ctx.globalAlpha = 1;
    }

    function render() {
      var tick = performance.now(), out = decode(model, z);
      paint(image, out.image, out.shape);
      panel.liveTimings.push(performance.now() - tick);
      if (panel.liveTimings.length > 500) panel.liveTimings.shift();
      panel.liveImage = out.image;
      panel.setAttribute("data-z", JSON.stringify(z));
      var text = "z = (" + fmt(z[0]) + ", " + fmt(z[1]) + ")";
      where.textContent = text;
      image.setAttribute("aria-label", "the image " + title + " decodes at " + text);
      var ctx = scatter.getContext("2d"), size = scatter.width, p = toPixel(z[0], z[1], size);
      var dpr = window.devicePixelRatio || 1;
      ctx.drawImage(layer, 0, 0);
      ctx.lineWidth = 2 * dpr; ctx.strokeStyle = themeColor("--pst-color-text-base", "#000");
      ctx.beginPath(); ctx.arc(p[0], p[1], 7 * dpr, 0, 2 * Math.PI); ctx.stroke();
      ctx.beginPath();
      ctx.moveTo(p[0] - 11 * dpr, p[1]); ctx.lineTo(p[0] + 11 * dpr, p[1]);
      ctx.moveTo(p[0], p[1] - 11 * dpr); ctx.lineTo(p[0], p[1] + 11 * dpr);
      ctx.stroke();
    }

    function clamp(v, a, b) { return Math.min(b, Math.max(a, v)); }
    function pointTo(event) {
      var box = scatter.getBoundingClientRect();
      z = [clamp(x0 + (event.clientX - box.left) / box.width * (x1 - x0), x0, x1),
           clamp(y1 - (event.clientY - box.top) / box.height * (y1 - y0), y0, y1)];
      render();
    }
    scatter.addEventListener("pointermove", pointTo);
    scatter.addEventListener("pointerdown", function (event) {
      pointTo(event);
      if (event.pointerType !== "mouse") scatter.setPointerCapture(event.pointerId);
    });
    scatter.addEventListener("keydown", function (event) {
      var step = (x1 - x0) / 50 * (event.shiftKey ? 5 : 1);
      var move = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, step], ArrowDown: [0, -step] }[event.key];
      if (!move) return;
      event.preventDefault();
      z = [clamp(z[0] + move[0], x0, x1), clamp(z[1] + move[1], y0, y1)];
      render();
    });
    var redraw = function () { drawLayer(); render(); };
    if (window.ResizeObserver) new ResizeObserver(redraw).observe(scatter);
    new MutationObserver(redraw).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
    redraw();
  }

  function legend(widget, model) {  // above the panels: how to use them, and the colours
    var first = widget.firstChild;
    var hint = el("p", { class: "live-hint", text: "Point at a panel, touch it, or focus it (Tab) " +
      "and use the arrow keys (with Shift for larger steps) to decode any code, inside or outside the cloud." });
    var list = el("ul", { class: "live-legend", "aria-label": "colour of each digit" });
    widget.insertBefore(hint, first);
    widget.insertBefore(list, first);
    el("li", { class: "live-legend-title", text: "digit" }, list);
    model.colors.forEach(function (color, digit) {
      var item = el("li", {}, list);
      el("span", { class: "live-swatch", style: "background:" + color, "aria-hidden": "true" }, item);
      item.appendChild(document.createTextNode(String(digit)));
    });
  }

  // ----------------------------------------------------------- traversal
  function traversal(panel, name, model) {
    var k = model.latent_dim, means = floats(model.means), digits = bytes(model.digits);
    var side = Math.round(Math.sqrt(digits.length / model.digit_labels.length));
    var id = "live-" + name.replace(/[^\w-]/g, "") + "-";
    var pick = el("fieldset", { class: "live-digits" }, panel);
    el("legend", { text: "Start from the code of test digit" }, pick);
    var body = el("div", { class: "live-traversal-body" }, panel);
    var sliders = el("div", { class: "live-sliders" }, body);
    var readout = el("div", { class: "live-readout" }, body);
    var image = el("canvas", { class: "live-image", role: "img", width: "28", height: "28" }, readout);
    var original = el("canvas", { class: "live-original", role: "img", width: "28", height: "28" }, readout);
    el("span", { class: "live-z", text: "decoded (large) and the test digit (small)" }, readout);
    var z = [], current = 0, inputs = {};
    panel.liveTimings = [];

    function render() {
      var tick = performance.now(), out = decode(model, z);
      paint(image, out.image, out.shape);
      panel.liveTimings.push(performance.now() - tick);
      panel.liveImage = out.image;
      panel.setAttribute("data-z", JSON.stringify(z));
      image.setAttribute("aria-label", "the image decoded from the code set by the sliders");
    }

    function choose(d) {
      current = d;
      z = Array.prototype.slice.call(means.subarray(d * k, (d + 1) * k));
      var pixels = digits.subarray(d * side * side, (d + 1) * side * side), grey = new Float64Array(pixels.length);
      for (var i = 0; i < grey.length; i++) grey[i] = pixels[i] / 255;
      paint(original, grey, [side, side]);
      original.setAttribute("aria-label", "test digit " + model.digit_labels[d]);
      model.units.forEach(function (u) {
        inputs[u].input.value = String(z[u]);
        inputs[u].output.textContent = fmt(z[u]);
      });
      render();
    }

    model.digit_labels.forEach(function (label, d) {
      var option = el("label", { class: "live-digit" }, pick);
      var radio = el("input", { type: "radio", name: id + "digit", value: String(d) }, option);
      option.appendChild(document.createTextNode(" " + label));
      radio.checked = d === 0;
      radio.addEventListener("change", function () { if (radio.checked) choose(d); });
    });
    model.units.forEach(function (u, j) {
      var row = el("div", { class: "live-slider" }, sliders);
      var label = el("label", { for: id + u, text: "unit " + u }, row);
      el("span", { class: "live-spread", text: " (spread " + model.spreads[j].toFixed(2) + ")" }, label);
      var input = el("input", { type: "range", id: id + u, min: String(-model.span), max: String(model.span),
                                step: "0.05", "data-unit": String(u) }, row);
      var output = el("output", { for: id + u }, row);
      inputs[u] = { input: input, output: output };
      input.addEventListener("input", function () {
        z[u] = parseFloat(input.value);
        output.textContent = fmt(z[u]);
        render();
      });
    });
    var reset = el("button", { type: "button", class: "live-reset", text: "Back to the digit's code" }, panel);
    reset.addEventListener("click", function () { choose(current); });
    choose(0);
  }

  // ---------------------------------------------------------------- start
  var BUILDERS = { explorer: explorer, traversal: traversal };

  function start(figure) {
    var widget = figure.querySelector(".live-widget"), kind = figure.getAttribute("data-live");
    var panels = Array.prototype.slice.call(widget.querySelectorAll(".live-panel"));
    return Promise.all(panels.map(function (p) { return load(p.getAttribute("data-model")); }))
      .then(function (loaded) {
        widget.hidden = false;
        figure.classList.add("is-live");
        panels.forEach(function (p, i) { BUILDERS[kind](p, p.getAttribute("data-model"), loaded[i]); });
        if (kind === "explorer") legend(widget, loaded[0]);
        figure.setAttribute("data-ready", "true");
      })
      .catch(function (err) {  // the fallback picture stays
        figure.setAttribute("data-ready", "fallback");
        console.warn("live figure: " + err.message + "; showing the static picture");
      });
  }

  window.LiveFigures = { register: register, decode: decode, models: models };
  function startAll() { document.querySelectorAll(".live-figure").forEach(start); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startAll);
  else startAll();
})();
