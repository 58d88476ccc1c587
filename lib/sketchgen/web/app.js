// sketchgen web page. Plain ES module, no build step.
//
// The page talks only to the public HTTP API (v1/…), by paths relative to the page: it works
// at a host's root (sketchgen serve, make dev) and under a function's prefix
// (https://REGION-PROJECT.cloudfunctions.net/sketchgen-generate/) alike. Progress comes from the job's
// Server-Sent Events, read with fetch because EventSource cannot send an Authorization
// header; on a dropped connection it resumes with Last-Event-ID, so no event is missed.

import { historyChanged, initStudio, sketchTools } from "./studio.js";

const $ = (selector) => document.querySelector(selector);
const TERMINAL_JOB = new Set(["done", "partial", "failed", "cancelled"]);
const MAX_LINEAGE = 6;

const state = {
  auth: null, // { token(): Promise<string>, label: string }
  job: null, // the job view last shown (GET /v1/jobs/{id})
  stream: null, // AbortController of the events stream being read
  urls: [], // object URLs to release when the grid is replaced
  history: [],
  styles: null, // Map of style id -> GET /v1/styles/{id}
};

// --- auth ------------------------------------------------------------------------------

async function devAuth(config) {
  // The local owner (bootstrap.LOCAL_OWNER): the CLI's styles are this user's too.
  let uid = localStorage.getItem("sketchgen.devUid") || config.devUid || "local";
  const account = $("#account");
  const render = () => {
    account.replaceChildren(
      text("span", `local dev user: ${uid}`),
      button("Switch user", () => {
        const next = prompt("Dev user id (letters, digits, - and _)", uid);
        if (next && /^[A-Za-z0-9_-]{1,64}$/.test(next)) {
          localStorage.setItem("sketchgen.devUid", next);
          location.reload();
        }
      }),
    );
  };
  render();
  return { token: async () => `dev:${uid}`, label: uid };
}

async function firebaseAuth(config) {
  // The Firebase JS SDK, bundled from npm by `make web` and served with the page.
  const sdk = await import("./firebase-sdk.js");
  const app = sdk.initializeApp(config.firebase);
  const client = sdk.getAuth(app);
  if (config.authEmulator) sdk.connectAuthEmulator(client, config.authEmulator, { disableWarnings: true });
  const user = await new Promise((resolve) => {
    const stop = sdk.onAuthStateChanged(client, (u) => { stop(); resolve(u); });
  });
  if (!user) {
    showSignIn(sdk, client);
    throw new SignInNeeded();
  }
  $("#account").replaceChildren(
    text("span", user.email || user.displayName || "signed in"),
    button("Sign out", async () => { await sdk.signOut(client); location.reload(); }),
  );
  // getIdToken refreshes the token itself when it is close to expiry.
  return { token: () => user.getIdToken(), label: user.uid };
}

/** Signed-out visitors get a sign-in view, not a form that cannot work. */
function showSignIn(sdk, client) {
  $("#app").hidden = true;
  $("#sign-in").hidden = false;
  const error = $("#sign-in-error");
  const attempt = (signIn) => async (event) => {
    event.preventDefault();
    error.hidden = true;
    const email = $("#email").value.trim();
    const password = $("#password").value;
    try {
      await signIn(email, password);
      location.reload();
    } catch (failure) {
      error.textContent = signInMessage(failure);
      error.hidden = false;
    }
  };
  $("#sign-in-form").addEventListener(
    "submit", attempt((email, password) => sdk.signInWithEmailAndPassword(client, email, password)));
  $("#sign-up").addEventListener(
    "click", attempt((email, password) => sdk.createUserWithEmailAndPassword(client, email, password)));
  $("#sign-in-google").addEventListener(
    "click", attempt(() => sdk.signInWithPopup(client, new sdk.GoogleAuthProvider())));
  document.body.dataset.ready = "signed-out";
}

