// The uploader page: a thin user of the diffcopy-web package (its
// `download` module, which has downloadFile besides everything else).
// Two modes: "Upload" (uploadFile, or uploadFiles for a folder picked or
// dropped) and "Update a local copy" (downloadFile into a file the user
// picks or drops, where the browser can write in place; elsewhere a plain
// link to the whole file).
import init, { downloadFile, supportsInPlaceDownload, uploadFile, uploadFiles, version } from "./pkg/download/diffcopy_web.js";

const $ = (id) => document.getElementById(id);
// Progress rows; protocol v2's "searching" and API v1's "comparing" share one.
const PHASES = ["hashing", "comparing", "uploading", "committing"];
// A download's phases in the same rows: receiving where uploading is, saving where committing is.
const ROW = { searching: "comparing", receiving: "uploading", saving: "committing" };

let file = null;
// A folder to upload instead: { name, entries: [{ file, path }] }.
let folder = null;
// "upload" or "update"; in "update", the local copy's FileSystemFileHandle.
let mode = "upload";
let localHandle = null;
let pathEdited = false;
let controller = null;

// A link from an application: #token=...&path=... (a fragment never
// reaches the server, so the token is in no log). The token then replaces
// the field, and a path is fixed. Both leave the address bar at once, so
// the token is not kept in the history or shared with the page's URL.
const linked = new URLSearchParams(location.hash.slice(1));
const linkedToken = linked.get("token") || null;
const linkedPath = linked.get("path") || null;
if (linkedToken || linkedPath) history.replaceState(null, "", location.pathname + location.search);
if (linkedToken) $("token-field").hidden = true;
if (linkedPath) {
  $("path").value = linkedPath;
  $("path").readOnly = true;
  pathEdited = true;
}

/** Bytes in binary units with three significant digits: "12.0 MiB", "1.00 GiB". */
export function formatBytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  if (i === 0) return `${Math.round(n)} B`;
  return `${n.toFixed(n >= 100 ? 0 : n >= 10 ? 1 : 2)} ${units[i]}`;
}

