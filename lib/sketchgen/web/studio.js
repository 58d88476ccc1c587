// The studio (issue 27): history with infinite scroll, favourites, compare, a download menu
// per sketch, variations and keyboard shortcuts. app.js hands in what it owns (the API call,
// opening a job, the refiner) through initStudio; everything here talks to v1/ only.

const $ = (selector) => document.querySelector(selector);
const FORMATS = [
  ["png-original", "PNG (white)", null],
  ["svg", "SVG (paths)", "svg"],
  ["png", "PNG (transparent)", "png"],
  ["psd", "PSD (layers)", "psd"],
  ["ora", "OpenRaster (layers)", "ora"],
];
const PAGE = 12;

const studio = {
  app: null, // { api, blobUrl, openJob, openRefiner, currentJob }
  cursor: undefined, // undefined: not loaded yet; null: no more pages
  loading: false,
  generation: 0, // bumped by each reset: a page asked for before it is dropped
  retryMs: 0, // the pause before a failed page is asked for again
  sentinel: null, // the IntersectionObserver on #studio-history-more
  jobs: new Map(), // job_id -> history summary (for lineage)
  stars: new Set(), // "job_id#index"
  selected: 0,
};

const key = (jobId, index) => `${jobId}#${index}`;

function el(tag, props = {}, ...children) {
  const element = Object.assign(document.createElement(tag), props);
  element.append(...children);
  return element;
}

function thumb(url, alt) {
  const img = el("img", { alt, loading: "lazy" });
  studio.app.blobUrl(url).then((src) => { img.src = src; }).catch(() => { img.alt = `${alt} (unavailable)`; });
  return img;
}

// --- history ---------------------------------------------------------------------------

function historyQuery() {
  const params = new URLSearchParams({ limit: String(PAGE) });
  const q = $("#history-search").value.trim();
  if (q) params.set("q", q);
  if (studio.cursor) params.set("cursor", studio.cursor);
  return `v1/jobs?${params}`;
}

/** The next page of history, appended. True when a page came; a failed page is asked for
 * again (with a growing pause) while its sentinel is near, since the observer will not fire
 * again for a sentinel that never left the screen. A reset while a page is in flight wins:
 * the stale page is dropped and the first page asked for afresh. */
async function loadHistoryPage() {
  if (studio.loading || studio.cursor === null) return false;
  const generation = studio.generation;
  studio.loading = true;
  let page = null;
  try {
    page = await studio.app.api(historyQuery());
  } catch (error) {
    if (generation === studio.generation) {
      $("#studio-error").hidden = false;
      $("#studio-error").textContent = error.message;
    }
  } finally {
    studio.loading = false;
  }
  if (generation !== studio.generation) return loadHistoryPage();
  if (page === null) {
    studio.retryMs = Math.min(2 * studio.retryMs || 500, 30000);
    setTimeout(() => { if (isNear($("#studio-history-more"))) loadHistoryPage(); }, studio.retryMs);
    return false;
  }
  studio.retryMs = 0;
  $("#studio-error").hidden = true;
  for (const job of page.jobs) {
    studio.jobs.set(job.job_id, job);
    for (const s of job.sketches) if (s.favourite) studio.stars.add(key(job.job_id, s.index));
    $("#studio-history-list").append(historyCard(job));
  }
  studio.cursor = page.next_cursor;
  $("#studio-history-end").hidden = studio.cursor !== null;
  if (studio.cursor) watchSentinel();
  return true;
}

/** Observed afresh, the sentinel is reported as it is at the next frame, shown or not: a
 * short page that leaves it on screen, or a scroll that brought it back before the browser
 * drew the new page, asks for the next one. An observer that keeps watching reports only a
 * change, and a sentinel shown, hidden and shown again between two frames is none. */
function watchSentinel() {
  const sentinel = $("#studio-history-more");
  studio.sentinel.unobserve(sentinel);
  studio.sentinel.observe(sentinel);
}

/** In view or within a screen's height below it: the sentinel's observer's margin. */
function isNear(element) {
  const box = element.getBoundingClientRect();
  return box.top < 2 * window.innerHeight && box.bottom >= 0;
}

function resetHistory() {
  studio.generation += 1;
  studio.cursor = undefined;
  $("#studio-history-list").replaceChildren();
  loadHistoryPage();
}