function signInMessage(failure) {
  const messages = {
    "auth/invalid-email": "That email address does not look right.",
    "auth/missing-password": "Type a password.",
    "auth/weak-password": "Use a password of at least 6 characters.",
    "auth/email-already-in-use": "There is already an account with that email: sign in instead.",
    "auth/invalid-credential": "Wrong email or password.",
    "auth/user-not-found": "No account with that email: create one.",
    "auth/wrong-password": "Wrong email or password.",
    "auth/popup-closed-by-user": "The sign-in window was closed.",
  };
  return messages[failure.code] || `Could not sign in: ${failure.message}`;
}

class SignInNeeded extends Error {}

// --- API -------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || `request failed (${status})`);
    this.status = status;
    this.field = error.field || null;
  }
}

async function authHeaders(extra = {}) {
  return { Authorization: `Bearer ${await state.auth.token()}`, ...extra };
}

async function api(path, { method = "GET", body, headers = {} } = {}) {
  const init = { method, headers: await authHeaders(headers) };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  const payload = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}

/** An image or file URL as a local blob URL (same-origin files need the token). */
async function blobUrl(url) {
  const sameOrigin = new URL(url, location.href).origin === location.origin;
  const response = await fetch(url, sameOrigin ? { headers: await authHeaders() } : {});
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  const objectUrl = URL.createObjectURL(await response.blob());
  state.urls.push(objectUrl);
  return objectUrl;
}

// --- styles ----------------------------------------------------------------------------

async function loadStyles(selected = null) {
  const { styles } = await api("v1/styles");
  const details = await Promise.all(styles.map((s) => api(`v1/styles/${encodeURIComponent(s.id)}`)));
  const chosen = selected || $("input[name=style_id]:checked")?.value || details[0]?.id;
  state.styles = new Map(details.map((style) => [style.id, style]));
  const box = $("#styles");
  box.replaceChildren(
    ...details.map((style) => {
      const label = document.createElement("label");
      label.className = "style-card";
      label.dataset.owned = String(style.owned);
      const radio = Object.assign(document.createElement("input"), {
        type: "radio", name: "style_id", value: style.id, checked: style.id === chosen,
      });
      radio.addEventListener("change", () => showOwnStyle(style.id));
      const thumbs = document.createElement("span");
      thumbs.className = "thumbs";
      for (const ref of style.references.filter((r) => !r.do_not_use).slice(0, 3)) {
        thumbs.append(thumbnail(style, ref));
      }
      const words = document.createElement("span");
      words.append(text("strong", style.name), text("small", style.description));
      label.append(radio, thumbs, words);
      return label;
    }),
  );
  showOwnStyle(chosen);
}

/** A reference thumbnail: built-in ones are public; a user's own need the token. */
function thumbnail(style, ref) {
  const url = `v1/styles/${encodeURIComponent(style.id)}/references/${ref.sha256}.png`;
  const img = Object.assign(document.createElement("img"), {
    alt: ref.description || ref.tags.join(", ") || `${style.name} reference`,
    loading: "lazy",
  });
  img.dataset.sha256 = ref.sha256;
  if (!style.owned) {
    img.src = url;
    return img;
  }
  authHeaders()
    .then((headers) => fetch(url, { headers }))
    .then((response) => (response.ok ? response.blob() : Promise.reject(new Error(response.status))))
    .then((blob) => { img.src = URL.createObjectURL(blob); })
    .catch(() => { img.alt = "thumbnail unavailable"; });
  return img;
}

// --- styles of your own -----------------------------------------------------------------

