// The uploader page: a thin user of the diffcopy-web package.
import init, { uploadFile, hashStrategy, version } from "./pkg/diffcopy_web.js";

const $ = (id) => document.getElementById(id);
const PHASES = ["comparing", "hashing", "uploading", "committing"];

let file = null;
let pathEdited = false;
let controller = null;

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
  $("file-info").textContent = `${file.name} · ${formatBytes(file.size)}`;
  $("drop-text").innerHTML = "<strong>Change file</strong> or drop another";
  if (!pathEdited || !$("path").value) $("path").value = file.name;
  $("upload").disabled = false;
  hide($("summary"));
  hide($("error"));
}

$("file").addEventListener("change", () => choose($("file").files[0]));
$("path").addEventListener("input", () => { pathEdited = true; });
const drop = $("drop");
for (const type of ["dragenter", "dragover"]) {
  drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
}
for (const type of ["dragleave", "drop"]) {
  drop.addEventListener(type, () => drop.classList.remove("over"));
}
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  const picked = e.dataTransfer?.files?.[0];
  if (picked) choose(picked);
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
  const row = $(`phase-${phase}`);
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
  const seconds = (now - started[phase].t) / 1000;
  const rate = seconds > 0.2 ? (done - started[phase].done) / seconds : 0;
  let text = phase === "committing" ? "" : `${formatBytes(done)} of ${formatBytes(total)}`;
  if (rate > 0 && done < total && phase !== "committing") {
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
  unauthorized: () => "The server needs an access token: enter it under Advanced.",
  read_only: () => "This server is read-only: it does not accept uploads.",
  bad_path: (e) => `That target path is not allowed: ${e.message}`,
  outside_root: (e) => `That target path is not allowed: ${e.message}`,
  target_changed: () => "The file on the server changed during the upload. Upload again to send the difference.",
  file_too_large: (e) => `The server refuses a file this large: ${e.message}`,
  too_many_uploads: () => "The server is busy with other uploads. Try again in a moment.",
  read_failed: (e) => `Could not read the file (was it moved or changed?): ${e.message}`,
  missing_blocks: () => "The server is missing some blocks. Upload again to send them.",
  webcrypto_unavailable: (e) => e.message,
};

function explain(error) {
  const message = MESSAGES[error?.code];
  if (message) return message(error);
  return error?.message ? `Upload failed: ${error.message}` : `Upload failed: ${error}`;
}

function summarize(r) {
  const rate = r.seconds > 0 ? ` (${formatBytes(r.totalBytes / r.seconds)}/s)` : "";
  let text = `Done: sent ${formatBytes(r.bytesSent)} of ${formatBytes(r.totalBytes)}; ` +
    `${r.similarity.toFixed(1)}% was already on the server. ` +
    `${r.blocksSent} of ${r.totalBlocks} blocks in ${r.seconds.toFixed(1)} s${rate}.`;
  if (r.blocksResumed > 0) text += ` Continued an interrupted upload: ${r.blocksResumed} blocks had arrived before.`;
  const engine = r.strategy === "webcrypto" ? "WebCrypto" : "WebAssembly";
  const where = r.hashWorkers > 0 ? `${r.hashWorkers} worker${r.hashWorkers > 1 ? "s" : ""}` : "the page";
  return `${text} Hashed with ${engine} in ${where}.`;
}

$("form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!file || controller) return;
  const path = $("path").value.trim() || file.name;
  controller = new AbortController();
  setBusy(true);
  hide($("summary"));
  hide($("error"));
  resetProgress();
  try {
    const result = await uploadFile(file, {
      path,
      blockSize: Number($("block-size").value),
      hash: $("hash").value,
      concurrency: Number($("concurrency").value) || 4,
      token: $("token").value || undefined,
      onProgress,
      signal: controller.signal,
    });
    const summary = $("summary");
    summary.textContent = summarize(result);
    for (const key of ["bytesSent", "blocksSent", "blocksResumed", "totalBytes", "totalBlocks", "similarity", "strategy", "hashWorkers"]) {
      summary.dataset[key] = String(result[key]);
    }
    show(summary);
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

function setBusy(busy) {
  $("upload").disabled = busy || !file;
  $("cancel").hidden = !busy;
  $("file").disabled = busy;
  document.body.dataset.state = busy ? "busy" : "idle";
}

function show(el) { el.hidden = false; }
function hide(el) { el.hidden = true; }

// --- start ----------------------------------------------------------------------
await init();
const strategy = hashStrategy({ hash: "sha1" });
$("footer").textContent = `diffcopy-web ${version()} · hashing with ${strategy === "webcrypto" ? "WebCrypto" : "WebAssembly"}`;
fetch("api/v1/health").then((r) => (r.ok ? r.json() : null)).then((health) => {
  if (health?.version) $("footer").textContent += ` · server ${health.version}`;
}).catch(() => {});
document.body.dataset.state = "idle";
