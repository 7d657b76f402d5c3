"use strict";
/* The explorer page: draws the graph in DATA (made by tinygrad_cnn/viz/explorer/data.py, whose
   docstring describes it), shows a node's details on click, steps through the backward pass,
   collapses and expands groups (composite ops, modules; the module calls from a depth on at once),
   and searches.

   Drawing runs in three stages, redone whenever a group is collapsed or expanded:
     visibleGraph()  what is drawn: each node, or the outermost collapsed group holding it
     layout()        a layered layout: data flows down the page as in draw_graph
     draw()          the SVG, with a frame around the members of each expanded group */

const DATA = JSON.parse(document.getElementById("graph-data").textContent);
const NODES = DATA.nodes, GROUPS = DATA.groups, STEPS = DATA.trace.steps;

const LINE = 14, CHAR = 6.3, PAD_X = 12, PAD_Y = 7;          // text metrics of the 11px font
const LAYER_GAP = 40, NODE_GAP = 20, FRAME_PAD = 12, FRAME_LABEL = 14;
const SWEEPS = 8;                                             // ordering and placement passes

// each node's groups, outermost first; and which folded group hides a group of its run
const chainOf = NODES.map(n => groupChain(n.group));
const foldOwner = {};
GROUPS.forEach(g => { if (g.fold) g.fold.hidden.forEach(h => { foldOwner[h] = g.id; }); });

const state = {
  // composite ops as draw_graph's default, module calls from explore's depth on (data.py sets `collapsed`)
  collapsed: new Set(GROUPS.filter(g => g.collapsed).map(g => g.id)),
  unfolded: new Set(),  // folded groups the user opened
  selected: null,       // key of the selected item: "n3" (node 3) or "g2" (group 2)
  step: -1,             // the last backward step shown; -1: before the backward pass
  timer: null,          // the play timer
  matches: [], matchIndex: -1,
  view: {x: 0, y: 0, k: 1},
  drawn: null,          // what draw() drew: {index (key -> item), rep (node -> key), pos, bbox, elements}
};

function groupChain(g) {
  const chain = [];
  for (; g !== null && g !== undefined; g = GROUPS[g].parent) chain.unshift(g);
  return chain;
}

function isFolded(g) { return GROUPS[g].fold !== null && GROUPS[g].fold !== undefined && !state.unfolded.has(g); }

/* The key of what stands for node i: the outermost collapsed (or folded) group holding it, or itself. */
function repOf(i) {
  for (const g of chainOf[i]) {
    const owner = foldOwner[g];
    if (owner !== undefined && isFolded(owner)) return "g" + owner;
    if (isFolded(g) || state.collapsed.has(g)) return "g" + g;
  }
  return "n" + i;
}

// ---------------------------------------------------------------- what is drawn

// the nodes each node sends data to
const consumers = NODES.map(() => []);
DATA.edges.forEach(([s, d]) => consumers[s].push(d));
const LEAVES = new Set(["parameter", "input", "target", "constant"]);

function visibleGraph() {
  const index = new Map(), items = [];
  const rep = NODES.map((_, i) => repOf(i));
  // a leaf used only inside one collapsed module call (its weights, BatchNorm's running statistics)
  // is part of it, as draw_graph draws a module at `depth`
  NODES.forEach((n, i) => {
    if (!LEAVES.has(n.kind) || !consumers[i].length) return;
    const into = new Set(consumers[i].map(d => rep[d]));
    const [key] = into;
    if (into.size === 1 && key[0] === "g" && GROUPS[Number(key.slice(1))].kind === "module") rep[i] = key;
  });
  rep.forEach(key => {
    if (!index.has(key)) { index.set(key, items.length); items.push(makeItem(key)); }
  });
  const seen = new Set(), edges = [];
  for (const [s, d] of DATA.edges) {
    const a = index.get(rep[s]), b = index.get(rep[d]), id = a + ">" + b;
    if (a !== b && !seen.has(id)) { seen.add(id); edges.push([a, b]); }
  }
  return {items, index, edges, rep};
}

function makeItem(key) {
  const id = Number(key.slice(1));
  if (key[0] === "n") {
    const n = NODES[id];
    return {key, kind: n.kind, lines: n.label, frames: chainOf[id]};
  }
  const g = GROUPS[id];
  const title = g.label + (isFolded(id) ? " \u00d7" + g.fold.count : "");
  const shapes = g.shapes.map(s => "(" + s.join(", ") + (s.length === 1 ? ",)" : ")")).join(", ");
  const kind = g.kind === "module" && DATA.styles.module ? "module" : "nn_op";
  return {key, kind, lines: shapes ? [title, shapes] : [title], frames: groupChain(g.parent)};
}

// ---------------------------------------------------------------- layout