function showOwnStyle(styleId) {
  const style = state.styles && state.styles.get(styleId);
  const panel = $("#own-style");
  if (!style || !style.owned) {
    panel.hidden = true;
    return;
  }
  panel.hidden = false;
  panel.dataset.styleId = style.id;
  $("#own-style-name").textContent = style.name;
  $("#own-references").replaceChildren(
    ...style.references.map((ref) => {
      const item = document.createElement("li");
      item.className = "own-reference";
      item.dataset.sha256 = ref.sha256;
      item.dataset.doNotUse = String(ref.do_not_use);
      const path = `v1/styles/${encodeURIComponent(style.id)}/references/${ref.sha256}`;
      const ban = button(ref.do_not_use ? "Use again" : "Don't use", () =>
        changeReference(style.id, () => api(path, { method: "PATCH", body: { do_not_use: !ref.do_not_use } })));
      ban.className = "ban";
      const remove = button("Remove", () => changeReference(style.id, () => api(path, { method: "DELETE" })));
      remove.className = "remove";
      item.append(thumbnail(style, ref), text("small", ref.tags.join(", ") || "no tags"), ban, remove);
      return item;
    }),
  );
}

async function changeReference(styleId, call) {
  showStyleError("");
  try {
    await call();
    await loadStyles(styleId);
  } catch (error) {
    showStyleError(error.message);
  }
}

function showStyleError(message) {
  const box = $("#style-error");
  box.textContent = message;
  box.hidden = !message;
}

async function createStyle(event) {
  event.preventDefault();
  showStyleError("");
  const name = $("#style-name").value.trim();
  if (!name) {
    showStyleError("Give the style a name.");
    return;
  }
  const rules = $("#style-rules").value.split("\n").map((r) => r.trim()).filter(Boolean);
  try {
    const created = await api("v1/styles", { method: "POST", body: { name, rules } });
    $("#new-style-form").reset();
    await loadStyles(created.style_id);
  } catch (error) {
    showStyleError(error.field ? `${error.field}: ${error.message}` : error.message);
  }
}

async function uploadReferences(files) {
  const styleId = $("#own-style").dataset.styleId;
  if (!styleId || !files.length) return;
  showStyleError("");
  const problems = [];
  for (const file of files) {
    const form = new FormData();
    form.append("image", file, file.name);
    form.append("tags", $("#reference-tags").value);
    form.append("description", "");
    // No Content-Type: the browser writes the multipart boundary itself.
    const response = await fetch(`v1/styles/${encodeURIComponent(styleId)}/references`, {
      method: "POST", headers: await authHeaders(), body: form,
    });
    if (!response.ok) {
      const error = new ApiError(response.status, await response.json().catch(() => null));
      problems.push(`${file.name}: ${error.message}`);
    }
  }
  $("#reference-files").value = "";
  await loadStyles(styleId);
  showStyleError(problems.join(" · "));
}

function wireStyleEditor() {
  $("#new-style-form").addEventListener("submit", createStyle);
  $("#reference-files").addEventListener("change", (event) => uploadReferences([...event.target.files]));
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    uploadReferences([...event.dataTransfer.files]);
  });
}

// --- usage: what is left today, and what the plan includes --------------------------------

async function loadUsage() {
  let usage;
  try {
    usage = await api("v1/usage");
  } catch {
    return; // spend control off, or the API is down: the form still works
  }
  const left = Math.max(0, usage.images_limit - usage.images_used);
  $("#usage").textContent =
    `${left} of ${usage.images_limit} images left today · ` +
    `${usage.active_jobs}/${usage.active_jobs_limit} jobs running · plan ${usage.plan}`;
  $("#usage").dataset.left = String(left);
  // Grey out what the plan does not include (null: everything).
  const allow = (select, allowed, valueOf) => {
    for (const option of select.options) {
      const value = valueOf(option);
      option.disabled = Boolean(allowed && value && !allowed.includes(value));
      option.title = option.disabled ? `not in the ${usage.plan} plan` : "";
    }
    if (select.selectedOptions[0] && select.selectedOptions[0].disabled) {
      const first = [...select.options].find((o) => !o.disabled);
      if (first) select.value = first.value;
    }
  };
  allow($("#image_size"), usage.image_sizes, (o) => o.value);
  allow($("#model"), usage.models, (o) => o.dataset.modelId);
}

// --- jobs ------------------------------------------------------------------------------