function formatSeconds(s) {
  if (!Number.isFinite(s)) return "";
  if (s < 1) return "<1 s";
  if (s < 60) return `${Math.round(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

// --- choosing the file ------------------------------------------------------
function choose(picked) {
  if (!picked) return;
  file = picked;
  folder = null;
  $("path-label").textContent = LABELS.upload.path;
  $("file-info").textContent = `${file.name} · ${formatBytes(file.size)}`;
  $("drop-text").innerHTML = "<strong>Change file</strong> or drop another";
  if (!linkedPath && (!pathEdited || !$("path").value)) $("path").value = file.name;
  $("upload").disabled = mode !== "upload";
  hide($("summary"));
  hide($("error"));
}

$("file").addEventListener("change", () => choose($("file").files[0]));

/** A folder's files, as `uploadFiles` takes them: each path starts with the folder's name. */
function chooseFolder(name, entries) {
  if (!entries.length) return;
  folder = { name, entries };
  file = null;
  const bytes = entries.reduce((sum, e) => sum + e.file.size, 0);
  $("file-info").textContent = `${name}/ · ${entries.length} file${entries.length > 1 ? "s" : ""} · ${formatBytes(bytes)}`;
  $("drop-text").innerHTML = "<strong>Change</strong> or drop another file or folder";
  $("path-label").textContent = "Into the server's folder";
  if (!linkedPath && !pathEdited) $("path").value = "";
  $("path").placeholder = "(the top) or dir/";
  $("upload").disabled = mode !== "upload";
  hide($("summary"));
  hide($("error"));
}

$("pick-folder").addEventListener("click", () => $("folder").click());
$("folder").addEventListener("change", () => {
  const picked = [...$("folder").files];
  const name = picked[0]?.webkitRelativePath.split("/")[0] ?? "folder";
  chooseFolder(name, picked.map((f) => ({ file: f, path: f.webkitRelativePath })));
});

/** Every file below a dropped directory entry, with its path from the entry's parent. */
async function filesBelow(entry, path, out) {
  if (entry.isFile) {
    out.push({ file: await new Promise((ok, fail) => entry.file(ok, fail)), path: path + entry.name });
    return;
  }
  const reader = entry.createReader();
  // readEntries gives a directory's entries a batch at a time, until an empty one.
  for (;;) {
    const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
    if (!batch.length) return;
    for (const child of batch) await filesBelow(child, `${path}${entry.name}/`, out);
  }
}
$("path").addEventListener("input", () => { pathEdited = true; });
const drop = $("drop");
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", async (e) => {
  e.preventDefault();
  const entry = [...(e.dataTransfer?.items ?? [])].map((i) => i.webkitGetAsEntry?.()).find(Boolean);
  if (entry?.isDirectory) {
    const entries = [];
    await filesBelow(entry, "", entries);
    chooseFolder(entry.name, entries);
    return;
  }
  const picked = e.dataTransfer?.files?.[0];
  if (picked) choose(picked);
});

// --- the mode, and the local copy to update -------------------------------------
const LABELS = {
  upload: { lead: "Upload a file; only what the server lacks is sent.", path: "Save on the server as", button: "Upload", receiving: "Uploading what changed", saving: "Committing", sent: "sent" },
  update: { lead: "Bring a local copy up to date with the server's version; only what it lacks is fetched.", path: "File on the server", button: "Update", receiving: "Receiving what changed", saving: "Saving", sent: "received" },
};

function setMode(next) {
  mode = next;
  const labels = LABELS[mode];
  $("mode-upload").setAttribute("aria-selected", String(mode === "upload"));
  $("mode-update").setAttribute("aria-selected", String(mode === "update"));
  $("lead").textContent = labels.lead;
  $("path-label").textContent = labels.path;
  $("upload").textContent = labels.button;
  $("uploading-label").textContent = labels.receiving;
  $("committing-label").textContent = labels.saving;
  $("legend-sent-label").textContent = labels.sent;
  $("drop").hidden = mode !== "upload";
  $("local-zone").hidden = mode !== "update";
  const inPlace = supportsInPlaceDownload();
  $("local").hidden = !inPlace;
  $("plain-download").hidden = inPlace;
  if (!inPlace) {
    $("local-info").textContent = "This browser cannot update a file in place: download the whole file instead.";
  }
  updatePlainLink();
  hide($("summary"));
  hide($("error"));
  $("upload").disabled = mode === "upload" ? !(file || folder) : !localHandle;
  $("folder-line").hidden = mode !== "upload";
  hide($("folder-progress"));
}

/** Where the browser cannot write in place: a link the browser's own
 * download streams to disk (never the whole file in the page's memory). */
function updatePlainLink() {
  const path = linkedPath ?? $("path").value.trim();
  const link = $("plain-download");
  link.href = `api/v1/files/${path.split("/").map(encodeURIComponent).join("/")}`;
  link.download = path.split("/").pop() || "download";
}

async function useLocal(handle) {
  if (!handle) return;
  // A handle from a drop or an open picker may be read-only until asked.
  if (handle.requestPermission && (await handle.queryPermission?.({ mode: "readwrite" })) !== "granted") {
    if ((await handle.requestPermission({ mode: "readwrite" })) !== "granted") return;
  }
  localHandle = handle;
  const local = await handle.getFile();
  $("local-info").textContent = `${local.name} · ${formatBytes(local.size)}`;
  if (!linkedPath && !$("path").value) $("path").value = local.name;
  $("upload").disabled = false;
  hide($("summary"));
  hide($("error"));
}

$("mode-upload").addEventListener("click", () => setMode("upload"));
$("mode-update").addEventListener("click", () => setMode("update"));
$("path").addEventListener("input", updatePlainLink);
$("local").addEventListener("click", async () => {
  try {
    const suggestedName = ($("path").value.trim().split("/").pop()) || undefined;
    await useLocal(await window.showSaveFilePicker({ suggestedName }));
  } catch (error) {
    if (error?.name !== "AbortError") console.error(error);
  }
});
const zone = $("local-zone");
for (const type of ["dragenter", "dragover"]) {
  zone.addEventListener(type, (e) => { e.preventDefault(); zone.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  zone.addEventListener(type, () => zone.classList.remove("over"));
}
zone.addEventListener("drop", async (e) => {
  e.preventDefault();
  const item = [...(e.dataTransfer?.items ?? [])].find((i) => i.kind === "file");
  const handle = await item?.getAsFileSystemHandle?.();
  if (handle?.kind === "file") await useLocal(handle);
});
// A file dropped outside the zone must not replace the page.
window.addEventListener("dragover", (e) => e.preventDefault());
window.addEventListener("drop", (e) => e.preventDefault());

// --- progress -----------------------------------------------------------------
const started = {};

function resetProgress() {
  for (const phase of PHASES) {
    const row = $(`phase-${phase}`);
    row.className = "phase idle";
    row.querySelector("progress").value = 0;
    row.querySelector("progress").max = 1;
    row.querySelector(".detail").textContent = "";
    delete started[phase];
  }
  show($("progress"));
}

function onProgress(phase, done, total) {
  const row = $(`phase-${ROW[phase] ?? phase}`);
  if (!row) return;
  const now = performance.now();
  started[phase] ??= { t: now, done };
  row.classList.remove("idle");
  const bar = row.querySelector("progress");
  const detail = row.querySelector(".detail");
  if (phase === "comparing" && total === 0) {
    bar.removeAttribute("value"); // indeterminate while the server answers
    detail.textContent = "asking the server…";
    return;
  }
  bar.max = Math.max(total, 1);
  bar.value = Math.min(done, total);
  if (phase === "searching") {
    detail.textContent = done < total ? `round ${done + 1} of ${total}` : `${total} rounds`;
    if (total > 0 && done >= total) row.classList.add("done");
    return;
  }
  const seconds = (now - started[phase].t) / 1000;
  const rate = seconds > 0.2 ? (done - started[phase].done) / seconds : 0;
  const last = phase === "committing" || phase === "saving";
  let text = last ? "" : `${formatBytes(done)} of ${formatBytes(total)}`;
  if (rate > 0 && done < total && !last) {
    text += ` · ${formatBytes(rate)}/s`;
    // While hashing goes on, the upload's total still grows: no ETA for it yet.
    const hashingDone = $(`phase-hashing`).classList.contains("done");
    if (phase !== "uploading" || hashingDone) text += ` · ${formatSeconds((total - done) / rate)} left`;
  }
  detail.textContent = text;
  if (total > 0 && done >= total) row.classList.add("done");
}

// --- uploading ----------------------------------------------------------------
const MESSAGES = {
  aborted: () => "Cancelled. Press Upload again (or pick the same file after a reload) to continue where it stopped.",
  network_error: (e) => `Could not reach the server (${e.message}). Check the connection and try again; the upload will continue where it stopped.`,
  not_found: () => "The server has no such file.",
  write_failed: (e) => `Could not write the local copy (permission, space?); it is as it was: ${e.message}`,
  file_hash_mismatch: () => "The local copy changed while it was being updated; it is as it was. Try again.",
  unauthorized: () => "The server needs an access token: enter it under Advanced.",
  token_expired: () => "The access token has expired. Ask the application for a new link, then upload again: it continues where it stopped.",
  token_invalid: (e) => `The server does not accept this access token: ${e.message}`,
  not_allowed: (e) => `This access token does not allow that: ${e.message}`,
  read_only: () => "This server is read-only: it does not accept uploads.",
  bad_path: (e) => `That target path is not allowed: ${e.message}`,
  outside_root: (e) => `That target path is not allowed: ${e.message}`,
  target_changed: () => "The file on the server changed during the upload. Upload again to send the difference.",
  file_too_large: (e) => `The server refuses a file this large: ${e.message}`,
  too_many_uploads: () => "The server is busy with other uploads. Try again in a moment.",
  read_failed: (e) => `Could not read the file (was it moved or changed?): ${e.message}`,
  missing_blocks: () => "The server is missing some blocks. Upload again to send them.",
  webcrypto_unavailable: (e) => e.message,
  no_protocol_v2: () => "This server does not speak protocol v2: choose v1 under Advanced.",
  target_busy: () => "The file on the server is being read right now. Upload again in a moment to finish.",
  commit_unfinished: (e) => `The server could not finish writing the file: ${e.message}`,
};

function explain(error) {
  if (mode === "update" && error?.code === "aborted") return "Cancelled. The local copy is as it was.";
  const message = MESSAGES[error?.code];
  if (message) return message(error);
  const what = mode === "update" ? "Update" : "Upload";
  return error?.message ? `${what} failed: ${error.message}` : `${what} failed: ${error}`;
}

/** `part` of `whole` in percent, as `formatPercent` writes it. */
function percent(part, whole) {
  return formatPercent(whole > 0 ? (100 * part) / whole : 0);
}

/** A percentage with as many digits as it takes not to round to 0 or 100. */
export function formatPercent(p) {
  if (p <= 0 || p >= 100) return `${Math.min(100, Math.max(0, p))}%`;
  for (const digits of [0, 1, 2, 3]) {
    const text = p.toFixed(digits);
    if (Number(text) !== 0 && Number(text) !== 100) return `${text}%`;
  }
  return `${p.toFixed(4)}%`;
}

/** The summary's parts: a headline, the legend's figures, a line of details. */
function summarize(r) {
  const rate = r.seconds > 0 ? ` at ${formatBytes(r.totalBytes / r.seconds)}/s` : "";
  const headline = `Done: sent ${formatBytes(r.bytesSent)} of ${formatBytes(r.totalBytes)} (${percent(r.bytesSent, r.totalBytes)}); ` +
    `${formatPercent(r.similarity)} was already on the server. ${formatSeconds(r.seconds)}${rate}.`;
  const engine = r.strategy === "webcrypto" ? "WebCrypto" : "WebAssembly";
  const where = r.hashWorkers > 0 ? `${r.hashWorkers} worker${r.hashWorkers > 1 ? "s" : ""}` : "the page";
  const details = [];
  if (r.protocol === "v2") {
    details.push(`Protocol v2: ${formatBytes(r.payloadBytes)} sent in all (hashes and data).`);
    if (r.bytesResumed > 0) details.push(`Continued an interrupted upload: ${formatBytes(r.bytesResumed)} had arrived before.`);
    if (r.commit && r.commit !== "none") details.push(`The server committed by ${r.commit}.`);
  } else {
    details.push(`API v1: ${r.blocksSent} of ${r.totalBlocks} blocks.`);
    if (r.blocksResumed > 0) details.push(`Continued an interrupted upload: ${r.blocksResumed} blocks had arrived before.`);
  }
  details.push(`Hashed with ${engine} in ${where}.`);
  const moved = r.movedBytes ?? 0;
  return {
    headline,
    sent: formatBytes(r.bytesSent),
    moved: formatBytes(moved),
    kept: formatBytes(Math.max(0, r.totalBytes - r.bytesSent - moved)),
    details: details.join(" "),
  };
}

/** Draws the file as a bar: what was sent, found elsewhere, already in place. */
function drawMap(canvas, r) {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(1, Math.round(canvas.clientWidth * ratio));
  const height = Math.max(1, Math.round(canvas.clientHeight * ratio));
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d");
  const css = getComputedStyle(document.documentElement);
  ctx.fillStyle = css.getPropertyValue("--kept");
  ctx.fillRect(0, 0, width, height);
  const size = Math.max(r.totalBytes, 1);
  const paint = (ranges, color) => {
    ctx.fillStyle = color;
    for (const [start, end] of ranges ?? []) {
      const x = Math.floor((start / size) * width);
      // Every range shows, however small: at least one pixel wide.
      ctx.fillRect(x, 0, Math.max(ratio, Math.ceil((end / size) * width) - x), height);
    }
  };
  paint(r.movedRanges, css.getPropertyValue("--moved"));
  paint(r.sentRanges, css.getPropertyValue("--sent"));
}

/** A download's summary, in the same parts. */
function summarizeDownload(r) {
  const rate = r.seconds > 0 ? ` at ${formatBytes(r.totalBytes / r.seconds)}/s` : "";
  const headline = r.unchanged
    ? `Already up to date: nothing to fetch. ${formatSeconds(r.seconds)}.`
    : `Done: received ${formatBytes(r.bytesReceived)} of ${formatBytes(r.totalBytes)} (${percent(r.bytesReceived, r.totalBytes)}); ` +
      `${percent(r.copiedBytes, r.totalBytes)} was already in the local copy. ${formatSeconds(r.seconds)}${rate}.`;
  return {
    headline,
    sent: formatBytes(r.bytesReceived),
    moved: formatBytes(r.movedBytes),
    kept: formatBytes(Math.max(0, r.totalBytes - r.bytesReceived - r.movedBytes)),
    details: `Protocol v2: ${formatBytes(r.payloadBytes)} exchanged in all (hashes and data). The local copy was checked against the server's file hash before it was saved.`,
  };
}