function historyCard(job) {
  const when = new Date(job.created_at).toLocaleString();
  const kind = job.parent ? ` · ${job.parent.kind} of ${job.parent.job_id.slice(0, 8)} #${job.parent.index + 1}` : "";
  const head = el("div", { className: "history-head" },
    el("strong", { textContent: `“${job.brief}”` }),
    el("span", { className: "muted", textContent: ` ${job.style_id} · ${job.status} · ${when}${kind}` }));
  const strip = el("div", { className: "history-thumbs" });
  for (const sketch of job.sketches) {
    if (!sketch.thumbnail_url) continue;
    const link = el("a", { href: `#job=${job.job_id}`, title: `Open sketch ${sketch.index + 1}` },
      thumb(sketch.thumbnail_url, `${job.brief} #${sketch.index + 1}`));
    link.addEventListener("click", (event) => { event.preventDefault(); studio.app.openJob(job.job_id); });
    strip.append(link);
  }
  const remove = el("button", { type: "button", textContent: "Delete", className: "delete-job" });
  remove.addEventListener("click", () => deleteJob(job.job_id, item));
  const item = el("li", { className: "history-job" }, head, strip, remove);
  item.dataset.jobId = job.job_id;
  return item;
}

async function deleteJob(jobId, item) {
  if (!window.confirm("Delete this job and all its files?")) return;
  await studio.app.api(`v1/jobs/${jobId}`, { method: "DELETE" });
  item.remove();
  studio.jobs.delete(jobId);
}

// --- favourites ------------------------------------------------------------------------

async function loadStars() {
  const { sketches } = await studio.app.api("v1/favourites?limit=100");
  studio.stars = new Set(sketches.map((s) => key(s.job_id, s.index)));
  return sketches;
}

async function showFavourites() {
  const sketches = await loadStars();
  $("#favourites-list").replaceChildren(...sketches.map((s) => {
    const link = el("a", { href: `#job=${s.job_id}` }, thumb(s.thumbnail_url, `${s.brief} #${s.index + 1}`),
      el("span", { textContent: `${s.brief} #${s.index + 1}` }));
    link.addEventListener("click", (event) => { event.preventDefault(); studio.app.openJob(s.job_id); });
    const item = el("li", { className: "favourite" }, link);
    item.dataset.jobId = s.job_id;
    item.dataset.index = s.index;
    return item;
  }));
  $("#favourites-empty").hidden = sketches.length > 0;
}

async function toggleFavourite(jobId, index) {
  const starred = studio.stars.has(key(jobId, index));
  await studio.app.api(`v1/jobs/${jobId}/sketches/${index}/favourite`, { method: starred ? "DELETE" : "PUT" });
  if (starred) studio.stars.delete(key(jobId, index));
  else studio.stars.add(key(jobId, index));
  const button = document.querySelector(`.sketch[data-index="${index}"] .favourite-toggle`);
  if (button) paintStar(button, !starred);
  if (!$("#favourites").hidden) showFavourites();
}

function paintStar(button, starred) {
  button.textContent = starred ? "★ Favourite" : "☆ Favourite";
  button.setAttribute("aria-pressed", String(starred));
}

// --- per-sketch tools (called by app.js for every finished sketch) -----------------------

export function sketchTools(jobId, index) {
  const star = el("button", { type: "button", className: "favourite-toggle" });
  paintStar(star, studio.stars.has(key(jobId, index)));
  star.addEventListener("click", () => toggleFavourite(jobId, index));
  const menu = el("details", { className: "download-menu" }, el("summary", { textContent: "Download ▾" }));
  for (const [name, label, format] of FORMATS) {
    const item = el("button", { type: "button", textContent: label });
    item.dataset.format = name;
    item.addEventListener("click", () => download(jobId, index, format));
    menu.append(item);
  }
  const vary = el("button", { type: "button", textContent: "Variations", className: "vary" });
  vary.addEventListener("click", () => makeVariations(jobId, index));
  const compare = el("button", { type: "button", textContent: "Compare", className: "compare" });
  compare.addEventListener("click", () => openCompare(jobId, index));
  return [star, menu, vary, compare];
}

async function download(jobId, index, format) {
  const url = format
    ? `v1/jobs/${jobId}/sketches/${index}/export?format=${format}`
    : `v1/jobs/${jobId}/files/sketch_${index}.png`;
  const names = { svg: "svg", png: "transparent.png", psd: "psd", ora: "ora" };
  const link = el("a", {
    href: await studio.app.blobUrl(url),
    download: `${jobId}_sketch_${index}.${format ? names[format] : "png"}`,
  });
  document.body.append(link);
  link.click();
  link.remove();
  document.querySelectorAll(".download-menu[open]").forEach((menu) => { menu.open = false; });
}

async function makeVariations(jobId, index) {
  let accepted;
  try {
    accepted = await studio.app.api(`v1/jobs/${jobId}/sketches/${index}/variations`, {
      method: "POST",
      headers: { "Idempotency-Key": crypto.randomUUID() },
      body: { num_images: 3 },
    });
  } catch (error) { // refused (a limit, a gone job): say so where the studio speaks
    $("#studio-error").hidden = false;
    $("#studio-error").textContent = `No variations: ${error.message}`;
    return;
  }
  resetHistory();
  await studio.app.openJob(accepted.job_id);
}