async function submitJob(event) {
  event.preventDefault();
  const form = $("#brief-form");
  const brief = $("#brief").value.trim();
  const style = form.querySelector("input[name=style_id]:checked");
  if (!brief) return showFormError("Type a brief first, e.g. “playful golf mascot”.", "#brief");
  if (!style) return showFormError("Pick a style.");
  showFormError(null);
  const submit = $("#generate");
  submit.disabled = true;
  try {
    const accepted = await api("v1/jobs", {
      method: "POST",
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: {
        brief,
        style_id: style.value,
        num_images: Number($("#num_images").value),
        image_size: $("#image_size").value,
        aspect_ratio: $("#aspect_ratio").value,
        ...($("#model").value ? { model: $("#model").value } : {}),
      },
    });
    loadUsage();
    remember(accepted.job_id, brief);
    await openJob(accepted.job_id, accepted.events_url);
  } catch (error) {
    showFormError(error.message, error.field && `#${error.field}`);
  } finally {
    submit.disabled = false;
  }
}

function showFormError(message, focus) {
  const box = $("#form-error");
  box.hidden = !message;
  box.textContent = message || "";
  if (focus && document.querySelector(focus)) document.querySelector(focus).focus();
}

async function openJob(jobId, eventsUrl) {
  if (state.stream) state.stream.abort();
  for (const url of state.urls.splice(0)) URL.revokeObjectURL(url);
  const job = await api(`v1/jobs/${jobId}`);
  state.job = job;
  renderJob(job);
  showLineage(job);
  history.replaceState(null, "", `#job=${jobId}`);
  if (TERMINAL_JOB.has(job.status)) {
    // Nothing more will happen: draw what is there without opening a stream.
    await Promise.all(job.sketches.map(updateSketch));
    finish({ status: job.status, metadata_url: job.metadata_url });
    return;
  }
  followEvents(eventsUrl || `v1/jobs/${jobId}/events`, job.job_id);
}

function renderJob(job) {
  $("#job").hidden = false;
  $("#job-title").textContent = `“${job.request.brief}”`;
  setStatus(job.status);
  $("#job-model").hidden = true;
  $("#download-zip").disabled = true;
  $("#cancel").disabled = TERMINAL_JOB.has(job.status);
  const [w, h] = job.request.aspect_ratio.split(":").map(Number);
  const grid = $("#grid");
  grid.style.setProperty("--ratio", `${w} / ${h}`);
  grid.replaceChildren(
    ...job.sketches.map((sketch) => {
      const card = document.createElement("li");
      card.className = "sketch";
      card.dataset.index = sketch.index;
      card.dataset.status = "pending";
      const frame = document.createElement("div");
      frame.className = "frame";
      frame.textContent = "drawing…";
      const v = sketch.variation;
      const caption = text("div", `#${sketch.index + 1} · ${v.layout.replaceAll("_", " ")} · ${v.exaggeration}`);
      caption.className = "caption";
      const tools = document.createElement("div");
      tools.className = "tools";
      card.append(frame, caption, tools);
      return card;
    }),
  );
}

async function updateSketch(sketch) {
  const card = document.querySelector(`.sketch[data-index="${sketch.index}"]`);
  if (!card || card.dataset.settled || !["ok", "failed", "cancelled"].includes(sketch.status)) return;
  card.dataset.settled = "true"; // the event and the final job view may both report it
  if (sketch.model_used === OFFLINE_MODEL_ID) $("#job-model").hidden = false;
  const frame = card.querySelector(".frame");
  const tools = card.querySelector(".tools");
  if (sketch.status !== "ok") {
    card.dataset.status = sketch.status;
    frame.replaceChildren(
      text("strong", sketch.status === "cancelled" ? "Cancelled" : "This sketch failed"),
      text("p", failureText(sketch)),
    );
    frame.querySelector("p").className = "reason";
    return;
  }
  let src;
  try {
    src = await blobUrl(sketch.url);
  } catch {
    src = sketch.url; // a signed URL the browser may fetch itself
  }
  card.dataset.status = "ok";
  const img = Object.assign(document.createElement("img"), {
    src, alt: `Sketch ${sketch.index + 1}`,
  });
  img.addEventListener("click", () => openViewer(src, img.alt));
  frame.replaceChildren(img);
  const download = Object.assign(document.createElement("a"), {
    href: src, download: `${state.job.job_id}_sketch_${sketch.index}.png`, textContent: "Download",
    className: "button",
  });
  tools.replaceChildren(
    button("Open", () => openViewer(src, img.alt)),
    download,
    button("Refine", () => openRefiner(sketch.index)),
    ...sketchTools(state.job.job_id, sketch.index),
  );
}