/* A layered layout: each vertex in a layer below those it takes data from; edges longer than one
   layer pass through a dummy vertex per layer; vertices ordered in each layer by the mean
   position of their neighbours (members of one frame kept together); then placed as close to
   their neighbours as the order and gaps allow. */
function layout(items, edges) {
  const n = items.length;
  const w = items.map(it => Math.max(...it.lines.map(l => l.length)) * CHAR + 2 * PAD_X);
  const h = items.map(it => it.lines.length * LINE + 2 * PAD_Y);
  items.forEach((it, i) => { if (it.kind === "nn_op" || it.kind === "op" || it.kind === "module") w[i] *= 1.15; });
  const layer = layers(n, edges);
  // vertices: the items, then the dummies of long edges; frames[v] the frames it is drawn in
  const vLayer = layer.slice(), vWidth = w.slice(), frames = items.map(it => it.frames);
  const up = items.map(() => []), down = items.map(() => []);
  const routes = edges.map(([a, b]) => {
    const route = [a];
    const shared = commonPrefix(frames[a], frames[b]);
    for (let l = layer[a] + 1; l < layer[b]; l++) {
      const v = vLayer.length;
      vLayer.push(l); vWidth.push(4); frames.push(shared); up.push([]); down.push([]);
      route.push(v);
    }
    route.push(b);
    for (let k = 1; k < route.length; k++) { down[route[k - 1]].push(route[k]); up[route[k]].push(route[k - 1]); }
    return route;
  });
  const depth = maxOf(vLayer.concat([0])) + 1;
  const rows = Array.from({length: depth}, () => []);
  vLayer.forEach((l, v) => rows[l].push(v));  // first seen first: inputs before the ops using them
  const pos = new Float64Array(vLayer.length);  // each vertex's place in its layer
  rows.forEach(row => row.forEach((v, k) => { pos[v] = k; }));
  for (let sweep = 0; sweep < SWEEPS; sweep++) {
    const downward = sweep % 2 === 0;
    const order = downward ? rows : rows.slice().reverse();
    for (const row of order) {
      const bary = new Map(row.map(v => [v, mean((downward ? up : down)[v].map(u => pos[u]), pos[v])]));
      sortKeepingFrames(row, bary, frames);
      row.forEach((v, k) => { pos[v] = k; });
    }
  }
  // x: start packed, then pull towards the neighbours' mean, alternately from above and below
  const x = new Float64Array(vLayer.length);
  rows.forEach(row => placeInOrder(row, row.map(() => 0), vWidth, frames).forEach((xv, k) => { x[row[k]] = xv; }));
  for (let sweep = 0; sweep < SWEEPS; sweep++) {
    const downward = sweep % 2 === 0;
    for (const row of (downward ? rows : rows.slice().reverse())) {
      const wanted = row.map(v => {
        const near = (downward ? up : down)[v].concat(sweep > 1 ? (downward ? down : up)[v] : []);
        return mean(near.map(u => x[u]), x[v]);
      });
      placeInOrder(row, wanted, vWidth, frames).forEach((xv, k) => { x[row[k]] = xv; });
    }
  }
  // y: one row per layer, as tall as its tallest item
  const rowHeight = rows.map(row => maxOf(row.filter(v => v < n).map(v => h[v]).concat([LINE])));
  const rowTop = [0];
  rowHeight.forEach((rh, l) => rowTop.push(rowTop[l] + rh + LAYER_GAP + FRAME_LABEL));
  const y = Array.from(vLayer, l => rowTop[l] + rowHeight[l] / 2);
  const placed = items.map((_, i) => ({x: x[i], y: y[i], w: w[i], h: h[i]}));
  const paths = routes.map(route => route.map((v, k) => {
    if (v >= n) return [x[v], y[v]];
    return [x[v], y[v] + (k === 0 ? h[v] / 2 : -h[v] / 2)];
  }));
  return {pos: placed, paths};
}

/* The layer of each item: below everything it takes data from (longest path), except that a
   source (a parameter, the data) sits right above its first consumer, not at the top. */
function layers(n, edges) {
  const succ = Array.from({length: n}, () => []), indeg = new Array(n).fill(0);
  for (const [a, b] of edges) { succ[a].push(b); indeg[b]++; }
  const layer = new Array(n).fill(0), topo = [];
  for (let i = 0; i < n; i++) if (indeg[i] === 0) topo.push(i);
  for (let k = 0; k < topo.length; k++) {
    for (const b of succ[topo[k]]) {
      layer[b] = Math.max(layer[b], layer[topo[k]] + 1);
      if (--indeg[b] === 0) topo.push(b);
    }
  }
  const hasInput = new Array(n).fill(false);
  for (const [, b] of edges) hasInput[b] = true;
  for (let i = 0; i < n; i++) {
    if (!hasInput[i] && succ[i].length) layer[i] = minOf(succ[i].map(b => layer[b])) - 1;
  }
  return layer;
}

