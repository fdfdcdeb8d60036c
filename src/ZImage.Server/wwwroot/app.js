"use strict";
// The ZImage page: plain JS, no dependencies. Live state comes from GET /v1/events (server-sent events).
const clientId = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
const $ = (id) => document.getElementById(id);
const GiB = 1024 * 1024 * 1024;
let mode = "turbo";
let sizes = [];
let running = false;

function gib(bytes) {
  if (bytes == null) return "–";
  return bytes >= 0.1 * GiB || bytes === 0 ? (bytes / GiB).toFixed(2) + " GiB" : (bytes / GiB).toFixed(4) + " GiB";
}

function renderMemory(m) {
  $("bar").dataset.state = m.state;
  $("state").textContent = m.state;
  $("state").dataset.state = m.state;
  // Segments are drawn to scale of the device; a non-empty segment keeps at least 2% so that it stays visible.
  const parts = { reserve: m.system_reserve_bytes, base: m.base_bytes, inference: m.inference_limit_bytes, buffer: m.buffer_bytes, free: m.free_bytes };
  const shown = {};
  let sum = 0;
  for (const k in parts) { shown[k] = parts[k] > 0 ? Math.max(parts[k] / m.total_bytes, 0.02) : 0; sum += shown[k]; }
  for (const k in parts) $("seg-" + k).style.width = (100 * shown[k] / sum) + "%";
  const used = m.inference_limit_bytes > 0 ? Math.min(1, m.inference_in_use_bytes / m.inference_limit_bytes) : 0;
  $("seg-inference-used").style.width = (100 * used) + "%";
  $("seg-buffer-used").style.width = (m.buffer_bytes > 0 ? 100 * Math.min(1, m.buffer_in_use_bytes / m.buffer_bytes) : 0) + "%";
  $("lg-reserve").textContent = gib(m.system_reserve_bytes);
  $("lg-base").textContent = gib(m.base_bytes);
  $("lg-inference").textContent = gib(m.inference_in_use_bytes) + " of " + gib(m.inference_limit_bytes);
  $("lg-buffer").textContent = gib(m.buffer_bytes);
  $("lg-free").textContent = gib(m.free_bytes);
  $("model").textContent = m.model + " on " + m.device;
  if (m.demo_notice) { $("demo-notice").textContent = m.demo_notice; $("demo-notice").hidden = false; }
  // While the pipeline starts: which model part is loading, n/4 stages, device bytes so far.
  const loading = m.pipeline_state !== "Started" && m.load;
  $("load").hidden = !loading;
  if (loading) $("load").textContent = "Loading " + m.load.stage + " (" + m.load.completed + "/" + m.load.total + ", " + gib(m.load.resident_bytes) + " resident)";
  else if (m.pipeline_state === "Failed") { $("load").hidden = false; $("load").textContent = "The model failed to load; the next request retries."; }
}

function renderQueue(q) {
  const other = (q.running && q.running.client !== clientId) || q.waiting.some((w) => w.client !== clientId);
  $("busy").hidden = !other;
  const mine = q.waiting.find((w) => w.client === clientId);
  if (mine) $("queue").textContent = "Queued: position " + mine.position;
  else if (q.running && q.running.client === clientId) $("queue").textContent = "Running on the device";
  else $("queue").textContent = "";
}

function renderProgress(p) {
  if (p.client !== clientId) return;
  const bar = $("progress");
  bar.hidden = false;
  const total = Math.max(1, p.total_steps * p.image_count);
  bar.max = total;
  bar.value = p.image * p.total_steps + p.step;
  const stage = { EncodingPrompt: "text encoder", Denoising: "denoising", Decoding: "VAE decode", Completed: "done" }[p.stage] || p.stage;
  $("progress-text").textContent = stage + " — step " + p.step + "/" + p.total_steps +
    (p.image_count > 1 ? " (image " + (p.image + 1) + "/" + p.image_count + ")" : "") + " — " + (p.elapsed_ms / 1000).toFixed(1) + " s";
}