// What the offline sketch model reports as the model that drew (sketchgen.generate.models).
const OFFLINE_MODEL_ID = "offline-sketch-v1";

const BLOCKED = new Set(["IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT", "PROHIBITED_CONTENT", "SAFETY"]);

/** What to tell a designer about a sketch that did not come back. */
function failureText(sketch) {
  if (sketch.status === "cancelled") return "Cancelled before it started.";
  const reason = sketch.finish_reason;
  const detail = sketch.error || "the model gave no image";
  const withReason = reason && !detail.includes(reason) ? `${detail} (${reason})` : detail;
  if (BLOCKED.has(reason)) {
    return `The model's safety filter blocked this one: ${withReason}. Rewording the brief usually helps.`;
  }
  return withReason;
}

function setStatus(status) {
  const badge = $("#job-status");
  badge.textContent = status;
  badge.dataset.status = status;
}

function finish(done) {
  historyChanged();
  setStatus(done.status);
  loadUsage(); // refunds and the freed job slot
  $("#cancel").disabled = true;
  $("#download-zip").disabled = !done.metadata_url;
}

/** Read the job's SSE stream with fetch, resuming with Last-Event-ID until `done`. */
async function followEvents(url, jobId) {
  const controller = new AbortController();
  state.stream = controller;
  let lastId = "0";
  let delay = 500;
  while (!controller.signal.aborted) {
    try {
      const response = await fetch(url, {
        headers: await authHeaders({ "Last-Event-ID": lastId, Accept: "text/event-stream" }),
        signal: controller.signal,
      });
      if (response.status === 204) return; // nothing missed and the job is over
      if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
      setStatus("running");
      for await (const event of parseEvents(response.body)) {
        delay = 500;
        if (event.id) lastId = event.id;
        const data = JSON.parse(event.data);
        if (event.event === "sketch") updateSketch(data);
        if (event.event === "done") {
          // The stream carries URLs that may have expired by now; the job view is fresh.
          const job = await api(`v1/jobs/${jobId}`);
          state.job = job;
          await Promise.all(job.sketches.map(updateSketch));
          finish(data);
          return;
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error instanceof ApiError && error.status < 500 && error.status !== 429) {
        setStatus(`error: ${error.message}`);
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}

/** Server-Sent Events from a byte stream: yields {id, event, data} per blank-line block. */
async function* parseEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replaceAll("\r\n", "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = { id: null, event: "message", data: "" };
      for (const line of block.split("\n")) {
        if (!line || line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        const val = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "data") event.data += (event.data ? "\n" : "") + val;
        else if (field === "id") event.id = val;
        else if (field === "event") event.event = val;
      }
      if (event.data) yield event;
    }
  }
}

async function cancelJob() {
  if (!state.job) return;
  $("#cancel").disabled = true;
  try {
    const job = await api(`v1/jobs/${state.job.job_id}/cancel`, { method: "POST" });
    setStatus(job.status);
  } catch (error) {
    setStatus(`error: ${error.message}`);
  }
}

async function downloadZip() {
  const button = $("#download-zip");
  button.disabled = true;
  try {
    const link = Object.assign(document.createElement("a"), {
      href: await blobUrl(`v1/jobs/${state.job.job_id}/archive.zip`),
      download: `${state.job.job_id}.zip`,
    });
    document.body.append(link);
    link.click();
    link.remove();
  } catch (error) {
    setStatus(`error: ${error.message}`);
  } finally {
    button.disabled = false;
  }
}

// --- refinement ------------------------------------------------------------------------

function openRefiner(index) {
  $("#refine-index").textContent = `#${index + 1}`;
  $("#refine-error").hidden = true;
  $("#instruction").value = "";
  const dialog = $("#refiner");
  dialog.dataset.index = index;
  dialog.showModal();
}

async function submitRefinement(event) {
  if (event.submitter && event.submitter.value !== "refine") return;
  event.preventDefault();
  const instruction = $("#instruction").value.trim();
  const errorBox = $("#refine-error");
  if (!instruction) {
    errorBox.hidden = false;
    errorBox.textContent = "Say what should change, e.g. “more exaggerated”.";
    return;
  }
  const index = Number($("#refiner").dataset.index);
  const parent = state.job;
  try {
    const accepted = await api(`v1/jobs/${parent.job_id}/sketches/${index}/refine`, {
      method: "POST",
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { instruction },
    });
    $("#refiner").close();
    remember(accepted.job_id, `${parent.request.brief} — ${instruction}`);
    await openJob(accepted.job_id, accepted.events_url);
  } catch (error) {
    errorBox.hidden = false;
    errorBox.textContent = error.message;
  }
}

/** "refined from …" back to the original job, each step a link. */
async function showLineage(job) {
  const box = $("#job-lineage");
  box.replaceChildren();
  box.hidden = !job.parent;
  let current = job;
  for (let depth = 0; current.parent && depth < MAX_LINEAGE; depth += 1) {
    const { job_id: parentId, index, instruction } = current.parent;
    const link = text("a", `job ${parentId} sketch #${index + 1}`);
    link.addEventListener("click", () => openJob(parentId));
    box.append(depth ? " ← " : "Refined from ", link, instruction ? ` (“${instruction}”)` : "");
    try {
      current = await api(`v1/jobs/${parentId}`);
    } catch {
      break;
    }
  }
}

// --- small helpers ---------------------------------------------------------------------

function text(tag, content) {
  const element = document.createElement(tag);
  element.textContent = content;
  return element;
}

function button(label, onClick) {
  const element = text("button", label);
  element.type = "button";
  element.addEventListener("click", onClick);
  return element;
}

function openViewer(src, alt) {
  Object.assign($("#viewer-image"), { src, alt });
  $("#viewer").showModal();
}

function remember(jobId, title) {
  state.history.unshift({ jobId, title });
  const list = $("#history-list");
  list.replaceChildren(
    ...state.history.map((entry) => {
      const item = document.createElement("li");
      const link = text("a", entry.title);
      link.addEventListener("click", () => openJob(entry.jobId));
      item.append(link);
      return item;
    }),
  );
  $("#history").hidden = false;
}

// --- start -----------------------------------------------------------------------------

async function main() {
  const config = await (await fetch("config.json")).json();
  try {
    state.auth = config.auth === "dev" ? await devAuth(config) : await firebaseAuth(config);
  } catch (error) {
    if (error instanceof SignInNeeded) return;
    throw error;
  }
  $("#brief-form").addEventListener("submit", submitJob);
  $("#refine-form").addEventListener("submit", submitRefinement);
  $("#cancel").addEventListener("click", cancelJob);
  $("#download-zip").addEventListener("click", downloadZip);
  loadUsage();
  wireStyleEditor();
  initStudio({ api, blobUrl, openJob, openRefiner, currentJob: () => state.job });
  try {
    await loadStyles();
  } catch (error) {
    $("#styles").replaceChildren(text("p", `Could not load styles: ${error.message}`));
  }
  const linked = /^#job=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (linked) openJob(linked[1]).catch((error) => showFormError(error.message));
  document.body.dataset.ready = "true";
}

main();