function commonPrefix(a, b) {
  let k = 0;
  while (k < a.length && k < b.length && a[k] === b[k]) k++;
  return a.slice(0, k);
}

function mean(values, fallback) {
  return values.length ? values.reduce((s, v) => s + v, 0) / values.length : fallback;
}

/* Sort a layer by barycentre, the members of each frame kept next to each other: the sort key of
   a vertex is the mean barycentre of each frame around it (outermost first), then its own. */
function sortKeepingFrames(row, bary, frames) {
  const frameBary = new Map();
  for (const v of row) {
    for (const f of frames[v]) {
      const acc = frameBary.get(f) || [0, 0];
      acc[0] += bary.get(v); acc[1] += 1;
      frameBary.set(f, acc);
    }
  }
  const key = v => frames[v].map(f => [frameBary.get(f)[0] / frameBary.get(f)[1], f]).concat([[bary.get(v), -1]]);
  const keys = new Map(row.map(v => [v, key(v)]));
  row.sort((a, b) => {
    const ka = keys.get(a), kb = keys.get(b);
    for (let k = 0; k < Math.min(ka.length, kb.length); k++) {
      if (ka[k][0] !== kb[k][0]) return ka[k][0] - kb[k][0];
      if (ka[k][1] !== kb[k][1]) return ka[k][1] - kb[k][1];
    }
    return ka.length - kb.length;
  });
}

/* x positions for the vertices of a row, in this order, as near `wanted` as possible (least
   squares) with at least a gap between neighbours (more where a frame's border lies between
   them): isotonic regression of wanted - offset by pool-adjacent-violators, plus the offset. */
function placeInOrder(row, wanted, width, frames) {
  const offset = [0];
  for (let k = 1; k < row.length; k++) {
    const a = frames[row[k - 1]], b = frames[row[k]];
    const borders = a.length + b.length - 2 * commonPrefix(a, b).length;
    offset.push(offset[k - 1] + (width[row[k - 1]] + width[row[k]]) / 2 + NODE_GAP + borders * FRAME_PAD);
  }
  const blocks = [];  // [sum, count] of merged runs
  wanted.forEach((xw, k) => {
    blocks.push([xw - offset[k], 1]);
    while (blocks.length > 1) {
      const [s1, c1] = blocks[blocks.length - 2], [s2, c2] = blocks[blocks.length - 1];
      if (s1 / c1 <= s2 / c2) break;
      blocks.splice(blocks.length - 2, 2, [s1 + s2, c1 + c2]);
    }
  });
  const xs = [];
  for (const [s, c] of blocks) for (let k = 0; k < c; k++) xs.push(s / c + offset[xs.length]);
  return xs;
}

// ---------------------------------------------------------------- drawing

const SVG = document.getElementById("graph");
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\"": "&quot;"}[c]));

/* A node's outline in a Graphviz style ({shape, style, fillcolor}), centred on (0, 0). */
function shapeSVG(style, w, h) {
  const fill = `fill="${esc(style.fillcolor || "#ffffff")}"`, hw = w / 2, hh = h / 2;
  const rounded = (style.style || "").includes("rounded");
  const dashed = (style.style || "").includes("dashed") ? ` stroke-dasharray="4 3"` : "";
  const stroke = style.color ? ` style="stroke:${esc(style.color)}"` : "";
  switch (style.shape) {
    case "ellipse":
      return `<ellipse class="shape" rx="${hw}" ry="${hh}" ${fill}${stroke}/>`;
    case "octagon": {
      const c = Math.min(hh * 0.6, hw * 0.3);
      const p = [[-hw + c, -hh], [hw - c, -hh], [hw, -hh + c], [hw, hh - c], [hw - c, hh], [-hw + c, hh],
                 [-hw, hh - c], [-hw, -hh + c]];
      return `<polygon class="shape" points="${p.map(q => q.join(",")).join(" ")}" ${fill}${stroke}/>`;
    }
    case "note": {
      const c = 8, p = [[-hw, -hh], [hw - c, -hh], [hw, -hh + c], [hw, hh], [-hw, hh]];
      return `<polygon class="shape" points="${p.map(q => q.join(",")).join(" ")}" ${fill}${stroke}/>` +
             `<path d="M${hw - c},${-hh} V${-hh + c} H${hw}" fill="none" stroke="#333"/>`;
    }
    default:  // box
      return `<rect class="shape" x="${-hw}" y="${-hh}" width="${w}" height="${h}" rx="${rounded ? 6 : 0}" ` +
             `${fill}${stroke}${dashed}/>`;
  }
}

function styleOf(kind) { return DATA.styles[kind] || DATA.styles.op; }

function textSVG(lines) {
  const top = -(lines.length - 1) * LINE / 2;
  return lines.map((l, k) => `<text text-anchor="middle" y="${top + k * LINE + 4}">${esc(l)}</text>`).join("");
}