function renderSizes() {
  const select = $("size");
  const previous = select.value;
  select.innerHTML = "";
  let hidden = [];
  for (const s of sizes) {
    const fit = s.modes[mode];
    if (!fit.fits) { hidden.push(s.label + " (" + fit.peak + ")"); continue; }
    const o = document.createElement("option");
    o.value = s.width + "x" + s.height;
    o.textContent = s.label + " — peak " + fit.peak;
    select.appendChild(o);
  }
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
  $("size-note").textContent = hidden.length ? "Not offered (the inference segment does not admit them in this mode): " + hidden.join(", ") : "";
}

async function loadSizes() {
  const r = await fetch("/v1/sizes");
  if (r.ok) { sizes = await r.json(); renderSizes(); }
}

function showResult(body) {
  const z = body.zimage;
  $("result-image").src = "data:image/png;base64," + body.data[0].b64_json;
  const p = z.parameters;
  const rows = [["prompt", p.prompt], ["negative prompt", p.negative_prompt ?? "—"], ["mode", p.mode], ["size", p.width + "×" + p.height],
    ["steps", p.steps], ["guidance", p.guidance], ["seed", p.seed], ["model", p.model], ["peak", gib(z.peak_bytes) + " of " + gib(z.inference_bytes)],
    ["time", (z.total_ms / 1000).toFixed(2) + " s (queued " + (z.queue_ms / 1000).toFixed(2) + " s)"]];
  $("result-params").innerHTML = "";
  for (const [k, v] of rows) {
    const tr = document.createElement("tr");
    tr.innerHTML = "<td></td><td></td>";
    tr.children[0].textContent = k;
    tr.children[1].textContent = String(v);
    $("result-params").appendChild(tr);
  }
  $("result").hidden = false;
  if (z.reset) {
    $("reset-notice").textContent = "Reset to Standard: " + z.reset.message + " The rejected settings needed " + z.reset.extra_memory +
      " more memory than what ran (planned peak " + gib(z.reset.rejected_peak_bytes) + ").";
    $("reset-notice").hidden = false;
  }
}

async function generate(ev) {
  ev.preventDefault();
  if (running) return;
  running = true;
  $("generate").disabled = true;
  $("error").hidden = true;
  $("reset-notice").hidden = true;
  const body = { prompt: $("prompt").value, n: 1, size: $("size").value || undefined, response_format: "b64_json", mode };
  if ($("negative").value) body.negative_prompt = $("negative").value;
  if ($("steps").value) body.steps = Number($("steps").value);
  if ($("guidance").value) body.guidance = Number($("guidance").value);
  if ($("seed").value) body.seed = Number($("seed").value);
  try {
    const r = await fetch("/v1/images/generations", { method: "POST", headers: { "Content-Type": "application/json", "X-ZImage-Client": clientId }, body: JSON.stringify(body) });
    const json = await r.json();
    if (!r.ok) {
      const e = json.error;
      $("error").textContent = e.message + (r.status === 503 && r.headers.get("Retry-After") ? " (retry after " + r.headers.get("Retry-After") + " s)" : "");
      $("error").hidden = false;
    } else showResult(json);
  } catch (e) {
    $("error").textContent = "Request failed: " + e;
    $("error").hidden = false;
  } finally {
    running = false;
    $("generate").disabled = false;
    $("queue").textContent = "";
  }
}

for (const b of document.querySelectorAll(".mode")) {
  b.addEventListener("click", () => {
    mode = b.dataset.mode;
    for (const o of document.querySelectorAll(".mode")) o.classList.toggle("active", o === b);
    renderSizes();
  });
}
$("form").addEventListener("submit", generate);

const events = new EventSource("/v1/events");
events.addEventListener("memory", (e) => renderMemory(JSON.parse(e.data)));
events.addEventListener("queue", (e) => renderQueue(JSON.parse(e.data)));
events.addEventListener("progress", (e) => renderProgress(JSON.parse(e.data)));
events.addEventListener("preview", (e) => {
  const p = JSON.parse(e.data);
  if (p.client !== clientId) return;
  $("preview").src = "data:image/png;base64," + p.png;
  $("preview").hidden = false;
});
events.addEventListener("open", () => { document.body.dataset.events = "open"; });
loadSizes();
