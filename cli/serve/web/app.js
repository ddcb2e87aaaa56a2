// app.js — the page of `sd serve`: a form posted to /sdapi/v1/txt2img, the job's progress and preview polled from
// /sdapi/v1/progress while it runs, and a gallery of the results with their settings and a download link.
"use strict";

const $ = (id) => document.getElementById(id);
let apiKey = sessionStorage.getItem("sd-api-key") || "";
let taskId = null;
let pollTimer = null;

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  if (apiKey) h["Authorization"] = "Bearer " + apiKey;
  return h;
}

// Fetches JSON; a 401 without a Basic challenge asks for the API key (--api-key), once.
async function api(path, body) {
  const opts = { method: body === undefined ? "GET" : "POST", headers: headers(body !== undefined), credentials: "same-origin" };
  if (body !== undefined) opts.body = JSON.stringify(body);
  const res = await fetch(path, opts);
  let data = null;
  try { data = await res.json(); } catch (e) { data = null; }
  if (res.status === 401) {
    $("keyrow").hidden = false;
    throw new Error("This server needs an API key: enter it above and try again.");
  }
  if (!res.ok) {
    const msg = data && (data.detail || (data.error && data.error.message)) || res.statusText;
    throw new Error(res.status + ": " + msg);
  }
  return data;
}

function setStatus(text, fraction) {
  $("status").textContent = text;
  $("bar").style.width = Math.round(Math.max(0, Math.min(1, fraction)) * 100) + "%";
}

async function loadChoices() {
  try {
    const [samplers, options, models] = await Promise.all([api("/sdapi/v1/samplers"), api("/sdapi/v1/options"), api("/sdapi/v1/sd-models")]);
    const sel = $("sampler");
    sel.textContent = "";
    for (const s of samplers) {
      const o = document.createElement("option");
      o.value = o.textContent = s.name;
      sel.appendChild(o);
    }
    const current = models.find((m) => m.title === options.sd_model_checkpoint);
    $("model").textContent = "model: " + options.sd_model_checkpoint;
    if (current && current.default_width) { // the loaded model's own defaults (not A1111's 512x512)
      $("width").value = current.default_width;
      $("height").value = current.default_height;
      $("steps").value = current.default_steps;
      $("cfg").value = current.default_cfg;
      if (current.default_sampler) sel.value = current.default_sampler;
    } else {
      sel.value = "Euler a";
    }
  } catch (e) {
    $("error").textContent = e.message;
  }
}

function b64ToBlob(b64) {
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new Blob([bytes], { type: "image/png" });
}

function addToGallery(b64, infotext, seed) {
  const card = document.createElement("figure");
  card.className = "card";
  const url = URL.createObjectURL(b64ToBlob(b64));
  const img = document.createElement("img");
  img.src = url;
  img.alt = infotext.split("\n")[0];
  const pre = document.createElement("pre");
  pre.textContent = infotext;
  const a = document.createElement("a");
  a.href = url;
  a.download = "sd-" + seed + ".png";
  a.textContent = "Download";
  a.className = "download";
  card.append(img, pre, a);
  $("gallery").prepend(card);
}

async function poll() {
  if (!taskId) return;
  try {
    const p = await api("/sdapi/v1/progress?skip_current_image=false&id_task=" + encodeURIComponent(taskId));
    if (!taskId) return;
    if (p.current_task === taskId) {
      const st = p.state;
      const eta = p.eta_relative > 0 ? ", about " + Math.ceil(p.eta_relative) + " s left" : "";
      const img = st.job_count > 1 ? "image " + (st.job_no + 1) + "/" + st.job_count + ", " : "";
      setStatus("Rendering: " + img + "step " + st.sampling_step + "/" + st.sampling_steps + eta, p.progress);
      if (p.current_image) {
        const pv = $("preview");
        pv.src = "data:image/png;base64," + p.current_image;
        pv.hidden = false;
        pv.dataset.previews = String(Number(pv.dataset.previews) + 1);
      }
    } else if (p.queue && p.queue.position !== null) {
      setStatus("Waiting: " + p.queue.position + " ahead in the queue.", 0);
    }
  } catch (e) { /* the next poll tries again */ }
  if (taskId) pollTimer = setTimeout(poll, 300);
}

async function generate(ev) {
  ev.preventDefault();
  $("error").textContent = "";
  if (!$("apikey").parentElement.hidden && $("apikey").value) {
    apiKey = $("apikey").value;
    sessionStorage.setItem("sd-api-key", apiKey);
  }
  const num = (id) => Number($(id).value);
  const body = {
    prompt: $("prompt").value,
    negative_prompt: $("negative").value,
    width: num("width"), height: num("height"), steps: num("steps"), cfg_scale: num("cfg"),
    sampler_name: $("sampler").value, seed: num("seed"), n_iter: num("count"), batch_size: 1,
    force_task_id: "page-" + Date.now() + "-" + Math.random().toString(36).slice(2, 10),
  };
  taskId = body.force_task_id;
  $("generate").disabled = true;
  $("interrupt").disabled = false;
  $("preview").dataset.previews = "0";
  setStatus("Sent.", 0);
  pollTimer = setTimeout(poll, 200);
  try {
    const r = await api("/sdapi/v1/txt2img", body);
    const info = JSON.parse(r.info);
    r.images.forEach((b64, i) => addToGallery(b64, info.infotexts[i], info.all_seeds[i]));
    setStatus(info.interrupted ? "Interrupted: " + r.images.length + " image(s)." : "Done: " + r.images.length + " image(s).", 1);
  } catch (e) {
    $("error").textContent = e.message;
    setStatus("Idle.", 0);
  } finally {
    taskId = null;
    clearTimeout(pollTimer);
    $("generate").disabled = false;
    $("interrupt").disabled = true;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("form").addEventListener("submit", generate);
  $("interrupt").addEventListener("click", () => api("/sdapi/v1/interrupt", {}).catch((e) => { $("error").textContent = e.message; }));
  loadChoices();
});