function edgePath(points) {
  // a cubic curve between each pair of points, leaving and entering vertically
  let d = `M${points[0][0]},${points[0][1]}`;
  for (let k = 1; k < points.length; k++) {
    const [x0, y0] = points[k - 1], [x1, y1] = points[k], my = (y0 + y1) / 2;
    d += ` C${x0},${my} ${x1},${my} ${x1},${y1}`;
  }
  return d;
}

function draw() {
  const graph = visibleGraph();
  const {pos, paths} = layout(graph.items, graph.edges);
  const frames = frameBoxes(graph.items, pos);
  const parts = [`<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" ` +
                 `orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs><g id="viewport">`];
  for (const [g, b] of frames) {
    const module = GROUPS[g].kind === "module" && DATA.module_cluster_style;
    const cluster = module ? DATA.module_cluster_style : DATA.cluster_style;
    const dash = cluster.style.includes("dashed") ? ` stroke-dasharray="5 3"` : "";
    parts.push(`<g class="frame" data-key="g${g}"><rect x="${b.x0}" y="${b.y0}" width="${b.x1 - b.x0}" ` +
               `height="${b.y1 - b.y0}" rx="6" stroke="${esc(cluster.color)}"${dash}/>` +
               `<text x="${b.x0 + 6}" y="${b.y0 + 12}" fill="${esc(cluster.fontcolor)}">` +
               `${esc(GROUPS[g].label)}</text></g>`);
  }
  graph.edges.forEach(([a, b], k) => {
    parts.push(`<path class="edge" data-src="${graph.items[a].key}" data-dst="${graph.items[b].key}" ` +
               `d="${edgePath(paths[k])}" marker-end="url(#arrow)"/>`);
  });
  graph.items.forEach((it, i) => {
    const p = pos[i];
    parts.push(`<g class="node kind-${it.kind}" data-key="${it.key}" transform="translate(${p.x},${p.y})">` +
               shapeSVG(styleOf(it.kind), p.w, p.h) + textSVG(it.lines) + `</g>`);
  });
  parts.push("</g>");
  SVG.innerHTML = parts.join("");
  const xs = pos.map(p => p.x - p.w / 2).concat(frames.map(([, b]) => b.x0));
  const xe = pos.map(p => p.x + p.w / 2).concat(frames.map(([, b]) => b.x1));
  const ys = pos.map(p => p.y - p.h / 2).concat(frames.map(([, b]) => b.y0));
  const ye = pos.map(p => p.y + p.h / 2).concat(frames.map(([, b]) => b.y1));
  const bbox = {x0: minOf(xs), x1: maxOf(xe), y0: minOf(ys), y1: maxOf(ye)};
  const elements = new Map();
  SVG.querySelectorAll(".node").forEach(el => elements.set(el.dataset.key, el));
  state.drawn = {index: graph.index, rep: graph.rep, pos, bbox, elements};
  document.getElementById("node-count").textContent = `${NODES.length} nodes, ${graph.items.length} drawn`;
  Object.assign(document.getElementById("node-count").dataset, {total: NODES.length, drawn: graph.items.length});
  applyView();
  markAll();
}

function minOf(a) { return a.reduce((m, v) => Math.min(m, v), Infinity); }
function maxOf(a) { return a.reduce((m, v) => Math.max(m, v), -Infinity); }

/* The box of each expanded group's frame: around the items drawn inside it and its inner frames. */
function frameBoxes(items, pos) {
  const boxes = new Map();
  items.forEach((it, i) => {
    const p = pos[i];
    it.frames.forEach((g, depth) => {
      const inner = it.frames.length - depth;  // frames nested inside this one around the item, plus one
      const pad = inner * FRAME_PAD / 1.5;
      const b = boxes.get(g) || {x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity, depth};
      b.x0 = Math.min(b.x0, p.x - p.w / 2 - pad); b.x1 = Math.max(b.x1, p.x + p.w / 2 + pad);
      b.y0 = Math.min(b.y0, p.y - p.h / 2 - pad - FRAME_LABEL); b.y1 = Math.max(b.y1, p.y + p.h / 2 + pad);
      boxes.set(g, b);
    });
  });
  return [...boxes.entries()].sort((a, b) => a[1].depth - b[1].depth);  // outer frames first, under inner ones
}

// ---------------------------------------------------------------- pan and zoom

const CANVAS = document.getElementById("canvas");

function applyView() {
  const {x, y, k} = state.view;
  document.getElementById("viewport").setAttribute("transform", `translate(${x},${y}) scale(${k})`);
}