/** A folder's upload: one bar for all its files, a row per file, one summary. */
async function uploadFolder() {
  controller = new AbortController();
  setBusy(true);
  hide($("summary"));
  hide($("error"));
  hide($("progress"));
  const rows = $("file-rows");
  rows.replaceChildren();
  show($("folder-progress"));
  const started = performance.now();
  try {
    const result = await uploadFiles(folder.entries, {
      prefix: linkedPath ?? $("path").value.trim(),
      blockSize: Number($("block-size").value),
      concurrency: Number($("concurrency").value) || 4,
      protocol: $("protocol").value,
      token: linkedToken ?? ($("token").value || undefined),
      signal: controller.signal,
      onProgress: (p) => {
        $("folder-bar").max = Math.max(p.bytesTotal, 1);
        $("folder-bar").value = p.bytesDone;
        const seconds = (performance.now() - started) / 1000;
        const rate = seconds > 0.2 ? ` · ${formatBytes(p.bytesDone / seconds)}/s` : "";
        $("folder-detail").textContent = `${p.filesDone} of ${p.filesTotal} files · ${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}${rate}`;
      },
      onFile: (r) => {
        const row = document.createElement("li");
        row.dataset.status = r.status;
        const what = r.status === "sent" ? `sent ${formatBytes(r.bytesSent)}` : r.status === "unchanged" ? "unchanged" : `failed: ${r.message}`;
        row.append(Object.assign(document.createElement("span"), { textContent: r.path }), Object.assign(document.createElement("span"), { textContent: what }));
        rows.append(row);
      },
    });
    const summary = $("summary");
    $("headline").textContent = `Done: ${result.sent} sent, ${result.unchanged} unchanged, ${result.failed} failed; ` +
      `sent ${formatBytes(result.bytesSent)} of ${formatBytes(result.totalBytes)}. ${formatSeconds(result.seconds)}.`;
    $("details").textContent = result.failed ? "The files that failed are marked below; upload again to retry them." : "";
    for (const key of Object.keys(summary.dataset)) delete summary.dataset[key];
    for (const key of ["sent", "unchanged", "failed", "bytesSent", "totalBytes"]) summary.dataset[key] = String(result[key]);
    $("map").hidden = true;
    $("legend").hidden = true;
    shown = null;
    show(summary);
  } catch (error) {
    console.error(error);
    $("error").textContent = error?.code === "aborted"
      ? "Cancelled. Upload the folder again (after a reload too): files already sent are skipped, the rest continue."
      : explain(error);
    $("error").dataset.code = error?.code ?? "";
    show($("error"));
  } finally {
    controller = null;
    setBusy(false);
  }
}