// --- compare ---------------------------------------------------------------------------

/** The sketch beside its parent and the refinements and variations made of it (by id). */
async function openCompare(jobId, index) {
  // Lineage needs every page; a page that fails ends the walk (compare shows what came).
  while (studio.cursor !== null && !studio.loading && (await loadHistoryPage()));
  const panes = [comparePane("This sketch", `v1/jobs/${jobId}/sketches/${index}/thumbnail`, jobId)];
  const job = studio.jobs.get(jobId);
  if (job && job.parent) {
    const p = job.parent;
    panes.unshift(comparePane(`Parent (${p.kind})`, `v1/jobs/${p.job_id}/sketches/${p.index}/thumbnail`, p.job_id));
  }
  for (const child of studio.jobs.values()) {
    if (!child.parent || child.parent.job_id !== jobId || child.parent.index !== index) continue;
    for (const s of child.sketches) {
      if (!s.thumbnail_url) continue;
      const label = child.parent.kind === "refinement" ? `Refinement “${child.parent.instruction}”` : "Variation";
      panes.push(comparePane(`${label} #${s.index + 1}`, s.thumbnail_url, child.job_id));
    }
  }
  $("#compare-panes").replaceChildren(...panes);
  $("#compare").showModal();
}

function comparePane(label, url, jobId) {
  const pane = el("figure", { className: "compare-pane" }, thumb(url, label), el("figcaption", { textContent: label }));
  pane.dataset.jobId = jobId;
  return pane;
}

// --- keyboard --------------------------------------------------------------------------

function cards() {
  return [...document.querySelectorAll("#grid .sketch[data-status=ok]")];
}

function select(position) {
  const all = cards();
  if (!all.length) return null;
  studio.selected = (position + all.length) % all.length;
  all.forEach((card, i) => card.classList.toggle("selected", i === studio.selected));
  all[studio.selected].scrollIntoView({ block: "nearest" });
  return all[studio.selected];
}

function onKey(event) {
  const typing = event.target.closest && event.target.closest("input, textarea, select, [contenteditable]");
  if (typing || event.ctrlKey || event.metaKey || event.altKey || document.querySelector("dialog[open]")) return;
  if (event.key === "?") { $("#shortcuts").showModal(); return; }
  const job = studio.app.currentJob();
  if (!job) return;
  const moves = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 };
  if (event.key in moves) {
    const already = document.querySelector("#grid .sketch.selected");
    select(already ? studio.selected + moves[event.key] : 0);
    event.preventDefault();
    return;
  }
  const card = document.querySelector("#grid .sketch.selected") || select(studio.selected);
  if (!card) return;
  const index = Number(card.dataset.index);
  const actions = {
    f: () => toggleFavourite(job.job_id, index),
    d: () => { const menu = card.querySelector(".download-menu"); menu.open = true; menu.querySelector("button").focus(); },
    r: () => studio.app.openRefiner(index),
    v: () => makeVariations(job.job_id, index),
  };
  if (actions[event.key]) {
    event.preventDefault();
    actions[event.key]();
  }
}

// --- start -----------------------------------------------------------------------------

function showTab(name) {
  for (const tab of ["studio-history", "favourites"]) {
    $(`#${tab}`).hidden = tab !== name;
    $(`#tab-${tab}`).setAttribute("aria-selected", String(tab === name));
  }
  if (name === "favourites") showFavourites();
}

export async function initStudio(app) {
  studio.app = app;
  $("#studio").hidden = false;
  $("#tab-studio-history").addEventListener("click", () => showTab("studio-history"));
  $("#tab-favourites").addEventListener("click", () => showTab("favourites"));
  let typing;
  $("#history-search").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(resetHistory, 300);
  });
  // The next page is asked for once the end comes within a screen's height below the view
  // (isNear), before the reader reaches it: on a loaded machine, a scroll to the very end had
  // the end pushed out of view again (by thumbnails growing as they loaded) before any frame
  // reported it shown, and the next page never came.
  studio.sentinel = new IntersectionObserver((entries) => {
    if (entries.some((entry) => entry.isIntersecting)) loadHistoryPage();
  }, { rootMargin: "0px 0px 100% 0px" });
  studio.sentinel.observe($("#studio-history-more"));
  document.addEventListener("keydown", onKey);
  await loadStars().catch(() => null);
  loadHistoryPage();
}

/** A job was made or changed: the history's first page is shown afresh. */
export function historyChanged() {
  if (studio.app) resetHistory();
}