function fit(whole) {
  const b = state.drawn.bbox, W = CANVAS.clientWidth || 800, H = CANVAS.clientHeight || 600;
  const bw = b.x1 - b.x0 + 40, bh = b.y1 - b.y0 + 40;
  let k = Math.min(W / bw, H / bh, 1.5);
  if (!whole && k < 0.45) k = Math.min(1, W / bw > 0.45 ? W / bw : 0.9);  // too big to fit: start at the top
  state.view = {k, x: W / 2 - k * (b.x0 + b.x1) / 2, y: (k * bh <= H ? H / 2 - k * (b.y0 + b.y1) / 2 : 20 - k * b.y0)};
  applyView();
}

/* Centre the view on a drawn item. */
function focusOn(key) {
  const i = state.drawn.index.get(key);
  if (i === undefined) return;
  const p = state.drawn.pos[i], W = CANVAS.clientWidth || 800, H = CANVAS.clientHeight || 600;
  state.view.x = W / 2 - state.view.k * p.x;
  state.view.y = H / 2 - state.view.k * p.y;
  applyView();
}

function isInView(key) {
  const i = state.drawn.index.get(key);
  if (i === undefined) return true;
  const p = state.drawn.pos[i], {x, y, k} = state.view;
  const sx = x + k * p.x, sy = y + k * p.y;
  return sx > 0 && sy > 0 && sx < CANVAS.clientWidth && sy < CANVAS.clientHeight;
}

CANVAS.addEventListener("wheel", e => {
  e.preventDefault();
  const r = CANVAS.getBoundingClientRect(), mx = e.clientX - r.left, my = e.clientY - r.top;
  const v = state.view, k = Math.min(4, Math.max(0.02, v.k * Math.exp(-e.deltaY * 0.0015)));
  v.x = mx - (mx - v.x) * k / v.k; v.y = my - (my - v.y) * k / v.k; v.k = k;  // keep the point under the cursor
  applyView();
}, {passive: false});

let drag = null;
CANVAS.addEventListener("mousedown", e => {
  if (e.target.closest(".node, .frame text")) return;
  drag = {x: e.clientX, y: e.clientY, vx: state.view.x, vy: state.view.y};
  CANVAS.classList.add("panning");
});
window.addEventListener("mousemove", e => {
  if (!drag) return;
  state.view.x = drag.vx + e.clientX - drag.x; state.view.y = drag.vy + e.clientY - drag.y;
  applyView();
});
window.addEventListener("mouseup", () => { drag = null; CANVAS.classList.remove("panning"); });

// ---------------------------------------------------------------- marking nodes

function setClass(key, name, on) {
  const el = state.drawn.elements.get(key);
  if (el) el.classList.toggle(name, on);
}

/* Apply every mark (selection, search matches, backward steps, bad gradients) to a new drawing. */
function markAll() {
  const d = state.drawn;
  d.elements.forEach(el => el.classList.remove("selected", "match", "done", "current", "warning"));
  NODES.forEach((n, i) => { if (n.grad.some(badGradient)) setClass(d.rep[i], "warning", true); });
  if (state.selected) setClass(state.selected, "selected", true);
  state.matches.forEach(key => setClass(key, "match", true));
  for (let s = 0; s < state.step; s++) if (STEPS[s].node !== null) setClass(d.rep[STEPS[s].node], "done", true);
  markCurrentStep();
}

/* A gradient that vanished (all zero) or exploded (NaN or Inf), as draw_graph's red border. */
function badGradient(g) { return g !== null && (g.nan > 0 || g.inf > 0 || g.norm === 0); }

function markCurrentStep() {
  const d = state.drawn;
  SVG.querySelectorAll(".edge.flow").forEach(el => el.classList.remove("flow"));
  SVG.querySelectorAll(".node.current").forEach(el => el.classList.remove("current"));
  const step = STEPS[state.step];
  if (!step || step.node === null) return;
  const key = d.rep[step.node];
  setClass(key, "current", true);
  // the gradient flows back along the edges into the node whose VJP runs
  SVG.querySelectorAll(`.edge[data-dst="${key}"]`).forEach(el => el.classList.add("flow"));
}

// ---------------------------------------------------------------- the side panel

const fmt = x => (x === null || x === undefined ? "\u2013" : Number(x).toPrecision(4));
const shapeText = s => "(" + s.join(", ") + (s.length === 1 ? ",)" : ")");

/* Bytes as Python's format_bytes: 1536 -> '1.5 KiB'. */
function formatBytes(n) {
  if (n < 1024) return n + " B";
  return n < 1024 * 1024 ? (n / 1024).toFixed(1) + " KiB" : (n / 1024 / 1024).toFixed(1) + " MiB";
}

function row(name, value, attrs = "") { return `<tr><td>${esc(name)}</td><td ${attrs}>${value}</td></tr>`; }

/* A statistics table (data.py's `statistics`) of a value of this shape and dtype (`meta`), with a
   histogram when it has one. */
