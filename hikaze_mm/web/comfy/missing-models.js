// The models a loaded workflow needs and the library lacks: one non-modal dialog listing
// them (name, short hash, size, destination, source), "Find sources" (asks Civitai by hash:
// only on request), and "Download all" with progress, after which the workflow runs. It
// never blocks or replaces ComfyUI's own dialogs. No side effects at import: main.js calls
// `checkWorkflow` after ComfyUI has loaded a graph.

import { request } from "./api.js";
import { h } from "./shared/dom.js";
import { formatBytes } from "./shared/format.js";

const DIALOG_ID = "hkz-missing-models";
const POLL_MS = 1000;
const ENDED = new Set(["done", "failed", "cancelled"]);

let current = null; // {dialog, workflow, missing, poll}

/** Ask which models `workflow` (ComfyUI's serialized graph) lacks; show them if any. */
export async function checkWorkflow(workflow) {
  let answer;
  try {
    answer = await request("POST", "workflows/missing", { params: { lookup: "false" }, json: workflow });
  } catch {
    return; // the library is unavailable: ComfyUI's own missing-model warning still shows
  }
  const missing = ((answer && answer.resources) || []).filter((r) => !r.in_library);
  if (missing.length) show(workflow, missing);
  else close();
}

function close() {
  if (!current) return;
  clearInterval(current.poll);
  current.dialog.remove();
  current = null;
}

function shortHash(sha) {
  return sha ? sha.slice(0, 10).toUpperCase() : "—";
}

function sourceText(resource) {
  if (resource.found) return resource.found.source;
  return resource.looked ? "no source found" : "not looked up";
}

function row(resource) {
  const size = resource.found && resource.found.size ? formatBytes(resource.found.size) : "—";
  const progress = h("progress", { max: "1", value: "0", "aria-label": `Download of ${resource.name}` });
  progress.hidden = true;
  const state = h("span", { class: "hkz-missing-state" });
  resource.view = { progress, state };
  return h(
    "tr",
    {},
    h("td", {}, resource.name),
    h("td", {}, h("code", {}, shortHash(resource.sha256))),
    h("td", {}, size),
    h("td", {}, resource.folder),
    h("td", {}, sourceText(resource)),
    h("td", {}, progress, state),
  );
}

function table(missing) {
  const head = ["Model", "Hash", "Size", "Folder", "Source", "Progress"].map((t) => h("th", { scope: "col" }, t));
  return h("table", { class: "hkz-missing-table" }, h("thead", {}, h("tr", {}, ...head)), h("tbody", {}, ...missing.map(row)));
}

function show(workflow, missing) {
  close();
  const titleId = `${DIALOG_ID}-title`;
  const status = h("p", { class: "hkz-missing-status", role: "status" });
  const find = h("button", { type: "button", class: "hkz-btn" }, "Find sources");
  const fetchAll = h("button", { type: "button", class: "hkz-btn hkz-btn-primary" }, "Download all");
  const dismiss = h("button", { type: "button", class: "hkz-btn" }, "Close");
  const body = h("div", { class: "hkz-missing-body" }, table(missing));
  const dialog = h(
    "dialog",
    { id: DIALOG_ID, class: "hkz-missing", "aria-labelledby": titleId },
    h("h2", { id: titleId, class: "hkz-dialog-title" }, `This workflow needs ${missing.length} model(s) the library lacks`),
    body,
    status,
    h("div", { class: "hkz-missing-actions" }, find, fetchAll, dismiss),
  );
  current = { dialog, workflow, missing, poll: null };
  find.addEventListener("click", () => findSources(body, status));
  fetchAll.addEventListener("click", () => downloadAll(status, fetchAll));
  dismiss.addEventListener("click", close);
  document.body.append(dialog);
  dialog.show(); // not modal: ComfyUI's own dialogs stay usable
}

async function findSources(body, status) {
  const { workflow } = current;
  status.textContent = "Looking for sources…";
  try {
    const answer = await request("POST", "workflows/missing", { json: workflow });
    const missing = (answer.resources || []).filter((r) => !r.in_library);
    for (const resource of missing) resource.looked = true;
    current.missing = missing;
    body.replaceChildren(table(missing));
    const found = missing.filter((r) => r.found).length;
    status.textContent = `${found} of ${missing.length} have a source.`;
  } catch (err) {
    status.textContent = `Could not look for sources: ${err.message}`;
  }
}

async function downloadAll(status, button) {
  button.disabled = true;
  status.textContent = "Queueing downloads…";
  let answer;
  try {
    answer = await request("POST", "workflows/fetch-missing", { json: current.workflow });
  } catch (err) {
    status.textContent = `Could not start the downloads: ${err.message}`;
    button.disabled = false;
    return;
  }
  const byName = new Map(current.missing.map((r) => [r.name, r]));
  const jobs = (answer.downloads || []).map((d) => ({ ...d, resource: byName.get(d.name) }));
  const without = answer.without_source || [];
  if (!jobs.length) {
    status.textContent = "No missing model has a source to download from.";
    button.disabled = false;
    return;
  }
  follow(jobs, without, status);
}

function follow(jobs, without, status) {
  const tick = async () => {
    for (const job of jobs) {
      if (ENDED.has(job.status)) continue;
      try {
        Object.assign(job, await request("GET", `downloads/${job.id}`));
      } catch {
        continue; // tried again at the next tick
      }
      paint(job);
    }
    const left = jobs.filter((j) => !ENDED.has(j.status)).length;
    const failed = jobs.filter((j) => j.status !== "done" && ENDED.has(j.status)).length;
    status.textContent = left
      ? `Downloading: ${jobs.length - left} of ${jobs.length} done.`
      : `${jobs.length - failed} downloaded${failed ? `, ${failed} failed` : ""}` +
        `${without.length ? `; no source for ${without.join(", ")}` : ""}. You can run the workflow.`;
    if (!left && current) clearInterval(current.poll);
  };
  current.poll = setInterval(tick, POLL_MS);
  tick();
}

function paint(job) {
  const view = job.resource && job.resource.view;
  if (!view) return;
  view.progress.hidden = false;
  view.progress.value = job.bytes_total ? job.bytes_done / job.bytes_total : 0;
  view.state.textContent = job.status === "failed" ? ` failed: ${job.error || ""}` : ` ${job.status}`;
}