$("form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (mode === "upload" && folder && !controller) return uploadFolder();
  if (controller || (mode === "upload" ? !file : !localHandle)) return;
  const path = linkedPath ?? ($("path").value.trim() || file?.name);
  if (!path) return;
  controller = new AbortController();
  setBusy(true);
  hide($("summary"));
  hide($("error"));
  hide($("folder-progress"));
  resetProgress();
  const common = {
    path,
    blockSize: Number($("block-size").value),
    concurrency: Number($("concurrency").value) || 4,
    token: linkedToken ?? ($("token").value || undefined),
    onProgress,
    signal: controller.signal,
  };
  try {
    const result = mode === "upload"
      ? await uploadFile(file, { ...common, protocol: $("protocol").value })
      : await downloadFile(localHandle, common);
    const summary = $("summary");
    const parts = mode === "upload" ? summarize(result) : summarizeDownload(result);
    $("headline").textContent = parts.headline;
    $("legend-sent").textContent = parts.sent;
    $("legend-moved").textContent = parts.moved;
    $("legend-kept").textContent = parts.kept;
    $("details").textContent = parts.details;
    for (const key of Object.keys(summary.dataset)) delete summary.dataset[key];
    for (const key of ["protocol", "bytesSent", "blocksSent", "blocksResumed", "bytesResumed", "payloadBytes", "literalBytes", "movedBytes", "totalBytes", "totalBlocks", "similarity", "strategy", "hashWorkers", "commit", "bytesReceived", "copiedBytes", "unchanged"]) {
      if (key in result) summary.dataset[key] = String(result[key]);
    }
    $("legend").hidden = false;
    show(summary);
    // v1 knows blocks, not ranges: no map.
    $("map").hidden = !result.sentRanges;
    shown = result.sentRanges ? result : null;
    if (shown) drawMap($("map"), shown);
  } catch (error) {
    console.error(error);
    $("error").textContent = explain(error);
    $("error").dataset.code = error?.code ?? "";
    show($("error"));
  } finally {
    controller = null;
    setBusy(false);
  }
});

$("cancel").addEventListener("click", () => controller?.abort());

// The map is drawn in device pixels: again when the page's width changes.
let shown = null;
window.addEventListener("resize", () => { if (shown) drawMap($("map"), shown); });

function setBusy(busy) {
  $("upload").disabled = busy || (mode === "upload" ? !(file || folder) : !localHandle);
  $("cancel").hidden = !busy;
  $("file").disabled = busy;
  $("pick-folder").disabled = busy;
  $("local").disabled = busy;
  $("mode-upload").disabled = busy;
  $("mode-update").disabled = busy;
  document.body.dataset.state = busy ? "busy" : "idle";
}

function show(el) { el.hidden = false; }
function hide(el) { el.hidden = true; }

// --- start ----------------------------------------------------------------------
await init();
setMode("upload");
$("footer").textContent = `diffcopy-web ${version()} · hashing with WebAssembly`;
fetch("api/v1/health").then((r) => (r.ok ? r.json() : null)).then((health) => {
  if (health?.version) $("footer").textContent += ` · server ${health.version}`;
}).catch(() => {});
document.body.dataset.state = "idle";