function statsHTML(s, id, meta) {
  if (!s) return `<p class="hint">unknown: not kept by the graph</p>`;
  const cells = [["min", s.min], ["max", s.max], ["mean", s.mean], ["norm", s.norm]];
  let html = `<table id="${id}">` + row("shape", esc(shapeText(meta.shape) + " " + meta.dtype), `data-stat="shape"`) +
    cells.map(([k, v]) => row(k, fmt(v), `data-stat="${k}"`)).join("") +
    row("NaN / Inf", `${s.nan} / ${s.inf}`, `data-stat="nonfinite"`) + `</table>`;
  if (s.histogram && s.histogram.counts.length) html += histogramSVG(s.histogram);
  return html;
}

function histogramSVG(hist) {
  const W = 300, H = 48, top = Math.max(...hist.counts), bw = W / hist.counts.length;
  const bars = hist.counts.map((c, k) => {
    const bh = top ? Math.max(c ? 1 : 0, c / top * H) : 0;
    return `<rect x="${k * bw + 0.5}" y="${H - bh}" width="${bw - 1}" height="${bh}" fill="#6d9eeb">` +
           `<title>${c}</title></rect>`;
  }).join("");
  return `<svg class="histogram" width="${W}" height="${H + 14}">${bars}` +
    `<text x="0" y="${H + 12}" font-size="10">${fmt(hist.range[0])}</text>` +
    `<text x="${W}" y="${H + 12}" font-size="10" text-anchor="end">${fmt(hist.range[1])}</text></svg>`;
}

function gradientHTML(n, i) {
  if (!n.grad.some(g => g)) {
    const why = DATA.trace.ran ? "no gradient reached it" : "no backward pass was run";
    return `<p class="hint">${why}</p>`;
  }
  const step = STEPS.findIndex(s => s.node === i);
  const when = step >= 0 && state.step < step ? `<p class="hint">arrives at backward step ${step + 1}</p>` : "";
  return when + n.grad.map((g, k) => statsHTML(g, k ? `grad-stats-${k}` : "grad-stats", n.outputs[k])).join("");
}

function nodeDetails(i) {
  const n = NODES[i];
  const title = n.kind === "op" ? n.op : n.label[0];
  let html = `<h2 id="detail-title">${esc(title)}</h2><table>` + row("kind", esc(n.kind));
  if (n.name) html += row("name", esc(n.name));
  if (n.group !== null) html += row("in", esc(chainOf[i].map(g => GROUPS[g].label).join(" / ")));
  const args = Object.entries(n.args).map(([k, v]) => `${esc(k)}=${esc(v)}`).join(", ");
  if (args) html += row("arguments", args);
  html += row("output", n.outputs.map(o => esc(shapeText(o.shape) + " " + o.dtype)).join("<br>"), `id="detail-shape"`);
  if (n.inputs.length) {
    html += row("inputs", n.inputs.map(m => (m ? esc(shapeText(m.shape) + " " + m.dtype) : "a number")).join("<br>"));
  }
  html += `</table><h3>value</h3>` +
    n.stats.map((s, k) => statsHTML(s, k ? `value-stats-${k}` : "value-stats", n.outputs[k])).join("");
  html += `<h3>gradient</h3>` + gradientHTML(n, i);
  if (n.kind === "op") {
    html += `<h3>saved for backward</h3>`;
    html += n.saved.length
      ? `<table id="saved">` + n.saved.map(s => row(s.kind, esc(shapeText(s.shape) + " " + s.dtype + ", " +
          formatBytes(s.bytes)))).join("") + row("holds", formatBytes(n.saved_bytes)) + `</table>`
      : `<p class="hint">nothing</p>`;
    if (n.doc !== null) html += `<h3>VJP</h3><div class="doc">${esc(DATA.docs[n.doc])}</div>`;
    html += `<h3>made at</h3>` + (n.created_at
      ? `<div class="code">${esc(n.created_at.file)}:${n.created_at.line}<br>${esc(n.created_at.code)}</div>`
      : `<p class="hint">unknown: build the graph inside detect_anomaly() to record code lines</p>`);
  }
  return html;
}

/* Every node inside group g, nested groups included. */
function groupNodes(g) { return NODES.filter((_, i) => chainOf[i].includes(g)); }

function groupDetails(g) {
  const group = GROUPS[g], inside = groupNodes(g);
  const saved = inside.reduce((s, n) => s + n.saved_bytes, 0);
  const collapsed = state.collapsed.has(g);
  let html = `<h2 id="detail-title">${esc(group.label)}</h2><table>` + row("kind", esc(group.kind)) +
    row("nodes inside", inside.length) +
    row("output", group.shapes.map(s => esc(shapeText(s))).join("<br>"), `id="detail-shape"`) +
    row("saved", formatBytes(saved)) + `</table>`;
  html += `<p><button id="toggle-group">${collapsed ? "expand" : "collapse"}</button>`;
  if (group.fold) {
    html += ` <button id="fold-group">${isFolded(g) ? "unfold the \u00d7" + group.fold.count : "fold again"}</button>`;
  }
  return html + `</p>`;
}

function showDetails() {
  const panel = document.getElementById("details"), key = state.selected;
  if (!key) return;
  panel.innerHTML = key[0] === "n" ? nodeDetails(Number(key.slice(1))) : groupDetails(Number(key.slice(1)));
  const toggle = panel.querySelector("#toggle-group"), fold = panel.querySelector("#fold-group");
  if (toggle) toggle.addEventListener("click", () => toggleGroup(Number(key.slice(1))));
  if (fold) fold.addEventListener("click", () => toggleFold(Number(key.slice(1))));
}

function select(key) {
  if (state.selected) setClass(state.selected, "selected", false);
  state.selected = key;
  setClass(key, "selected", true);
  showDetails();
}

// ---------------------------------------------------------------- collapse, expand, fold

function redraw(focusKey) {
  draw();
  search(document.getElementById("search").value);  // matches are keyed by what is drawn
  if (focusKey && state.drawn.index.has(focusKey) && !isInView(focusKey)) focusOn(focusKey);
  showDetails();
}

function toggleGroup(g) {
  if (state.collapsed.has(g)) state.collapsed.delete(g); else state.collapsed.add(g);
  if (isFolded(g)) state.unfolded.add(g);  // expanding a folded run shows its blocks
  redraw("g" + g);
}

function toggleFold(g) {
  if (state.unfolded.has(g)) state.unfolded.delete(g); else state.unfolded.add(g);
  redraw("g" + g);
}

/* Module calls at `depth` and below collapsed, those above expanded (draw_graph's depth; null: all
   expanded). Composite ops and unfolded runs stay as they are. */
function setDepth(depth) {
  GROUPS.forEach(g => {
    if (g.kind !== "module") return;
    if (depth !== null && g.level >= depth) state.collapsed.add(g.id); else state.collapsed.delete(g.id);
  });
  redraw();
  fit(false);
}

/* The depth control's choices: all, then each level of the module tree (hidden if there is none). */
function depthControl() {
  const levels = GROUPS.filter(g => g.kind === "module").map(g => g.level), deepest = maxOf(levels);
  const select = document.getElementById("depth");
  select.innerHTML = ["all"].concat(levels.length ? [...Array(deepest + 1).keys()] : [])
    .map(v => `<option value="${v}">${v}</option>`).join("");
  // a depth below the deepest call collapses nothing: the same as all
  select.value = DATA.depth === null || DATA.depth > deepest ? "all" : String(DATA.depth);
  select.addEventListener("change", () => setDepth(select.value === "all" ? null : Number(select.value)));
  document.getElementById("depth-control").hidden = !levels.length;
}

// ---------------------------------------------------------------- stepping through backward

function showStep() {
  const info = document.getElementById("step-info"), panel = document.getElementById("step-panel");
  const total = STEPS.length, before = DATA.trace.held_before;
  if (!DATA.trace.ran) {
    info.textContent = "not run";
    return;
  }
  const s = STEPS[state.step];
  const held = s ? s.held : before;
  info.textContent = `step ${state.step + 1} / ${total} \u00b7 graph holds ${formatBytes(held)}`;
  Object.assign(info.dataset, {index: state.step, node: s && s.node !== null ? s.node : "", held});
  if (!s) { panel.innerHTML = ""; return; }
  const n = s.node === null ? null : NODES[s.node];
  const where = n ? " \u2014 " + esc(n.label.join(" ")) : "";
  const line = (g, meta) => (g ? `${meta ? esc(shapeText(meta.shape)) + " " : ""}|g|=${fmt(g.norm)} ` +
    `[${fmt(g.min)}, ${fmt(g.max)}]` + (g.nan + g.inf ? ` <b>${g.nan} NaN, ${g.inf} Inf</b>` : "") : "\u2013");
  const sent = s.sent.map((g, k) => `input ${k}: ${line(g, n && n.inputs[k])}`).join("<br>");
  panel.innerHTML = `<h2>step ${state.step + 1}: ${esc(s.op)}${where}</h2><table id="step-table">` +
    row("arrives", n ? n.grad.map((g, k) => line(g, n.outputs[k])).join("<br>") : "\u2013") +
    row("sends", s.sent.length ? sent : "into .grad") +
    row("time", `${s.us} \u00b5s`) +
    row("graph holds", `${formatBytes(held)} of ${formatBytes(before)}`) + `</table>`;
}

function goToStep(k) {
  const d = state.drawn, next = Math.max(-1, Math.min(STEPS.length - 1, k));
  if (next === state.step + 1) {  // one step on: mark incrementally (cheap while playing)
    const prev = STEPS[state.step];
    if (prev && prev.node !== null) setClass(d.rep[prev.node], "done", true);
    state.step = next;
    markCurrentStep();
  } else {
    state.step = next;
    markAll();
  }
  const s = STEPS[state.step];
  if (s && s.node !== null && !isInView(d.rep[s.node])) focusOn(d.rep[s.node]);
  showStep();
  if (state.selected) showDetails();
}

function play() {
  const button = document.getElementById("play");
  if (state.timer) {
    clearInterval(state.timer);
    state.timer = null;
    button.innerHTML = "&#x25B6;";
    return;
  }
  if (state.step >= STEPS.length - 1) goToStep(-1);
  const interval = Math.max(30, Math.min(500, 20000 / Math.max(1, STEPS.length)));
  button.innerHTML = "&#x23F8;";
  state.timer = setInterval(() => {
    if (state.step >= STEPS.length - 1) { play(); return; }
    goToStep(state.step + 1);
  }, interval);
}

// ---------------------------------------------------------------- search

function search(text) {
  const q = text.trim().toLowerCase(), d = state.drawn;
  const found = new Set();
  if (q) {
    NODES.forEach((n, i) => {
      if ([n.label.join(" "), n.name, n.op].some(s => s.toLowerCase().includes(q))) found.add(d.rep[i]);
    });
    GROUPS.forEach(g => {
      if (!g.label.toLowerCase().includes(q)) return;
      const inside = NODES.findIndex((_, i) => chainOf[i].includes(g.id));  // a group is found where it is drawn
      if (inside >= 0) found.add(d.rep[inside]);
    });
  }
  state.matches.forEach(key => setClass(key, "match", false));
  state.matches = [...found];
  state.matchIndex = -1;
  state.matches.forEach(key => setClass(key, "match", true));
  const count = document.getElementById("search-count");
  count.textContent = q ? `${state.matches.length} found` : "";
  count.dataset.count = state.matches.length;
}

function nextMatch() {
  if (!state.matches.length) return;
  state.matchIndex = (state.matchIndex + 1) % state.matches.length;
  const key = state.matches[state.matchIndex];
  focusOn(key);
  select(key);
}

// ---------------------------------------------------------------- legend, notes, wiring

function legend() {
  const used = new Set(NODES.map(n => n.kind));
  if (GROUPS.some(g => g.kind === "composite")) used.add("nn_op");
  if (GROUPS.some(g => g.kind === "module")) used.add("module");
  if (GROUPS.some(g => g.kind === "composite")) used.add("frame");
  if (GROUPS.some(g => g.kind === "module")) used.add("module_frame");
  if (NODES.some(n => n.grad.some(badGradient))) used.add("warning");
  const entries = Object.entries(DATA.legend).filter(([kind]) => used.has(kind));
  document.getElementById("legend").innerHTML = entries.map(([kind, [title, meaning, style]]) =>
    `<div data-kind="${esc(kind)}"><svg width="46" height="22"><g transform="translate(23,11)">` +
    shapeSVG(kind === "warning" ? {...style, fillcolor: "#ffffff"} : style, 40, 18) + `</g></svg>` +
    `<span><b>${esc(title)}</b> ${esc(meaning)}</span></div>`).join("");
}

SVG.addEventListener("click", e => {
  const el = e.target.closest(".node, .frame");
  if (el) select(el.dataset.key);
});
SVG.addEventListener("dblclick", e => {
  const el = e.target.closest(".node, .frame");
  if (el && el.dataset.key[0] === "g") toggleGroup(Number(el.dataset.key.slice(1)));
});
document.getElementById("collapse-all").addEventListener("click", () => {
  state.collapsed = new Set(GROUPS.map(g => g.id));
  state.unfolded.clear();
  document.getElementById("depth").value = "0";  // every module call collapsed, as at depth 0
  redraw();
  fit(false);
});
document.getElementById("expand-all").addEventListener("click", () => {
  state.collapsed.clear();
  state.unfolded = new Set(GROUPS.filter(g => g.fold).map(g => g.id));
  document.getElementById("depth").value = "all";
  redraw();
  fit(false);
});
document.getElementById("fit").addEventListener("click", () => fit(true));
document.getElementById("step").addEventListener("click", () => goToStep(state.step + 1));
document.getElementById("step-back").addEventListener("click", () => goToStep(state.step - 1));
document.getElementById("step-reset").addEventListener("click", () => goToStep(-1));
document.getElementById("play").addEventListener("click", play);
const searchBox = document.getElementById("search");
searchBox.addEventListener("input", () => search(searchBox.value));
searchBox.addEventListener("keydown", e => { if (e.key === "Enter") nextMatch(); });
if (!DATA.trace.ran) {
  ["step", "step-back", "step-reset", "play"].forEach(id => { document.getElementById(id).disabled = true; });
}
document.getElementById("notes").innerHTML = DATA.notes.map(n => `<div>${esc(n)}</div>`).join("");

depthControl();
draw();
fit(false);
legend();
showStep();
document.body.dataset.ready = "true";  // for tests: drawn and wired
